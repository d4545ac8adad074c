"""While the database is away: APIs answer 503 fast, background tasks pause and take up their work
again without judging anyone by a silence the outage caused."""
from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web
from pymongo.errors import AutoReconnect, ConnectionFailure, NetworkTimeout, ServerSelectionTimeoutError

from services.indexing import indexer
from shared import maintenance
from services.preparation.routes import routes as preparation_routes
from shared import database, jobs, models
from shared.api import create_app
from tests.conftest import free_port
from tests.hosting.conftest import MiB
from tests.hosting.fakes.prepared import prepare


@pytest.mark.parametrize("error", [ServerSelectionTimeoutError, AutoReconnect, NetworkTimeout, ConnectionFailure])
async def test_every_connection_error_is_a_503(config, serve_app, error):
    routes = web.RouteTableDef()

    @routes.get("/x")
    async def handler(request):
        raise error("127.0.0.1:1: [Errno 111] Connection refused, Timeout: 1.0s, Topology Description: ...")

    api = await serve_app(create_app(config, None, routes))
    response = await api.get("/x")
    assert response.status == 503 and response.headers["Retry-After"] == "2"
    body = await response.json()
    assert body["error"] == "database unavailable" and "retry" in body["detail"]
    assert "Topology" not in body["detail"], "the driver's internals are logged, not returned"


async def test_the_preparation_api_answers_503_within_2s_without_a_database(config, serve_app, tmp_path):
    client = database.service_client(f"mongodb://127.0.0.1:{free_port()}/gone")
    try:
        api = await serve_app(create_app(config, client["gone"], preparation_routes))
        (tmp_path / "ds").mkdir()
        for method, path, body in [("GET", "/preparations", None), ("GET", "/preparation/abc", None),
                                   ("POST", "/preparation", {"name": "x", "path": str(tmp_path / "ds")})]:
            started = time.monotonic()
            response = await api.request(method, path, json=body)
            elapsed = time.monotonic() - started
            assert response.status == 503, (path, await response.text())
            assert (await response.json())["error"] == "database unavailable"
            assert elapsed < 2.0, f"{method} {path} took {elapsed:.2f}s"
    finally:
        await client.close()


async def test_maintenance_takes_no_job_until_workers_could_report_after_an_outage(db, monkeypatch):
    job = models.scanning_request("r", "/nowhere", 1024, 300, 600)
    job["workerId"] = "busy"
    await db[models.SCANNING].insert_one(job)
    # The worker's last report is old because the database was away, not because it died.
    await db[models.HEALTH].insert_one({"_id": "busy", "workerId": "busy", "updatedAt": models.now() - 60})
    real, calls = jobs.release_expired, []

    async def outage_first(*args):
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise AutoReconnect("connection refused")
        return await real(*args)

    monkeypatch.setattr(jobs, "release_expired", outage_first)
    timeout = 1.0
    task = asyncio.create_task(maintenance.run(db, timeout, 0.05))
    try:
        deadline = time.monotonic() + 30
        while len(calls) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert len(calls) == 2, "maintenance never came back"
        assert calls[1] - calls[0] >= timeout, "a job was judged before its worker could report again"
        while (await db[models.SCANNING].find_one({"_id": job["_id"]}))["workerId"] is not None:
            assert time.monotonic() < deadline, "a worker silent past the grace kept its job"
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_an_index_build_the_database_interrupted_is_taken_up_at_once(db, config, tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.bin").write_bytes(b"a" * 1000)
    prepared = await prepare(db, config, tmp_path / "src", "interrupted", max_chunk=MiB)
    # What a pass interrupted by the database leaves: our own lease, and the blocks it had stored.
    assert await indexer.build_index(db, config, prepared.id)
    blocks = await db[models.INDEX_BLOCKS].count_documents({"preparationId": prepared.id})
    await db[models.SCANNING].update_one({"_id": prepared.id}, {
        "$set": {"indexCid": None, "indexLease": {"owner": indexer.OWNER, "until": models.now() + 600}}})
    assert await indexer.index_pending(db, config) == 1
    assert await db[models.INDEX_BLOCKS].count_documents({"preparationId": prepared.id}) == blocks
    # Another indexer's lease still holds.
    await db[models.SCANNING].update_one({"_id": prepared.id}, {
        "$set": {"indexCid": None, "indexLease": {"owner": "indexer-other", "until": models.now() + 600}}})
    assert await indexer.index_pending(db, config) == 0
