"""Rescans: the comparison of a walk with the stored versions (order corner cases, types that
change, unreadable folders), a rescan killed midway and run again, the API and the roots check."""
from __future__ import annotations

import os
import shutil

import pytest

from services.indexing import builder
from services.preparation import handlers
from services.worker import rescan as rescan_module
from services.worker import walk as walk_module
from services.worker.rescan import RescanRun
from services.worker.scanning import ScanRun
from shared import jobs, models
from shared.api import Conflict, InvalidParameter
from shared.models import fileversions
from tests.pipeline import write_tree

DEAL = 1 << 20


async def scanned(db, root, files, empty_dirs=()):
    write_tree(root, files, empty_dirs)
    scan = models.scanning_request("ds", str(root), DEAL, DEAL // 4, DEAL // 2)
    await db[models.SCANNING].insert_one(scan)
    job = await jobs.claim(db, models.SCANNING, "scanner")
    await ScanRun(db, job, "scanner").run()
    return scan["_id"]


async def rescanned(db, preparation_id, worker="rescanner"):
    await handlers.rescan(db, preparation_id)
    job = await jobs.claim(db, models.SCANNING, worker)
    run = RescanRun(db, job, worker)
    await run.run()
    return run


async def newest(db, preparation_id) -> dict[str, tuple]:
    """path -> (version, directory, size, covered bytes) of the newest version, deleted left out."""
    docs = await db[models.GENERATION_FILES].find({"preparationId": preparation_id}).sort(
        [("relativePath", 1), ("start", 1)]).to_list(None)
    out = {}
    for ranges in fileversions.newest(docs):
        first = ranges[0]
        assert [r["start"] for r in ranges] == [0] + [r["end"] for r in ranges[:-1]], first["relativePath"]
        out[first["relativePath"]] = (fileversions.version_of(first), bool(first.get("directory")), first["size"],
                                      ranges[-1]["end"])
    return out


async def test_paths_whose_string_and_walk_orders_differ(db, tmp_path):
    root = tmp_path / "ds"
    files = {"data/a": b"1", "data-2/b": b"22", "data.txt": b"333", "e.x": b"4", "f": b"file"}
    prep = await scanned(db, root, files, ("e",))
    run = await rescanned(db, prep)
    assert run.counts == {"added": 0, "changed": 0, "unchanged": 6, "deleted": 0, "refreshed": 0}
    assert await db[models.GENERATION].count_documents({"preparationId": prep}) == 1

    # A file becomes a folder, a folder a file, an empty folder fills up, a folder empties.
    os.unlink(root / "f")
    write_tree(root, {"f/inside": b"now a folder"})
    shutil.rmtree(root / "data-2")
    (root / "data-2").write_bytes(b"now a file")
    write_tree(root, {"e/child": b"no longer empty"})
    os.unlink(root / "data" / "a")
    run = await rescanned(db, prep)
    assert run.counts["added"] == 4 and run.counts["deleted"] == 4  # f, data-2/b, the empty e, data/a
    assert await newest(db, prep) == {
        "data": (1, True, 0, 0), "data-2": (1, False, 10, 10), "data.txt": (1, False, 3, 3),
        "e.x": (1, False, 1, 1), "e/child": (1, False, 15, 15), "f/inside": (1, False, 12, 12)}
    mapping = (await handlers.files(db, prep, "f", 0, 100))["files"]  # the file's versions, then the folder
    assert sorted((f["relativePath"], f["version"], f["deleted"], f["latest"]) for f in mapping) == [
        ("f", 1, False, False), ("f", 2, True, True), ("f/inside", 1, False, True)]
    assert [f["relativePath"] for f in (await handlers.files(db, prep, "f", 1, 1))["files"]] == ["f"]
    assert (await handlers.files(db, prep, "f", 2, 5))["total"] == 3

    # Back again: a new version after the tombstone, never a clash with it.
    shutil.rmtree(root / "f")
    (root / "f").write_bytes(b"a file again")
    run = await rescanned(db, prep)
    assert (await newest(db, prep))["f"] == (3, False, 12, 12)
    tree = await builder.collect(db, prep, [], str(tmp_path))  # no chunk packed: nothing to index yet
    assert not tree.files and not tree.dirs


async def test_an_unreadable_folder_keeps_what_was_stored_of_it(db, tmp_path, monkeypatch):
    root = tmp_path / "ds"
    prep = await scanned(db, root, {"locked/a": b"a", "open/b": b"b"})
    real_scandir = walk_module.os.scandir

    def scandir(path):  # what a folder without read permission does (the tests run as root)
        if os.path.basename(path) == "locked":
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(walk_module.os, "scandir", scandir)
    os.unlink(root / "open" / "b")
    run = await rescanned(db, prep)
    assert run.counts["deleted"] == 1 and sorted(await newest(db, prep)) == ["locked/a", "open"]
    problems = await db[models.SCAN_PROBLEMS].find({"preparationId": prep}).to_list(None)
    assert [(p["kind"], p["reason"]) for p in problems] == [("error", "Permission denied")]


async def test_a_rescan_killed_midway_places_everything_once(db, tmp_path, monkeypatch):
    root = tmp_path / "ds"
    prep = await scanned(db, root, {"old.bin": os.urandom(1000)})
    write_tree(root, {f"new/{i:03d}.bin": os.urandom(100_000) for i in range(30)})
    await handlers.rescan(db, prep)
    closes = []
    real_close = RescanRun.close_chunk

    async def close_then_die(self):
        await real_close(self)
        closes.append(self.index)
        if len(closes) == 2:
            raise RuntimeError("killed")

    monkeypatch.setattr(RescanRun, "close_chunk", close_then_die)
    job = await jobs.claim(db, models.SCANNING, "first")
    with pytest.raises(RuntimeError):
        await RescanRun(db, job, "first").run()
    monkeypatch.setattr(RescanRun, "close_chunk", real_close)
    assert await jobs.release(db, models.SCANNING, prep, "first")  # what the maintenance task does for a dead worker
    job = await jobs.claim(db, models.SCANNING, "second")
    run = RescanRun(db, job, "second")
    await run.run()
    assert run.counts["unchanged"] >= 1 and run.counts["added"] < 30  # what the first run committed stays
    got = await newest(db, prep)
    assert len(got) == 31 and all(v == (1, False, 100_000, 100_000) for k, v in got.items() if k != "old.bin")
    indexes = [c["index"] for c in await db[models.GENERATION].find({"preparationId": prep}).to_list(None)]
    assert sorted(indexes) == list(range(len(indexes)))
    scan = await db[models.SCANNING].find_one({"_id": prep})
    assert scan["status"] == "completed" and "rescan" not in scan and scan["checkpoint"]["open"] is None


async def test_the_api_takes_a_state_or_a_rescan(db, tmp_path):
    root = tmp_path / "ds"
    write_tree(root, {"a": b"a"})
    scan = models.scanning_request("ds", str(root), DEAL, DEAL // 4, DEAL // 2)
    await db[models.SCANNING].insert_one(scan)
    with pytest.raises(Conflict):  # the first scan has not run
        await handlers.change(db, scan["_id"], {"rescan": True, "state": None})
    for body in ({"state": None, "rescan": None}, {"state": "active", "rescan": True}):
        with pytest.raises(InvalidParameter):
            await handlers.change(db, scan["_id"], body)
    job = await jobs.claim(db, models.SCANNING, "scanner")
    await ScanRun(db, job, "scanner").run()
    answer = await handlers.change(db, scan["_id"], {"rescan": True, "state": None})
    assert answer["rescan"] and answer["id"] == scan["_id"]
    # Asked twice before a worker comes: one job, the newest ask.
    again = await handlers.change(db, scan["_id"], {"rescan": True, "state": None})
    stored = await db[models.SCANNING].find_one({"_id": scan["_id"]})
    assert stored["status"] == "active" and stored["rescan"]["id"] == again["rescan"] and stored["rescan"]["walk"]
    summary = await handlers.summary(db, stored)
    assert summary["rescanPending"] and summary["lastRescan"] is None


async def test_a_rescan_asked_while_paused_waits_for_resume(db, tmp_path):
    root = tmp_path / "ds"
    prep = await scanned(db, root, {"a": b"a"})
    await handlers.set_state(db, prep, "paused")
    await handlers.rescan(db, prep)
    assert await jobs.claim(db, models.SCANNING, "w") is None
    await handlers.set_state(db, prep, "active")
    assert (await jobs.claim(db, models.SCANNING, "w"))["rescan"]["walk"]


async def test_the_worker_refuses_a_dataset_no_longer_inside_its_roots(db, config, tmp_path):
    elsewhere = tmp_path.parent / f"{tmp_path.name}-outside"
    write_tree(elsewhere, {"a": b"a"})
    try:
        scan = models.scanning_request("ds", str(elsewhere), DEAL, DEAL // 4, DEAL // 2)
        await db[models.SCANNING].insert_one(scan)
        job = await jobs.claim(db, models.SCANNING, "w")
        await rescan_module.handler(config)(db, job, "w")
        stored = await db[models.SCANNING].find_one({"_id": scan["_id"]})
        assert stored["status"] == "error" and "dataset_roots" in stored["error"] and str(elsewhere) in stored["error"]
        assert await db[models.GENERATION_FILES].count_documents({}) == 0
    finally:
        shutil.rmtree(elsewhere)


async def test_a_refresh_and_a_walk_in_one_job_place_each_range_once(db, tmp_path):
    root = tmp_path / "ds"
    prep = await scanned(db, root, {"a.bin": os.urandom(100_000), "b.bin": os.urandom(100_000)})
    (chunk,) = await db[models.GENERATION].find({"preparationId": prep}).to_list(None)
    (root / "b.bin").write_bytes(os.urandom(600_000))  # past the chunk's room (maxSize 512 KiB)
    await db[models.GENERATION].update_one({"_id": chunk["_id"]}, {"$set": {
        "status": "error", "error": "file changed since the scan", "sourceChanged": True}})
    await handlers.set_state(db, prep, "active")  # the refresh
    run = await rescanned(db, prep)  # and a walk, in the same job
    assert run.counts["refreshed"] == 1 and run.counts["unchanged"] == 2 and run.counts["changed"] == 0
    got = await newest(db, prep)  # contiguous ranges, none twice
    assert got == {"a.bin": (1, False, 100_000, 100_000), "b.bin": (1, False, 600_000, 600_000)}
    chunks = await db[models.GENERATION].find({"preparationId": prep}).sort("index", 1).to_list(None)
    assert [(c["index"], c["status"]) for c in chunks] == [(0, "active"), (1, "active")]
    assert chunks[0]["size"] + chunks[1]["size"] == 700_000 and 100_000 < chunks[0]["size"] <= DEAL // 2
    assert (chunks[0]["fileCount"], chunks[1]["fileCount"]) == (2, 1)
    # Run again (as after a kill right at the end): nothing more.
    await handlers.set_state(db, prep, "active")
    run = await rescanned(db, prep, "again")
    assert run.counts["refreshed"] == 0 and await newest(db, prep) == got
    assert await db[models.GENERATION].count_documents({"preparationId": prep}) == 2
