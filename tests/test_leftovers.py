"""Nothing is left behind: temporary CARs of dead workers, and the records of a removed preparation."""
import asyncio
import os
import socket
import subprocess
import sys
import time

from aiohttp.test_utils import TestClient, TestServer

from services.hosting.routes import routes as hosting_routes
from services.indexing import builder
from services.indexing.indexer import build_index
from services.preparation import handlers
from services.worker import generation
from services.worker.generation import GenerationRun
from services.worker.scanning import ScanRun
from services.worker.worker import Worker
from shared import jobs, models
from shared.api import create_app
from tests.scan_helpers import make_tree


def dead_pid() -> int:
    """The pid of a process of this host that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


async def register(db, worker_id: str, pid: int, host: str | None = None, age: float = 0.0) -> None:
    await db[models.HEALTH].insert_one({"_id": worker_id, "workerId": worker_id, "pid": pid,
                                        "host": host or socket.gethostname(), "updatedAt": models.now() - age})


def temp_car(out_dir, worker_id: str, random: str = "abcd1234") -> str:
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{generation.temp_prefix(worker_id)}{random}.car.tmp")
    with open(path, "wb") as f:
        f.write(b"half a CAR")
    return os.path.basename(path)


def test_temporary_cars_are_named_for_their_worker():
    name = f"{generation.temp_prefix('0b7c5a3e-1f2d-4c5b-9a8e-7d6c5b4a3f2e')}x1y2z3_9.car.tmp"
    assert generation.temp_owner(name) == "0b7c5a3e-1f2d-4c5b-9a8e-7d6c5b4a3f2e"
    assert generation.temp_owner(".pack-k2j4h5g6.car.tmp") is None  # older versions: no owner
    assert generation.temp_owner("bafyfinished.car") is None


async def test_temporary_cars_no_live_worker_owns_are_removed(db, tmp_path):
    out = tmp_path / "cars"
    await register(db, "live", os.getpid())
    await register(db, "killed", dead_pid())  # its report is fresh, but its process is gone
    await register(db, "elsewhere", 1, host="another-host")  # another host's live worker
    await register(db, "silent", 1, host="another-host", age=120)  # silent past the worker timeout
    names = {worker: temp_car(out, worker) for worker in ("live", "killed", "elsewhere", "silent", "never-seen")}
    (out / ".pack-k2j4h5g6.car.tmp").write_bytes(b"an unnamed one, still young")
    (out / "bafyfinished.car").write_bytes(b"a result")
    assert await generation.remove_orphan_temp_files(db, str(out), worker_timeout=30) == 3
    assert sorted(os.listdir(out)) == sorted([names["live"], names["elsewhere"], ".pack-k2j4h5g6.car.tmp",
                                              "bafyfinished.car"])


async def test_a_worker_start_removes_the_temporary_car_of_a_killed_worker(db, config, tmp_path):
    out = config.deal_preparation_worker.out_dir
    await register(db, "killed", dead_pid())
    leftover = temp_car(out, "killed")
    worker = asyncio.create_task(Worker(db, config).run())
    try:
        deadline = time.monotonic() + 30
        while leftover in os.listdir(out):
            assert time.monotonic() < deadline, "the leftover survived the worker's start"
            await asyncio.sleep(0.05)
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)


async def test_the_retry_of_a_chunk_removes_the_temporary_car_of_its_dead_worker(db, tmp_path):
    make_tree(tmp_path / "ds", {"a.txt": 1000})
    scan = models.scanning_request("ds", str(tmp_path / "ds"), 1 << 20, 600_000, 900_000)
    await db[models.SCANNING].insert_one(scan)
    await ScanRun(db, await jobs.claim(db, models.SCANNING, "scanner"), "scanner").run()
    out = tmp_path / "cars"
    # The first worker claimed the chunk, wrote part of its CAR and was killed; the maintenance
    # task dropped its health record and released the chunk.
    job = await jobs.claim(db, models.GENERATION, "w1")
    leftover = temp_car(out, "w1")
    await jobs.release(db, models.GENERATION, job["_id"], "w1")
    await register(db, "w2", os.getpid())
    retry = await jobs.claim(db, models.GENERATION, "w2")
    assert retry["attempts"] == 2
    await GenerationRun(db, retry, "w2", str(out), worker_timeout=30).run()
    chunk = await db[models.GENERATION].find_one({"_id": job["_id"]})
    assert chunk["status"] == "completed"
    assert leftover not in os.listdir(out) and [n for n in os.listdir(out) if n.endswith(".tmp")] == []


# --- removing a preparation ---

async def prepared(db, config, root) -> str:
    scan = models.scanning_request("ds", str(root), 1 << 20, 600_000, 900_000)
    await db[models.SCANNING].insert_one(scan)
    await ScanRun(db, await jobs.claim(db, models.SCANNING, "scanner"), "scanner").run()
    while job := await jobs.claim(db, models.GENERATION, "gen"):
        await GenerationRun(db, job, "gen", config.deal_preparation_worker.out_dir).run()
    return scan["_id"]


async def test_removing_a_preparation_removes_everything_it_owns(db, config, tmp_path):
    make_tree(tmp_path / "ds", {"a.txt": 700_000, "b/c.txt": 700_000, "b/d.txt": 10})
    preparation = await prepared(db, config, tmp_path / "ds")
    index_cid = await build_index(db, config, preparation)
    assert index_cid and await db[models.INDEX_BLOCKS].count_documents({"preparationId": preparation})
    client = TestClient(TestServer(create_app(config, db, hosting_routes)))
    await client.start_server()
    try:
        assert (await client.get(f"/ipfs/{index_cid}?format=raw")).status == 200
        await handlers.remove(db, preparation)
        response = await client.get(f"/ipfs/{index_cid}?format=raw")
        assert response.status == 404, await response.text()
    finally:
        await client.close()
    # Whatever collection holds documents of the preparation, none is left.
    for name in await db.list_collection_names():
        assert await db[name].count_documents({"preparationId": preparation}) == 0, name
    assert await db[models.SCANNING].count_documents({"_id": preparation}) == 0


async def test_an_index_built_while_its_preparation_is_removed_leaves_no_blocks(db, config, tmp_path, monkeypatch):
    make_tree(tmp_path / "ds", {"a.txt": 1000})
    preparation = await prepared(db, config, tmp_path / "ds")
    write = builder.write_index_car

    def removed_meanwhile(*args, **kwargs):
        result = write(*args, **kwargs)
        asyncio.run_coroutine_threadsafe(handlers.remove(db, preparation), loop).result()
        return result

    loop = asyncio.get_running_loop()
    monkeypatch.setattr(builder, "write_index_car", removed_meanwhile)
    assert await build_index(db, config, preparation) is None
    assert await db[models.INDEX_BLOCKS].count_documents({}) == 0
