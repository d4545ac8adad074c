"""Scanning against the database: layouts, checkpoints, crashes, pause and resume."""
import pytest

from services.worker import scanning
from services.worker.scanning import ScanRun
from shared import jobs, models
from tests.scan_helpers import assert_layout, make_tree, reference_chunks, stored_chunks

MIN, MAX = 40_000, 60_000
DEAL = 1 << 20  # roomy enough that CAR overhead never closes a chunk below MIN


async def new_request(db, root, name="ds", min_size=MIN, max_size=MAX):
    doc = models.scanning_request(name, str(root), DEAL, min_size, max_size)
    await db[models.SCANNING].insert_one(doc)
    return doc["_id"]


async def claim_and_scan(db, worker="w1", run_class=ScanRun):
    job = await jobs.claim(db, models.SCANNING, worker)
    assert job is not None
    await run_class(db, job, worker).run()
    return job


async def test_ten_thousand_small_files_and_large_ones(db, tmp_path):
    files = {f"small/{i // 1000}/{i:05d}.txt": i % 37 for i in range(10_000)}
    files |= {"big/a.bin": 150_000, "big/b.bin": 61_000, "big/c.bin": 0, ".hidden": 10}
    make_tree(tmp_path, files)
    preparation = await new_request(db, tmp_path)
    await claim_and_scan(db)
    chunks = await stored_chunks(db, preparation)
    assert_layout(chunks, files, MIN, MAX)
    assert chunks == reference_chunks(tmp_path, MIN, MAX, deal_size=DEAL)
    scan = await db[models.SCANNING].find_one({"_id": preparation})
    assert scan["status"] == "completed" and scan["workerId"] is None
    assert scan["scannedFiles"] == len(files)
    assert scan["scannedBytes"] == sum(files.values())
    assert scan["checkpoint"]["index"] == len(chunks)
    generations = await db[models.GENERATION].find({"preparationId": preparation}).to_list(None)
    assert all(g["status"] == "active" and g["workerId"] is None for g in generations)


class Crash(Exception):
    pass


def crashing_after(chunks: int, where: str):
    """A ScanRun that dies like a killed process: mid-chunk, or between insert and checkpoint."""

    class Crashing(ScanRun):
        closed = 0

        async def close_chunk(self):
            if Crashing.closed == chunks:
                await self.flush()  # leave the open chunk's files behind, as a kill would
                if where == "after-insert":
                    generation = models.generation_request(self.request, self.index, self.chunk_files, self.chunk_bytes)
                    generation["_id"] = self.generation_id
                    await self.db[models.GENERATION].insert_one(generation)
                raise Crash()
            Crashing.closed += 1
            await super().close_chunk()

    return Crashing


@pytest.mark.parametrize("where", ["mid-chunk", "after-insert"])
async def test_interrupted_scan_resumes_without_missing_or_duplicate_chunks(db, tmp_path, where):
    files = {f"d{i % 7}/f{i:04d}": (i * 7919) % 30_000 for i in range(300)} | {"huge": 500_000}
    make_tree(tmp_path, files)
    preparation = await new_request(db, tmp_path)
    with pytest.raises(Crash):
        await claim_and_scan(db, "dead", crashing_after(4, where))
    # The dead worker never reports health again: maintenance hands the job back.
    await jobs.report_health(db, "w2")
    assert await jobs.release_expired(db, timeout=60) == 1
    job = await claim_and_scan(db, "w2")
    assert job["checkpoint"]["index"] == 4 and job["attempts"] == 2
    chunks = await stored_chunks(db, preparation)
    assert chunks == reference_chunks(tmp_path, MIN, MAX, deal_size=DEAL)
    assert_layout(chunks, files, MIN, MAX)


async def test_pause_stops_at_a_checkpoint_and_resume_continues(db, tmp_path, monkeypatch):
    from services.preparation import handlers

    monkeypatch.setattr(scanning, "CHECK_INTERVAL", 0)
    monkeypatch.setattr(scanning, "BATCH", 10)
    files = {f"f{i:04d}": 9_000 for i in range(200)}
    make_tree(tmp_path, files)
    preparation = await new_request(db, tmp_path)

    class PausedMidway(ScanRun):
        async def close_chunk(self):
            await super().close_chunk()
            if self.index == 3:
                await handlers.set_state(self.db, self.id, "paused")

    await claim_and_scan(db, "w1", PausedMidway)
    scan = await db[models.SCANNING].find_one({"_id": preparation})
    assert scan["status"] == "paused" and scan["workerId"] is None
    assert 3 <= scan["checkpoint"]["index"] < 10
    assert await jobs.claim(db, models.SCANNING, "w2") is None  # paused work is not claimable
    await handlers.set_state(db, preparation, "active")
    await claim_and_scan(db, "w2")
    assert await stored_chunks(db, preparation) == reference_chunks(tmp_path, MIN, MAX, deal_size=DEAL)


async def test_removed_while_scanning_leaves_nothing(db, tmp_path, monkeypatch):
    from services.preparation import handlers

    monkeypatch.setattr(scanning, "CHECK_INTERVAL", 0)
    monkeypatch.setattr(scanning, "BATCH", 10)
    make_tree(tmp_path, {f"f{i:04d}": 9_000 for i in range(100)})
    preparation = await new_request(db, tmp_path)

    class RemovedMidway(ScanRun):
        async def close_chunk(self):
            await super().close_chunk()
            if self.index == 2:
                await handlers.remove(self.db, self.id)

    await claim_and_scan(db, "w1", RemovedMidway)
    for collection in (models.SCANNING, models.GENERATION, models.GENERATION_FILES, models.SCAN_PROBLEMS):
        assert await db[collection].count_documents({}) == 0, collection


async def test_a_vanished_dataset_is_an_error_not_a_crash(db, tmp_path):
    preparation = await new_request(db, tmp_path / "gone")
    await claim_and_scan(db)
    scan = await db[models.SCANNING].find_one({"_id": preparation})
    assert scan["status"] == "error" and "gone" in scan["error"] and scan["workerId"] is None


async def test_resuming_after_an_empty_file_does_not_place_it_twice(db, tmp_path):
    make_tree(tmp_path, {"a": 100, "b": 0, "c": 100})
    preparation = await new_request(db, tmp_path, min_size=1000, max_size=2000)
    # As if a chunk [a, b] was committed and the worker then died.
    await db[models.SCANNING].update_one({"_id": preparation}, {"$set": {
        "checkpoint": {"index": 1, "after": ["b"], "offset": 0, "open": None}}})
    await claim_and_scan(db)
    files = await db[models.GENERATION_FILES].find({"preparationId": preparation}).to_list(None)
    assert [f["relativePath"] for f in files] == ["c"]


@pytest.mark.parametrize("seed", range(12))
async def test_any_interruption_resumes_to_the_uninterrupted_layout(db, tmp_path, seed):
    """Random trees (empty files, deep paths, files split across chunks, pieces small enough that
    CAR overhead closes chunks), with the worker dying after every chunk, so that the scan resumes
    from every checkpoint it has, at either crash point."""
    import random

    rng = random.Random(seed)
    files = {}
    for i in range(rng.randint(5, 60)):
        depth = rng.randint(0, 3)
        path = "/".join([f"d{rng.randint(0, 3)}" for _ in range(depth)] + [f"f{i}"])
        files[path] = rng.choice([0, 0, 1, rng.randint(1, 3000), rng.randint(3000, 20_000)])
    make_tree(tmp_path / "ds", files)
    deal = rng.choice([4096, 8192, 16384])
    min_size, max_size = deal // 4, deal // 2
    doc = models.scanning_request("r", str(tmp_path / "ds"), deal, min_size, max_size)
    await db[models.SCANNING].insert_one(doc)
    where = rng.choice(["mid-chunk", "after-insert"])

    class DiesAfterOneChunk(ScanRun):
        async def close_chunk(self):
            await super().close_chunk()
            await crashing_after(0, where).close_chunk(self)  # write part of the next one, then die

    for attempt in range(1000):
        if (await db[models.SCANNING].find_one({"_id": doc["_id"]}))["status"] == "completed":
            break
        try:
            await claim_and_scan(db, f"w{attempt}", DiesAfterOneChunk)
        except Crash:
            await jobs.release_expired(db, timeout=-1)
    assert await stored_chunks(db, doc["_id"]) == reference_chunks(tmp_path / "ds", min_size, max_size, deal_size=deal)
