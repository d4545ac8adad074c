"""Chunks that failed because their files changed after the scan (`sourceChanged`), and completed
inline chunks the hosting service found unservable for the same reason (`unservable`), refreshed by
the rescan job (services/worker/rescan.py) when the preparation is resumed.

Each file of such a chunk is looked at again (size and mtime, no hashing). A chunk without live
deals is rebuilt: a changed file that the chunk holds whole keeps its place with its new size, as
much of it as the chunk has room for, the rest going into a new chunk at the end; a changed file
the chunk holds only a range of, and one that is no longer the newest version of its path, leaves
the chunk and its new version goes into new chunks whole; a vanished one leaves it with a
tombstone. A chunk with live deals (proposed, published, active) is never rebuilt: its piece is
what the providers store, so the new versions of its changed files go into new chunks (an
unservable one stays unservable, marked `unservable.replacedAt` so later resumes leave it alone).
An unservable chunk keeps its named refusal until it is made claimable again; its old layout goes
then, and generation writes the new one.

Every step can be run again after a kill: what is placed is decided from the stored versions (a
version already placed is not placed twice), and the chunk's documents are dropped, and the chunk
made claimable again, only after the chunks holding their replacements are committed.
"""
from __future__ import annotations

import asyncio
import os
import stat

from pymongo import ReplaceOne

from services.worker import inline
from services.worker.chunker import Chunker
from services.worker.compare import newest_of_paths, to_place
from services.worker.walk import File
from shared import models
from shared.models import Status, fileversions

LIVE_DEALS = (models.DealStatus.PROPOSED.value, models.DealStatus.PUBLISHED.value, models.DealStatus.ACTIVE.value)
BATCH = 5000


async def refresh_failed(run) -> None:
    """Refresh every chunk of run's preparation that failed on changed files, or was found unservable."""
    failed = await run.db[models.GENERATION].find(
        {"preparationId": {"$eq": run.id}, "status": {"$eq": Status.ERROR.value},
         "sourceChanged": {"$eq": True}}).to_list(None)
    unservable = await run.db[models.GENERATION].find(models.unservable_to_refresh(run.id)).to_list(None)
    chunks = sorted(failed + unservable, key=lambda c: c["index"])
    if not chunks:
        return
    pieces = [c["pieceCid"] for c in chunks if c.get("pieceCid")]
    live: set[str] = set()
    if pieces:
        live = {d["pieceCid"] async for d in run.db[models.DEAL_STATE].find(
            {"pieceCid": {"$in": pieces}, "state": {"$in": list(LIVE_DEALS)}}, {"pieceCid": 1})}
    for chunk in chunks:
        await refresh_chunk(run, chunk, chunk.get("pieceCid") in live)
        await run.check()


def current(root: str, doc: dict) -> File | None:
    """The file (or empty directory) as it is now, None when it is gone or no longer one."""
    relative = doc["relativePath"]
    path = os.path.join(root, relative)
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if doc.get("directory"):
        return File(tuple(relative.split("/")), path, 0, info.st_mtime, directory=True) \
            if stat.S_ISDIR(info.st_mode) else None
    return File(tuple(relative.split("/")), path, info.st_size, info.st_mtime) if stat.S_ISREG(info.st_mode) else None


def differs(doc: dict, now: File | None) -> bool:
    if now is None:
        return True
    return not doc.get("directory") and (now.size != doc["size"] or now.mtime != doc["mtime"])


def stored_file(root: str, doc: dict) -> File:
    relative = doc["relativePath"]
    return File(tuple(relative.split("/")), os.path.join(root, relative), doc["size"], doc["mtime"] or 0.0,
                directory=bool(doc.get("directory")))


async def refresh_chunk(run, chunk: dict, has_deals: bool) -> None:
    db, root = run.db, run.request["path"]
    docs = await db[models.GENERATION_FILES].find({"generationId": {"$eq": chunk["_id"]}}).sort(
        "order", 1).to_list(None)
    now = await asyncio.to_thread(lambda: [current(root, d) for d in docs])
    changed = [(d, f) for d, f in zip(docs, now) if differs(d, f)]
    newest = await newest_of_paths(db, run.id, [d["relativePath"] for d, _ in changed])
    tombstones, drops, updates, places = [], [], {}, []
    chunker = Chunker(run.request["minSize"], run.request["maxSize"], car_limit=run.request["dealSize"] * 127 // 128)
    changed_ids = {d["_id"] for d, _ in changed}
    for doc in docs:
        if doc["_id"] not in changed_ids:
            chunker.place(stored_file(root, doc), doc["end"] - doc["start"])
    for doc, file in changed:
        stored = newest.get(doc["relativePath"])
        if file is None:
            if stored is not None and not stored.deleted:
                tombstones.append(fileversions.tombstone(run.id, doc["relativePath"], stored.version + 1))
            drops.append(doc["_id"])
            continue
        whole = doc["start"] == 0 and doc["end"] == doc["size"]
        if not has_deals and whole and stored is not None and stored.version == fileversions.version_of(doc):
            chunker.directory = ()  # every parent counted as new: the room is an underestimate
            take = max(0, min(file.size, run.request["maxSize"] - chunker.size, chunker.room(file, file.size)))
            if take or not file.size:
                chunker.place(file, take)
                updates[doc["_id"]] = {"size": file.size, "mtime": file.mtime, "end": take}
                continue  # the rest, if any, is placed below as the remainder of this version
        if not has_deals:
            drops.append(doc["_id"])
        if stored is not None and (placed := to_place(stored, file)) is not None:
            places.append(placed)
    run.tombstones += tombstones
    await run.flush_tombstones()
    if updates:
        # Replaced whole: the embedded server keeps a float written by $set to 15 digits, and
        # generation compares the mtime to the microsecond.
        by_id = {d["_id"]: d for d in docs}
        await db[models.GENERATION_FILES].bulk_write(
            [ReplaceOne({"_id": i}, {**by_id[i], **fields}) for i, fields in updates.items()], ordered=False)
    # The rest of every file this chunk holds from its first byte but not to its end: of files
    # cut short just now, and of those a killed refresh cut short without placing their rest.
    kept = [(d, f) for d, f in zip(docs, now) if (d["_id"] not in changed_ids or d["_id"] in updates)
            and f is not None and not d.get("directory")]
    heads = [(d, f) for d, f in kept if d["start"] == 0 and updates.get(d["_id"], d)["end"] < f.size]
    if heads:
        newest = await newest_of_paths(db, run.id, [d["relativePath"] for d, _ in heads])
        for doc, file in heads:
            stored = newest.get(doc["relativePath"])
            if stored is not None and stored.version == fileversions.version_of(doc) and \
                    (placed := to_place(stored, file)) is not None:
                places.append(placed)
    for file, start in places:
        await run.add(file, start)
    size = sum(updates.get(d["_id"], d)["end"] - d["start"] for d in docs if d["_id"] not in drops)

    unservable = chunk["status"] == Status.COMPLETED.value

    async def settle() -> None:
        for i in range(0, len(drops), BATCH):
            await db[models.GENERATION_FILES].delete_many({"_id": {"$in": drops[i:i + BATCH]}})
        if has_deals:
            # Its piece stays what the providers hold; the new versions are in later chunks.
            fields = {"status": Status.COMPLETED.value if chunk.get("dataCid") else Status.ERROR.value, "error": None}
            if unservable:
                # Back as scanned (a file put back): servable again; else refused as before, for good.
                fields.update({"unservable": None} if not changed else {"unservable.replacedAt": models.now()})
        else:
            fields = {"status": Status.ACTIVE.value, "error": None, "fileCount": len(docs) - len(drops), "size": size,
                      "bytesDone": 0}
        done = await db[models.GENERATION].update_one({"_id": chunk["_id"], "status": chunk["status"]},
                                                      {"$set": {**fields, "workerId": None, "sourceChanged": False}})
        if unservable and not has_deals and done.matched_count:
            # Claimable now, so no longer served: the layout of its old CAR goes (generation's
            # save_layout would replace it too, but a chunk that is never rebuilt would keep it).
            await inline.delete_layout(db, chunk["_id"])

    run.after_close.append(settle)
    run.counts["refreshed"] += 1
