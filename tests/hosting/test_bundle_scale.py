"""Bundles of many small files, prepared by the real scanner and worker: the hosting service
issues a bounded number of queries whatever the number of files, and the bytes are right."""
import io
import random
import tarfile

import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.hosting.routes import routes
from services.worker.generation import GenerationRun
from services.worker.scanning import ScanRun
from shared import database, jobs, models
from shared.api import create_app
from tests.commands import Commands

FILES = 500


@pytest.fixture
def tree(tmp_path) -> dict[str, bytes]:
    rng = random.Random(11)
    files = {f"d{i // 40:02d}/f{i:04d}.txt": rng.randbytes(rng.randint(0, 3600)) for i in range(FILES)}
    files["big/multi.bin"] = rng.randbytes(3 * (1 << 20) + 123)  # a file DAG with a node level
    files["d00/dup.bin"] = bytes(2 * (1 << 20) + 7)  # identical leaves, one block in the CAR
    for relative, data in files.items():
        path = tmp_path / "ds" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


async def test_a_bundle_of_500_small_files_costs_a_few_queries(db, db_url, config, tmp_path, tree):
    deal = 1 << 20  # several chunks: the big files are split across them
    scan = models.scanning_request("many", str(tmp_path / "ds"), deal, int(deal * 0.6), int(deal * 0.9))
    await db[models.SCANNING].insert_one(scan)
    await ScanRun(db, await jobs.claim(db, models.SCANNING, "scanner"), "scanner").run()
    while job := await jobs.claim(db, models.GENERATION, "gen"):
        await GenerationRun(db, job, "gen", config.deal_preparation_worker.out_dir).run()
    chunks = await db[models.GENERATION].find({"preparationId": scan["_id"]}).to_list(None)
    assert len(chunks) > 3 and all(c["status"] == "completed" for c in chunks)

    commands = Commands()
    counted = database.client(db_url, event_listeners=[commands])
    client = TestClient(TestServer(create_app(config, counted[db.name], routes)))
    await client.start_server()
    try:
        response = await client.get("/bundle/many")
        body = await response.read()
        assert response.status == 200, body[:500]
    finally:
        await client.close()
        await counted.close()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        got = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    assert got == {f"many/{k}": v for k, v in tree.items()}
    queries = [name for name in commands.names if name in ("find", "getMore", "aggregate", "count")]
    # Before: a CarBlock query per file (over 500). Now: the preparation, its files, its chunks, and
    # one query per CAR and DAG level for each batch of members.
    assert len(queries) <= 3 * len(chunks) + 10, commands.names
