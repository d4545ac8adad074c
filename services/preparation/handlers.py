"""One function per preparation API action; the routes only translate HTTP to these."""
from __future__ import annotations

import asyncio
import os

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.preparation import conversions
from services.preparation import status as suite_status
from services.preparation.validation import new_preparation
from services.preparation import summaries
from shared import database, models, timeline
from shared.api import Conflict, Duplicate, InvalidParameter, NotFound
from shared.config import Config
from shared.models import Status, fileversions


async def create(db: AsyncDatabase, config: Config, body: dict) -> dict:
    settings = config.deal_preparation_service
    request = new_preparation(body, settings.default_deal_size, settings.dataset_roots)
    doc = models.scanning_request(request.name, request.path, request.deal_size, request.min_size, request.max_size,
                                  inline=settings.inline if body.get("inline") is None else body["inline"])
    try:
        await db[models.SCANNING].insert_one(doc)
    except DuplicateKeyError:
        raise Duplicate(f"a preparation named {request.name!r} already exists") from None
    return {"id": doc["_id"]}


async def change(db: AsyncDatabase, preparation_id: str, body: dict) -> dict:
    """POST /preparation/:id: a new state, or a rescan."""
    if (body.get("state") is None) == (not body.get("rescan")):
        raise InvalidParameter("give either state or rescan: true", {"fields": ["state", "rescan"]})
    if body.get("rescan"):
        return await rescan(db, preparation_id)
    return await set_state(db, preparation_id, body["state"])


async def set_state(db: AsyncDatabase, preparation_id: str, state: str) -> dict:
    """`state` is one of schemas.STATES."""
    scan = await find(db, preparation_id)
    if state == "removed":
        await remove(db, preparation_id)
        return {"id": preparation_id, "state": "removed"}
    # Resuming also retries what failed: the cause (a full disk, a changed file) may be fixed.
    before, after = ((Status.ACTIVE, Status.PAUSED) if state == "paused" else (Status.PAUSED, Status.ACTIVE))
    resumable = [before.value] + ([Status.ERROR.value] if state == "active" else [])
    await db[models.SCANNING].update_one({"_id": preparation_id}, {"$set": {"state": state}})
    await db[models.SCANNING].update_one(
        {"_id": preparation_id, "status": {"$in": resumable}},
        {"$set": {"status": after.value, "workerId": None, "error": None}})
    # A chunk that failed on changed files would fail again as it is, and an inline one refused as
    # unservable stays refused: the worker refreshes them first (services/worker/refresh.py), as
    # part of a rescan job that walks nothing else.
    changed = state == "active" and (await db[models.GENERATION].find_one(
        {"preparationId": {"$eq": preparation_id}, "status": {"$eq": Status.ERROR.value},
         "sourceChanged": {"$eq": True}}, {"_id": 1}) or await db[models.GENERATION].find_one(
        models.unservable_to_refresh(preparation_id), {"_id": 1}))
    await db[models.GENERATION].update_many(
        {"preparationId": preparation_id, "status": {"$in": resumable}, "sourceChanged": {"$ne": True}},
        {"$set": {"status": after.value, "workerId": None, "error": None}})
    if changed:
        await ask_rescan(db, preparation_id, walk=False)
    return {"id": scan["_id"], "state": state}


async def rescan(db: AsyncDatabase, preparation_id: str) -> dict:
    scan = await find(db, preparation_id)
    if scan["status"] in (Status.ACTIVE.value, Status.PAUSED.value) and not scan.get("scanCompletedAt") \
            and not scan.get("rescan"):
        raise Conflict("the preparation's first scan is still running: rescan once it is completed",
                       {"scanningStatus": scan["status"]})
    return {"id": scan["_id"], "state": scan.get("state", "active"),
            "rescan": await ask_rescan(db, preparation_id, walk=True)}


async def ask_rescan(db: AsyncDatabase, preparation_id: str, walk: bool) -> str:
    """Make the scanning request a job again (services/worker/rescan.py). A rescan asked while
    one runs is done after it (the running one sees the new id and goes again)."""
    asked = models.new_id()
    fields = {"rescan.id": asked, "rescan.askedAt": models.now()}
    if walk:
        fields["rescan.walk"] = True
    await db[models.SCANNING].update_one({"_id": preparation_id}, {"$set": fields})
    # Finished or failed: claimable again, or waiting for a resume when the user paused it.
    for state, status in (("active", Status.ACTIVE.value), ("paused", Status.PAUSED.value)):
        await db[models.SCANNING].update_one(
            {"_id": preparation_id, "state": state, "status": {"$in": [Status.COMPLETED.value, Status.ERROR.value]}},
            {"$set": {"status": status, "workerId": None, "error": None}})
    return asked


async def remove(db: AsyncDatabase, preparation_id: str) -> None:
    # The request goes first, so a worker still scanning it notices and stops writing.
    await db[models.SCANNING].delete_one({"_id": preparation_id})
    for collection in models.OWNED_BY_PREPARATION:
        await db[collection].delete_many({"preparationId": preparation_id})


async def find(db: AsyncDatabase, preparation_id: str) -> dict:
    scan = await db[models.SCANNING].find_one({"_id": preparation_id})
    if scan is None:
        raise NotFound(f"no preparation with id {preparation_id!r}")
    return scan


async def summary(db: AsyncDatabase, scan: dict) -> dict:
    return (await summaries.summaries(db, [scan]))[0]


def generation_view(doc: dict) -> dict:
    return {
        "id": doc["_id"],
        "index": doc["index"],
        "workerId": doc["workerId"],
        "status": doc["status"],
        "fileCount": doc["fileCount"],
        "size": doc["size"],
        "dataCid": doc.get("dataCid"),
        "pieceCid": doc.get("pieceCid"),
        "pieceSize": doc.get("pieceSize"),
        "carSize": doc.get("carSize"),
        "error": doc.get("error"),
        "inline": bool(doc.get("inline")),
        "unservable": doc.get("unservable"),
    }


async def list_page(db: AsyncDatabase, offset: int, limit: int) -> dict:
    """A page of summaries, oldest first, in a fixed number of queries."""
    scans = await db[models.SCANNING].find({}).sort("_id", 1).skip(offset).limit(limit).to_list(None)
    preparations, total = await asyncio.gather(summaries.summaries(db, scans), database.count(db[models.SCANNING], {}))
    return {"preparations": preparations, "total": total, "offset": offset, "limit": limit}


async def details(db: AsyncDatabase, preparation_id: str, offset: int, limit: int) -> dict:
    """The summary plus one page of chunks (the summary's generationTotal is their total)."""
    scan = await find(db, preparation_id)
    # {"$eq": x} rather than x: the embedded server reads a bare value as "x or an array holding
    # x", a condition no index serves.
    result, generations, problems = await asyncio.gather(
        summary(db, scan),
        db[models.GENERATION].find({"preparationId": {"$eq": preparation_id}}).sort(
            "index", 1).skip(offset).limit(limit).to_list(None),
        db[models.SCAN_PROBLEMS].find({"preparationId": {"$eq": preparation_id}}).sort("_id", 1).limit(100).to_list(None))
    return {
        **result,
        "generationRequests": [generation_view(doc) for doc in generations],
        "problems": [{"kind": p["kind"], "path": p["path"], "reason": p["reason"]} for p in problems],
        "total": result["generationTotal"],
        "offset": offset,
        "limit": limit,
    }


async def generation(db: AsyncDatabase, generation_id: str, offset: int, limit: int) -> dict:
    doc = await db[models.GENERATION].find_one({"_id": generation_id})
    if doc is None:
        raise NotFound(f"no generation request with id {generation_id!r}")
    files = db[models.GENERATION_FILES].find({"generationId": {"$eq": generation_id}}).sort(
        "order", 1).skip(offset).limit(limit)
    return {
        **generation_view(doc),
        "preparationId": doc["preparationId"],
        "name": doc["name"],
        "path": doc["path"],
        "state": doc["status"],
        "fileList": [{
            "path": os.path.join(doc["path"], f["relativePath"]), "relativePath": f["relativePath"],
            "name": f["relativePath"].rsplit("/", 1)[-1], "directory": bool(f.get("directory")), "size": f["size"],
            "mtime": f["mtime"], "start": f["start"], "end": f["end"], "cid": f.get("cid"),
        } async for f in files],
        "total": doc["fileCount"],  # the chunk's entries: files, ranges of split files, empty directories
        "offset": offset,
        "limit": limit,
    }


async def files(db: AsyncDatabase, preparation_id: str, prefix: str, offset: int, limit: int) -> dict:
    """The dataset's file -> CID -> piece mapping, by path: each file or range with the CID of its
    DAG and the data CID and piece CID of the chunk that holds it."""
    scan = await find(db, preparation_id)
    collection = db[models.GENERATION_FILES]
    query: dict = {"preparationId": {"$eq": preparation_id}}
    prefix = prefix.strip("/")
    queries = [query]
    if prefix:
        # The path itself (a file, its ranges or an empty directory, in all its versions), then
        # anything under "path/" ("0" is the character after "/"): a path can be both, when a
        # file's newest version is a folder. Two plain conditions rather than one $or, which the
        # embedded server answers by reading the whole collection.
        queries = [{**query, "relativePath": {"$eq": prefix}},
                   {**query, "relativePath": {"$gte": prefix + "/", "$lt": prefix + "0"}}]
    docs: list[dict] = []
    total = 0
    for part in queries:
        count = await database.count(collection, part)
        skip = max(0, offset - total)
        total += count
        if skip < count and len(docs) < limit:
            docs += await collection.find(part).sort(
                [("relativePath", 1), ("start", 1)]).skip(skip).limit(limit - len(docs)).to_list(None)
    # Not asked with an empty list: the embedded server answers `$in: []` by reading every chunk.
    chunk_ids = list({d["generationId"] for d in docs if d.get("generationId")})
    chunks = {doc["_id"]: doc async for doc in db[models.GENERATION].find(
        {"_id": {"$in": chunk_ids}})} if chunk_ids else {}
    newest = await newest_versions(collection, preparation_id, docs)
    entries = []
    for d in docs:
        chunk = chunks.get(d.get("generationId"))
        if chunk is None and not d.get("deleted"):
            continue  # of a chunk still being cut
        chunk = chunk or {}
        entries.append({
            "relativePath": d["relativePath"], "directory": bool(d.get("directory")), "size": d["size"],
            "start": d["start"], "end": d["end"], "version": fileversions.version_of(d),
            "latest": fileversions.version_of(d) == newest[d["relativePath"]], "deleted": bool(d.get("deleted")),
            "cid": d.get("cid"), "chunk": chunk.get("index"), "generationId": chunk.get("_id"),
            "status": chunk.get("status"), "dataCid": chunk.get("dataCid"), "pieceCid": chunk.get("pieceCid"),
            "pieceSize": chunk.get("pieceSize"),
        })
    return {
        "id": scan["_id"],
        "name": scan["name"],
        "files": entries,
        "total": total,
        "offset": offset,
        "limit": limit,
    }


async def materialize(db: AsyncDatabase, preparation_id: str, chunk: int | None) -> dict:
    """Jobs writing the CAR files of a preparation's inline chunks (or of one chunk)."""
    await find(db, preparation_id)
    return {"id": preparation_id, **await conversions.materialize(db, preparation_id, chunk)}


async def prune_cars(db: AsyncDatabase, preparation_id: str, min_active: int) -> dict:
    """Jobs removing the CAR files of chunks active at min_active providers, leaving them inline."""
    await find(db, preparation_id)
    return {"id": preparation_id, **await conversions.prune(db, preparation_id, min_active)}


async def conversion_list(db: AsyncDatabase, preparation_id: str, offset: int, limit: int) -> dict:
    await find(db, preparation_id)
    return {"id": preparation_id, **await conversions.page(db, preparation_id, offset, limit)}


async def newest_versions(collection, preparation_id: str, docs: list[dict]) -> dict[str, int]:
    """The newest version of each path of a page, sorted by path: only the first and the last path
    can have versions off the page, and one query reads theirs."""
    newest: dict[str, int] = {}
    for d in docs:
        newest[d["relativePath"]] = max(newest.get(d["relativePath"], 0), fileversions.version_of(d))
    if docs:
        edges = list({docs[0]["relativePath"], docs[-1]["relativePath"]})
        async for d in collection.find({"preparationId": {"$eq": preparation_id}, "relativePath": {"$in": edges}},
                                       {"relativePath": 1, "version": 1}):
            newest[d["relativePath"]] = max(newest[d["relativePath"]], fileversions.version_of(d))
    return newest


async def prepared_history(db: AsyncDatabase, preparation: str | None, since: int | None, until: int | None,
                           bucket: int) -> dict:
    """GET /preparations/history: the chunks packed in each bucket, by their completion time."""
    window = timeline.window(since, until, bucket)
    match: dict = {"status": {"$eq": Status.COMPLETED.value}}
    if preparation is not None:
        match["preparationId"] = {"$eq": preparation}
    rows = await window.per_bucket(db[models.GENERATION], match, "completedAt", {
        "bytes": {"$sum": "$size"}, "carBytes": {"$sum": "$carSize"}, "chunks": {"$sum": 1},
        "files": {"$sum": "$fileCount"}})
    points = [{"time": window.end(number), **{k: row.get(k, 0) for k in ("bytes", "carBytes", "chunks", "files")}}
              for number, row in enumerate(rows)]
    return {**window.answer(), "points": points}


async def status(db: AsyncDatabase, config: Config) -> dict:
    """GET /status: hosts and their modules, workers and their jobs, the database, counts by state."""
    return await suite_status.collect(db, config)
