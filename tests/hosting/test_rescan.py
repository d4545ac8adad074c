"""Datasets that change (issue 14, part 4), through the real worker, indexer, hosting service and
`singularity retrieve`: a rescan packs exactly what is new or changed, a resumed chunk that failed
on changed files is rebuilt, and a chunk with live deals is never touched."""
from __future__ import annotations

import asyncio
import io
import os
import random
import shutil
import tarfile

import aiohttp

from cli import retrieve as cli_retrieve
from services.indexing.indexer import build_index
from services.indexing.sources import Source
from services.preparation import handlers
from services.worker.worker import Worker
from shared import jobs, models
from tests.hosting.conftest import DEAL, MAX_CHUNK, MIN_CHUNK, MiB
from tests.pipeline import chunks_of, insert_request, prepare, run_worker_until_done, snapshot, write_tree


def tree() -> dict[str, bytes]:
    rng = random.Random(14)
    files = {f"docs/{i:02d}.txt": rng.randbytes(rng.randrange(1, 40_000)) for i in range(12)}
    files.update({
        "big/split.bin": rng.randbytes(2 * MiB + 12_345),  # spans chunks
        "data/a.csv": b"a,b\n1,2\n",
        "data-2/b.csv": b"c,d\n",  # sorts before data/ as a string, after it as a path
        "empty.txt": b"",
        "keep/old.bin": rng.randbytes(300_000),
    })
    return files


async def retrieve_all(hosting: str, name: str, out) -> dict:
    return await asyncio.to_thread(cli_retrieve.run, name, [Source(hosting)], ("piece",), str(out), None)


def files_of(docs) -> set[str]:
    return {d["relativePath"] for d in docs if not d.get("deleted")}


async def test_rescan_adds_chunks_for_exactly_the_new_and_changed_files(db, config, tmp_path, hosting):
    root = tmp_path / "dataset"
    write_tree(root, tree(), ("data/e",))
    prepared = await prepare(db, config, root, "demo", DEAL, MIN_CHUNK, MAX_CHUNK)
    first_index = await build_index(db, config, prepared.id)
    before = {c["_id"]: (c["dataCid"], c["pieceCid"], c["pieceSize"]) for c in prepared.chunks}
    rng = random.Random(15)
    added = {f"new/{i}.bin": rng.randbytes(rng.randrange(1, 200_000)) for i in range(7)}
    added.update({"data/e.x": b"beside an empty folder\n", "data/e2/inner": b"x", "zz.txt": b"last\n"})
    write_tree(root, added)
    changed = {"docs/03.txt": b"changed\n", "big/split.bin": rng.randbytes(MiB + 7), "data-2/b.csv": b"e,f\n"}
    write_tree(root, changed)
    os.unlink(root / "docs/05.txt")
    shutil.rmtree(root / "keep")  # its only file: the folder goes too

    answer = await handlers.rescan(db, prepared.id)
    assert answer["rescan"] and answer["state"] == "active"
    await run_worker_until_done(db, config, [prepared.id])

    chunks = await chunks_of(db, prepared.id)
    assert {c["_id"]: (c["dataCid"], c["pieceCid"], c["pieceSize"]) for c in chunks[:len(before)]} == before
    new_chunks = chunks[len(before):]
    assert new_chunks and all(c["status"] == "completed" for c in new_chunks)
    placed = await db[models.GENERATION_FILES].find({"generationId": {"$in": [c["_id"] for c in new_chunks]}}).to_list(None)
    assert files_of(placed) == set(added) | set(changed)
    tombstones = await db[models.GENERATION_FILES].find({"preparationId": prepared.id, "deleted": True}).to_list(None)
    assert sorted((t["relativePath"], t["version"], t["generationId"]) for t in tombstones) == [
        ("docs/05.txt", 2, None), ("keep/old.bin", 2, None)]
    scan = await db[models.SCANNING].find_one({"_id": prepared.id})
    assert {k: scan["lastRescan"][k] for k in ("added", "changed", "deleted")} == {"added": 10, "changed": 3,
                                                                                 "deleted": 2}
    assert scan["indexStale"] and "rescan" not in scan

    index = await build_index(db, config, prepared.id)
    assert index and index != first_index
    out = tmp_path / "out"
    summary = await retrieve_all(hosting, "demo", out)
    assert summary["indexCid"] == index
    assert snapshot(out / "demo") == snapshot(root)  # the new tree, byte for byte, empty folder too
    async with aiohttp.ClientSession() as session, session.get(f"{hosting}/bundle/demo") as response:
        assert response.status == 200
        bundle = tarfile.open(fileobj=io.BytesIO(await response.read()))
    members = {m.name[len("demo/"):]: m for m in bundle.getmembers() if m.name.startswith("demo/")}
    files, dirs = snapshot(root)
    assert {n: bundle.extractfile(m).read() for n, m in members.items() if m.isfile()} == files
    assert sorted(n for n, m in members.items() if m.isdir()) == sorted(dirs)

    # The mapping keeps every version with its chunk; the newest is the one served.
    mapping = await handlers.files(db, prepared.id, "big/split.bin", 0, 100)
    versions = sorted({(f["version"], f["latest"]) for f in mapping["files"]})
    assert versions == [(1, False), (2, True)]
    assert {f["chunk"] for f in mapping["files"] if f["version"] == 2} <= {c["index"] for c in new_chunks}
    gone = (await handlers.files(db, prepared.id, "keep/old.bin", 0, 100))["files"]
    assert sorted((f["version"], f["deleted"], f["latest"], f["chunk"] is None) for f in gone) == [
        (1, False, False, False), (2, True, True, True)]

    # Nothing changed since: a rescan adds nothing and leaves the index as it is.
    await handlers.rescan(db, prepared.id)
    await run_worker_until_done(db, config, [prepared.id])
    assert len(await chunks_of(db, prepared.id)) == len(chunks)
    scan = await db[models.SCANNING].find_one({"_id": prepared.id})
    assert scan["lastRescan"]["unchanged"] == len(snapshot(root)[0]) + 1  # and the empty folder data/e
    assert {scan["lastRescan"][k] for k in ("added", "changed", "deleted")} == {0}


async def test_a_changed_file_is_rebuilt_in_its_chunk_on_resume(db, config, tmp_path, hosting):
    root = tmp_path / "dataset"
    files = {"a.bin": os.urandom(200_000), "b.bin": os.urandom(300_000), "c.bin": os.urandom(100_000)}
    write_tree(root, files)
    scan = await insert_request(db, root, "demo", DEAL, MIN_CHUNK, MAX_CHUNK)
    job = await jobs.claim(db, models.SCANNING, "scanner")
    from services.worker.scanning import ScanRun
    await ScanRun(db, job, "scanner").run()
    (chunk,) = await chunks_of(db, scan["_id"])
    # b.bin grows past what the chunk can hold after the scan, before its CAR is made.
    grown = os.urandom(MAX_CHUNK)
    (root / "b.bin").write_bytes(grown)
    task = asyncio.create_task(run_worker_until_done(db, config, [scan["_id"]]))
    try:
        await task
    except AssertionError as exc:
        assert "file changed since the scan" in str(exc)
    failed = await db[models.GENERATION].find_one({"_id": chunk["_id"]})
    assert failed["status"] == "error" and failed["sourceChanged"]

    await handlers.set_state(db, scan["_id"], "active")
    assert (await handlers.summary(db, await handlers.find(db, scan["_id"])))["rescanPending"]
    assert await Worker(db, config).run_one()  # the scanning job comes first: it refreshes the chunk
    await run_worker_until_done(db, config, [scan["_id"]])
    chunks = await chunks_of(db, scan["_id"])
    assert [c["_id"] for c in chunks][0] == chunk["_id"] and len(chunks) == 2  # its overflow: a chunk at the end
    assert all(c["status"] == "completed" and c["dataCid"] for c in chunks)
    mapping = (await handlers.files(db, scan["_id"], "b.bin", 0, 100))["files"]
    assert [(f["chunk"], f["size"], f["version"]) for f in mapping] == [(0, len(grown), 1), (1, len(grown), 1)]
    assert mapping[0]["end"] == mapping[1]["start"] and mapping[1]["end"] == len(grown)
    assert all(f["cid"] for f in mapping)
    index = await build_index(db, config, scan["_id"])
    out = tmp_path / "out"
    await retrieve_all(hosting, "demo", out)
    assert snapshot(out / "demo") == snapshot(root)


async def test_a_chunk_with_live_deals_is_left_alone(db, config, tmp_path, hosting):
    root = tmp_path / "dataset"
    write_tree(root, {"a.txt": b"first version\n", "b.txt": b"stays\n"})
    prepared = await prepare(db, config, root, "demo", DEAL, MIN_CHUNK, MAX_CHUNK)
    (chunk,) = prepared.chunks
    await db[models.DEAL_STATE].insert_one({"_id": models.new_id(), "pieceCid": chunk["pieceCid"], "state": "active",
                                            "provider": "f01000", "client": "f1client"})
    (root / "a.txt").write_bytes(b"second version, longer\n")
    # What a regeneration, or the serving check of an inline chunk, leaves: failed on a changed file.
    await db[models.GENERATION].update_one({"_id": chunk["_id"]}, {"$set": {
        "status": "error", "error": "file changed since the scan: a.txt", "sourceChanged": True}})
    await handlers.set_state(db, prepared.id, "active")
    assert await Worker(db, config).run_one()
    await run_worker_until_done(db, config, [prepared.id])
    chunks = await chunks_of(db, prepared.id)
    assert len(chunks) == 2
    kept = chunks[0]
    assert (kept["_id"], kept["dataCid"], kept["pieceCid"], kept["status"]) == (
        chunk["_id"], chunk["dataCid"], chunk["pieceCid"], "completed")
    assert os.path.exists(kept["carPath"])
    mapping = (await handlers.files(db, prepared.id, "a.txt", 0, 100))["files"]
    assert sorted((f["version"], f["chunk"], f["latest"]) for f in mapping) == [(1, 0, False), (2, 1, True)]
    await build_index(db, config, prepared.id)
    out = tmp_path / "out"
    await retrieve_all(hosting, "demo", out)
    assert (out / "demo" / "a.txt").read_bytes() == b"second version, longer\n"
    assert (out / "demo" / "b.txt").read_bytes() == b"stays\n"
    shutil.rmtree(out)
