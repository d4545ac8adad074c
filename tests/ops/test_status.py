"""`singularity status` and GET /status: runs and their modules from heartbeats, workers with their
current jobs, the database and its schema version, counts by state."""
import asyncio
import json
import socket
import time

from services.preparation.service import app as preparation_app
from shared import jobs, migrations, models
from shared.runtime import Runtime
from tests.processes import singularity, start, stop, wait_http, write_config
from tests.scan_helpers import make_tree


async def test_workers_with_their_jobs_and_silent_ones(db, config, serve_app, tmp_path):
    await jobs.report_health(db, "w-busy", kind="worker", startedAt=models.now() - 60, slots=2)
    await jobs.report_health(db, "w-old")  # as schema version 0 wrote them: no kind
    await db[models.HEALTH].update_one({"_id": "w-old"}, {"$set": {"updatedAt": models.now() - 3600}})
    await jobs.report_health(db, "run-1", kind="run", modules=["worker"], startedAt=models.now() - 60,
                             database={"embedded": False, "address": "db:27017"})
    scan = models.scanning_request("ds", str(tmp_path), 1 << 20, 1000, 2000)
    await db[models.SCANNING].insert_one({**scan, "status": "completed"})
    chunks = [models.generation_request(scan, i, 1, 100) for i in range(3)]
    await db[models.GENERATION].insert_many(chunks)
    assert await jobs.claim(db, models.GENERATION, "w-busy") is not None
    await db[models.GENERATION].update_one({"_id": chunks[2]["_id"]}, {"$set": {"status": "completed"}})
    api = await serve_app(preparation_app(Runtime(config, db.client, db)))
    status = await (await api.get("/status")).json()
    assert [(h["host"], h["modules"], h["alive"]) for h in status["hosts"]] == [(socket.gethostname(), ["worker"], True)]
    workers = {w["id"]: w for w in status["workers"]}
    assert set(workers) == {"w-busy", "w-old"}
    assert workers["w-busy"]["alive"] and workers["w-busy"]["slots"] == 2
    assert [(j["kind"], j["id"], j["index"]) for j in workers["w-busy"]["jobs"]] == [("generation", chunks[0]["_id"], 0)]
    assert not workers["w-old"]["alive"] and workers["w-old"]["jobs"] == []
    assert status["counts"] == {"preparations": {"completed": 1}, "chunks": {"active": 2, "completed": 1}, "deals": {}}
    assert status["database"]["server"] == "nx-27017" and status["database"]["version"]
    assert status["database"]["schemaVersion"] == 0  # nothing migrated this database yet


async def test_status_of_a_running_suite_from_the_cli(db, db_url, tmp_path):
    make_tree(tmp_path / "ds", {"a": 3000, "b/c": 5000})
    config = write_config(tmp_path, db_url)
    suite = start(config, "preparation", "worker", log=tmp_path / "run.log")
    try:
        wait_http(_url(config) + "/preparations")
        singularity(config, "prep", "start", "--name", "ds", "--path", str(tmp_path / "ds"), "--deal-size", "16KiB",
                    "--wait", "--json")
        deadline = time.monotonic() + 30
        while True:  # the run's first heartbeat goes out as the modules start
            status = json.loads(singularity(config, "status", "--json").stdout)
            if status["hosts"] and status["workers"] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert [(h["pid"], h["modules"]) for h in status["hosts"]] == [(suite.pid, ["preparation", "worker"])]
        assert status["hosts"][0]["database"]["embedded"] is False
        assert [(w["pid"], w["alive"], w["jobs"]) for w in status["workers"]] == [(suite.pid, True, [])]
        assert status["counts"]["chunks"] == {"completed": 1}
        assert status["counts"]["preparations"] == {"completed": 1}
        assert status["database"]["schemaVersion"] == migrations.CURRENT
        table = singularity(config, "status").stdout
        assert "preparation, worker" in table and "Workers" in table and "completed 1" in table
    finally:
        stop(suite)
    assert await db[models.HEALTH].count_documents({}) == 0, "a run deregisters its heartbeats when stopped"


async def test_status_when_the_service_is_down_is_one_line(tmp_path, db_url):
    config = write_config(tmp_path, db_url)
    result = singularity(config, "status", check=False)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "cannot reach" in result.stderr


def _url(config) -> str:
    for line in config.read_text().splitlines():
        if line.startswith("deal_preparation_service = "):
            return json.loads(line.split(" = ", 1)[1])
    raise AssertionError("no preparation URL in the config")
