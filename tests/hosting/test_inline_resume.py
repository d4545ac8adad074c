"""An inline chunk refused because a source file changed (issue 14): `prep resume` rebuilds it with
new CIDs and a fresh layout, and it is served again; one with live deals is never rebuilt, the new
version going into a new chunk; a chunk served from its CAR file does not care."""
from __future__ import annotations

import json
import os
from pathlib import Path

import aiohttp

from services.preparation import handlers
from shared import models
from tests.hosting.conftest import DEAL, MAX_CHUNK, MIN_CHUNK
from tests.hosting.inline_helpers import commp_of, piece_bytes, prepare_inline
from tests.pipeline import chunks_of, prepare, run_worker_until_done

NEW_BYTES = b"a new version of this file, longer than the old one\n"


async def get(url: str, **headers) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers=headers) as response:
            return response.status, await response.read()


async def whole_file_of(db, chunks: list[dict]) -> tuple[dict, str]:
    """A chunk with room for NEW_BYTES and a non-empty file it holds whole (no range of it in any
    other chunk)."""
    docs = await db[models.GENERATION_FILES].find(
        {"preparationId": chunks[0]["preparationId"], "directory": {"$ne": True}}).to_list(None)
    for chunk in chunks:
        if chunk["size"] + len(NEW_BYTES) + 4096 > MAX_CHUNK:
            continue  # a full chunk: the new version's overflow would go to a chunk of its own
        for doc in docs:
            if doc["generationId"] == chunk["_id"] and doc["size"] and doc["start"] == 0 and doc["end"] == doc["size"] \
                    and sum(d["relativePath"] == doc["relativePath"] for d in docs) == 1:
                return chunk, doc["relativePath"]
    raise AssertionError("no chunk holds a whole file")


async def paths_of(db, chunk: dict) -> set[str]:
    return {d["relativePath"] for d in await db[models.GENERATION_FILES].find({"generationId": chunk["_id"]}).to_list(None)}


async def summary(db, preparation_id: str) -> dict:
    return await handlers.summary(db, await handlers.find(db, preparation_id))


async def refused_by_name(hosting: str, chunk: dict, victim: str) -> None:
    status, body = await get(f"{hosting}/piece/{chunk['pieceCid']}")
    assert status == 409, (status, body[:200])
    error = json.loads(body)
    assert error["detail"]["file"] == victim and victim in error["error"] + str(error["detail"])


async def served(hosting: str, chunk: dict) -> bytes:
    status, body = await get(f"{hosting}/piece/{chunk['pieceCid']}")
    assert status == 200 and commp_of(body, chunk["pieceSize"]) == chunk["pieceCid"]
    return body


async def test_resume_rebuilds_an_unservable_inline_chunk(db, config, source_dir, hosting):
    prepared = await prepare_inline(db, config, source_dir, "inline-demo", DEAL, MIN_CHUNK, MAX_CHUNK)
    chunk, victim = await whole_file_of(db, prepared.chunks)
    (source_dir / victim).write_bytes(NEW_BYTES)
    await refused_by_name(hosting, chunk, victim)
    other = next(c for c in prepared.chunks if c["_id"] != chunk["_id"])  # the victim lives in one chunk only
    await served(hosting, other)
    assert (await summary(db, prepared.id))["generationUnservable"] == 1
    old_layout = await db[models.CAR_LAYOUTS].find({"generationId": chunk["_id"]}).to_list(None)

    await handlers.set_state(db, prepared.id, "active")  # prep resume
    assert (await summary(db, prepared.id))["rescanPending"]
    # Refused by name, never a 404, until the rebuild takes the chunk.
    await refused_by_name(hosting, chunk, victim)
    await run_worker_until_done(db, config, [prepared.id])

    chunks = await chunks_of(db, prepared.id)
    assert len(chunks) == len(prepared.chunks)  # the new version fits where the old one was
    rebuilt = next(c for c in chunks if c["_id"] == chunk["_id"])
    assert rebuilt["status"] == "completed" and rebuilt["inline"] and rebuilt.get("unservable") is None
    assert rebuilt["pieceCid"] != chunk["pieceCid"] and rebuilt["dataCid"] != chunk["dataCid"]
    for before in prepared.chunks:
        if before["_id"] != chunk["_id"]:
            after = next(c for c in chunks if c["_id"] == before["_id"])
            assert (after["dataCid"], after["pieceCid"]) == (before["dataCid"], before["pieceCid"])
    # A fresh layout, all of it of the new CAR, nothing of the old one left over.
    layout = await db[models.CAR_LAYOUTS].find({"generationId": chunk["_id"]}).to_list(None)
    assert len(layout) == rebuilt["layout"]["documents"] and {d["dataCid"] for d in layout} == {rebuilt["dataCid"]}
    assert old_layout and not {d["dataCid"] for d in layout} & {d["dataCid"] for d in old_layout}
    body = await served(hosting, rebuilt)
    assert len(body) == rebuilt["pieceSize"] // 128 * 127
    status, _ = await get(f"{hosting}/piece/{chunk['pieceCid']}")
    assert status == 404  # the old piece is nowhere any more
    await served(hosting, other)

    # The mapping shows the new file: its size, a new CID, which serves the new bytes.
    (entry,) = (await handlers.files(db, prepared.id, victim, 0, 10))["files"]
    assert (entry["size"], entry["end"], entry["pieceCid"], entry["latest"]) == (
        len(NEW_BYTES), len(NEW_BYTES), rebuilt["pieceCid"], True)
    status, data = await get(f"{hosting}/ipfs/{entry['cid']}?format=raw")
    assert status == 200 and data == NEW_BYTES
    after = await summary(db, prepared.id)
    assert after["generationUnservable"] == 0 and not after["rescanPending"]


async def test_a_refused_chunk_with_live_deals_stays_and_its_new_version_goes_to_a_new_chunk(
        db, config, source_dir, hosting):
    prepared = await prepare_inline(db, config, source_dir, "inline-deals", DEAL, MIN_CHUNK, MAX_CHUNK)
    chunk, victim = await whole_file_of(db, prepared.chunks)
    await db[models.DEAL_STATE].insert_one({"_id": models.new_id(), "pieceCid": chunk["pieceCid"],
                                            "state": "active", "provider": "f01000", "client": "f1client"})
    (source_dir / victim).write_bytes(NEW_BYTES)
    await refused_by_name(hosting, chunk, victim)
    layout = await db[models.CAR_LAYOUTS].count_documents({"generationId": chunk["_id"]})

    await handlers.set_state(db, prepared.id, "active")
    await run_worker_until_done(db, config, [prepared.id])
    chunks = await chunks_of(db, prepared.id)
    assert len(chunks) == len(prepared.chunks) + 1
    kept = next(c for c in chunks if c["_id"] == chunk["_id"])
    assert (kept["dataCid"], kept["pieceCid"], kept["status"]) == (chunk["dataCid"], chunk["pieceCid"], "completed")
    # Still refused, by name: its piece can no longer be assembled, and the providers hold it.
    assert kept["unservable"]["file"] == victim and kept["unservable"]["replacedAt"]
    await refused_by_name(hosting, kept, victim)
    assert await db[models.CAR_LAYOUTS].count_documents({"generationId": chunk["_id"]}) == layout
    new = chunks[-1]
    assert await paths_of(db, new) == {victim}
    await served(hosting, new)
    mapping = (await handlers.files(db, prepared.id, victim, 0, 10))["files"]
    assert sorted((f["version"], f["pieceCid"], f["latest"], f["size"]) for f in mapping) == [
        (1, chunk["pieceCid"], False, (await db[models.GENERATION_FILES].find_one(
            {"generationId": chunk["_id"], "relativePath": victim}))["size"]),
        (2, new["pieceCid"], True, len(NEW_BYTES))]
    assert (await summary(db, prepared.id))["generationUnservable"] == 0  # nothing more a resume can do

    # Resumed again: the chunk was dealt with, nothing is asked or added.
    await handlers.set_state(db, prepared.id, "active")
    assert not (await summary(db, prepared.id))["rescanPending"]
    assert len(await chunks_of(db, prepared.id)) == len(chunks)


async def test_a_chunk_served_from_its_car_file_ignores_source_changes(db, config, source_dir, hosting):
    prepared = await prepare(db, config, source_dir, "with-cars", DEAL, MIN_CHUNK, MAX_CHUNK)
    chunk, victim = await whole_file_of(db, prepared.chunks)
    (source_dir / victim).write_bytes(NEW_BYTES)
    body = await served(hosting, chunk)
    assert body == piece_bytes(Path(chunk["carPath"]).read_bytes(), chunk["pieceSize"])
    assert (await db[models.GENERATION].find_one({"_id": chunk["_id"]})).get("unservable") is None
    await handlers.set_state(db, prepared.id, "active")
    status = await summary(db, prepared.id)
    assert not status["rescanPending"] and status["generationUnservable"] == 0
    assert [(c["_id"], c["pieceCid"], c["status"]) for c in await chunks_of(db, prepared.id)] == [
        (c["_id"], c["pieceCid"], c["status"]) for c in prepared.chunks]


async def test_a_refused_chunk_with_live_deals_whose_file_is_back_is_served_again(db, config, source_dir, hosting):
    prepared = await prepare_inline(db, config, source_dir, "inline-back", DEAL, MIN_CHUNK, MAX_CHUNK)
    chunk, victim = await whole_file_of(db, prepared.chunks)
    await db[models.DEAL_STATE].insert_one({"_id": models.new_id(), "pieceCid": chunk["pieceCid"],
                                            "state": "published", "provider": "f01000", "client": "f1client"})
    path = source_dir / victim
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000_000))
    await refused_by_name(hosting, chunk, victim)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # put back as scanned
    await handlers.set_state(db, prepared.id, "active")
    await run_worker_until_done(db, config, [prepared.id])
    chunks = await chunks_of(db, prepared.id)
    assert [(c["_id"], c["pieceCid"]) for c in chunks] == [(c["_id"], c["pieceCid"]) for c in prepared.chunks]
    assert (await db[models.GENERATION].find_one({"_id": chunk["_id"]})).get("unservable") is None
    await served(hosting, chunk)
