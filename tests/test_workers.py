"""Real worker processes against the shared database: exclusive claims, and recovery after kill -9."""
import asyncio
import signal
import time

from shared import models
from tests.processes import singularity, start, stop, write_config
from tests.scan_helpers import assert_layout, make_tree, reference_chunks, stored_chunks
from tests.wait import BUDGET


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
    scan = models.scanning_request("big", str(tmp_path / "ds"), 1 << 20, min_size, max_size)
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
    assert chunks == reference_chunks(tmp_path / "ds", min_size, max_size, deal_size=1 << 20)
    assert_layout(chunks, files, min_size, max_size)


async def test_run_refuses_unknown_modules_and_bad_config(tmp_path, db_url):
    config = write_config(tmp_path, db_url)
    result = singularity(config, "run", "nonsense", check=False)
    assert result.returncode == 2 and "unknown module" in result.stderr and "Traceback" not in result.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[database]\nport = 'x'\n")
    result = singularity(bad, "prep", "list", check=False)
    assert result.returncode == 2 and "database.port" in result.stderr and "Traceback" not in result.stderr


async def test_kill_9_mid_car_another_worker_rebuilds_the_same_piece(db, db_url, tmp_path):
    from shared.ipld.pack import pack_chunk
    from tests.scan_helpers import write_random

    root = tmp_path / "ds"
    make_tree(root, {"a.txt": 1000, "z/b.txt": 2000})
    write_random(root / "m.bin", 600 << 20)
    deal = 1 << 30
    scan = models.scanning_request("big", str(root), deal, int(deal * 0.6), int(deal * 0.9))
    await db[models.SCANNING].insert_one(scan)
    config = write_config(tmp_path, db_url)
    out_dir = tmp_path / "cars"
    victim = start(config, "worker", log=tmp_path / "victim.log")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            temps = [p for p in out_dir.glob(".pack-*.car.tmp")] if out_dir.exists() else []
            if temps and temps[0].stat().st_size > (50 << 20):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the worker never started the CAR")
    finally:
        stop(victim, signal.SIGKILL)
    assert list(out_dir.glob("*.car")) == [], "a partial CAR was taken as a result"
    chunk = await db[models.GENERATION].find_one({"preparationId": scan["_id"]})
    assert chunk["status"] == "active" and chunk["dataCid"] is None
    survivor = start(config, "preparation", "worker", log=tmp_path / "survivor.log")
    try:
        async def completed():
            doc = await db[models.GENERATION].find_one({"preparationId": scan["_id"]})
            return doc["status"] == "completed"
        await wait_for(completed)
    finally:
        stop(survivor)
    # The victim's half-written CAR went at the survivor's start or at the retry, not an hour later.
    assert list(out_dir.glob(".pack-*.car.tmp")) == []
    chunk = await db[models.GENERATION].find_one({"preparationId": scan["_id"]})
    assert chunk["attempts"] == 2
    files = await db[models.GENERATION_FILES].find({"generationId": chunk["_id"]}).sort("order", 1).to_list(None)
    reference_dir = tmp_path / "reference"
    reference_dir.mkdir()
    reference = pack_chunk([{**f, "path": str(root / f["relativePath"]), "relative_path": f["relativePath"]}
                            for f in files], str(reference_dir),
                           min_piece_size=deal)
    assert (chunk["dataCid"], chunk["pieceCid"], chunk["pieceSize"], chunk["carSize"]) == \
        (reference.data_cid, reference.piece_cid, reference.piece_size, reference.car_size)
    assert (out_dir / f"{chunk['dataCid']}.car").read_bytes() == (reference_dir / f"{chunk['dataCid']}.car").read_bytes()


async def test_a_restarted_database_loses_no_work(tmp_path):
    from shared import database
    from shared.embedded import EmbeddedDatabase
    from tests.conftest import free_port

    port = free_port()
    server = EmbeddedDatabase(str(tmp_path / "db"), port=port).start()
    url = f"{server.url}/restart"
    files = {f"d{i % 7}/{i:05d}.bin": 100 + i % 300 for i in range(12_000)}
    make_tree(tmp_path / "ds", files)
    min_size, max_size = 20_000, 30_000
    scan = models.scanning_request("restart", str(tmp_path / "ds"), 1 << 20, min_size, max_size)
    client = database.client(url)
    db = client["restart"]
    await database.ensure_indexes(db)
    await db[models.SCANNING].insert_one(scan)
    suite = start(write_config(tmp_path, url), "preparation", "worker", log=tmp_path / "suite.log")
    try:
        async def some_chunks():
            return (await db[models.SCANNING].find_one({"_id": scan["_id"]}))["checkpoint"]["index"] >= 2
        await wait_for(some_chunks, interval=0.02)
        server.process.kill()  # the database dies mid-scan...
        server.process.wait()
        await asyncio.sleep(2)  # the scenario: down for a while, with the suite still trying
        server = EmbeddedDatabase(str(tmp_path / "db"), port=port).start()  # ...and comes back

        async def done():
            try:
                doc = await db[models.SCANNING].find_one({"_id": scan["_id"]})
                pending = await db[models.GENERATION].count_documents({"preparationId": scan["_id"],
                                                                        "status": {"$ne": "completed"}})
            except Exception:
                return False
            return doc["status"] == "completed" and pending == 0
        await wait_for(done)
        chunks = await stored_chunks(db, scan["_id"])
        assert chunks == reference_chunks(tmp_path / "ds", min_size, max_size, deal_size=1 << 20)
        assert_layout(chunks, files, min_size, max_size)
    finally:
        stop(suite)
        await client.close()
        server.stop()


async def test_run_fails_clearly_when_a_module_cannot_start(tmp_path, db_url):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, db_url, deal_preparation_service={"port": port})
        result = singularity(config, "run", "preparation", "worker", check=False, timeout=2 * BUDGET)
    assert result.returncode == 1 and "module preparation stopped" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_fails_clearly_when_the_database_is_unreachable(tmp_path):
    from tests.conftest import free_port

    config = write_config(tmp_path, f"mongodb://127.0.0.1:{free_port()}/x/?serverSelectionTimeoutMS=500")
    result = singularity(config, "run", "worker", check=False, timeout=2 * BUDGET)
    assert result.returncode == 1 and "cannot use the database" in result.stderr
    assert "Traceback" not in result.stderr
