"""Real worker processes against the shared database: exclusive claims, and recovery after kill -9."""
import asyncio
import signal
import time

from shared import models
from tests.processes import singularity, start, stop, write_config
from tests.scan_helpers import assert_layout, make_tree, reference_chunks, stored_chunks


async def wait_for(predicate, timeout=90.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(interval)
    raise AssertionError("timed out")


async def test_four_workers_two_hundred_requests_each_done_once(db, db_url, tmp_path):
    make_tree(tmp_path / "ds", {"a": 100, "b/c": 200, "d": 50})
    await db[models.SCANNING].insert_many(
        [models.scanning_request(f"r{i}", str(tmp_path / "ds"), 1024, 300, 600) for i in range(200)])
    config = write_config(tmp_path, db_url)
    workers = [start(config, "worker", log=tmp_path / f"w{i}.log") for i in range(4)]
    try:
        async def all_done():
            return await db[models.SCANNING].count_documents({"status": "completed"}) == 200
        await wait_for(all_done)
    finally:
        for worker in workers:
            stop(worker)
    requests = await db[models.SCANNING].find({}).to_list(None)
    assert all(r["attempts"] == 1 for r in requests), "a request was claimed twice"
    assert await db[models.GENERATION].count_documents({}) == 400  # a+b/c reach minSize, d is the last chunk
    assert await db[models.GENERATION_FILES].count_documents({}) == 600
    assert len({r["scannedBy"] for r in requests}) > 1, "only one worker did all the work"
    assert await db[models.HEALTH].count_documents({}) == 0, "workers deregister on a clean stop"


async def test_kill_9_mid_scan_another_worker_completes(db, db_url, tmp_path):
    files = {f"d{i % 13}/{i:05d}.bin": 50 + i % 200 for i in range(15_000)} | {"big.bin": 300_000}
    make_tree(tmp_path / "ds", files)
    min_size, max_size = 20_000, 30_000
    scan = models.scanning_request("big", str(tmp_path / "ds"), 32768, min_size, max_size)
    await db[models.SCANNING].insert_one(scan)
    config = write_config(tmp_path, db_url)
    victim = start(config, "worker", log=tmp_path / "victim.log")
    try:
        async def some_chunks():
            doc = await db[models.SCANNING].find_one({"_id": scan["_id"]})
            return doc["checkpoint"]["index"] >= 3
        await wait_for(some_chunks, interval=0.02)
    finally:
        stop(victim, signal.SIGKILL)
    doc = await db[models.SCANNING].find_one({"_id": scan["_id"]})
    assert doc["status"] == "active" and doc["workerId"] is not None, "the kill came too late to test anything"
    survivor = start(config, "preparation", "worker", log=tmp_path / "survivor.log")
    try:
        async def completed():
            return (await db[models.SCANNING].find_one({"_id": scan["_id"]}))["status"] == "completed"
        await wait_for(completed)
    finally:
        stop(survivor)
    doc = await db[models.SCANNING].find_one({"_id": scan["_id"]})
    assert doc["attempts"] == 2
    chunks = await stored_chunks(db, scan["_id"])
    assert chunks == reference_chunks(tmp_path / "ds", min_size, max_size)
    assert_layout(chunks, files, min_size, max_size)


async def test_run_refuses_unknown_modules_and_bad_config(tmp_path, db_url):
    config = write_config(tmp_path, db_url)
    result = singularity(config, "run", "nonsense", check=False)
    assert result.returncode == 2 and "unknown module" in result.stderr and "Traceback" not in result.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[database]\nport = 'x'\n")
    result = singularity(bad, "prep", "list", check=False)
    assert result.returncode == 2 and "database.port" in result.stderr and "Traceback" not in result.stderr
