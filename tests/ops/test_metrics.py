"""GET /metrics: Prometheus text that parses, counters that move when a dataset is prepared by the
real worker, state gauges read from the database, route templates as labels, and the api_token."""
import asyncio
import time

from prometheus_client.parser import text_string_to_metric_families

from services.preparation.service import app as preparation_app
from services.worker.worker import Worker
from shared.runtime import Runtime
from tests.deals.conftest import api, deal_config, fake_boost, key_file, lotus, proposal  # noqa: F401
from tests.scan_helpers import make_tree


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, sorted label items): value}"""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(metrics: dict, name: str, **labels) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(api, **headers) -> dict:
    response = await api.get("/metrics", headers=headers)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/plain")
    return samples(await response.text())


async def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def test_counters_move_when_a_dataset_is_prepared(db, config, serve_app, tmp_path):
    make_tree(tmp_path / "ds", {"a": 3000, "b/c": 5000, "d": 9000, "e": 10})
    runtime = Runtime(config, db.client, db)
    api = await serve_app(preparation_app(runtime))
    before = await scrape(api)
    assert value(before, "singularity_database_up") == 1
    assert value(before, "singularity_chunks", status="completed") == 0
    response = await api.post("/preparation", json={"name": "m", "path": str(tmp_path / "ds"), "dealSize": "16KiB",
                                                    "minSize": 4000, "maxSize": 8000})
    prep = (await response.json())["id"]
    worker = asyncio.create_task(Worker(db, config).run())
    try:
        async def done():
            status = await (await api.get(f"/preparation/{prep}")).json()
            return status["scanningStatus"] == "completed" and status["generationTotal"] and \
                status["generationCompleted"] == status["generationTotal"]
        await wait_for(done)
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    after = await scrape(api)
    chunks = (await (await api.get(f"/preparation/{prep}")).json())["generationTotal"]
    assert chunks >= 3
    total = 3000 + 5000 + 9000 + 10

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)
    assert moved("singularity_scanned_bytes_total") == total
    assert moved("singularity_scanned_files_total") == 4
    assert moved("singularity_packed_bytes_total") == total
    assert moved("singularity_packed_chunks_total") == chunks
    assert moved("singularity_car_bytes_total") > total
    assert moved("singularity_jobs_claimed_total", collection="ScanningRequest") == 1
    assert moved("singularity_jobs_claimed_total", collection="GenerationRequest") == chunks
    assert moved("singularity_jobs_released_total", collection="GenerationRequest", outcome="completed") == chunks
    # Gauges come from the database, not from this process's counters.
    assert value(after, "singularity_chunks", status="completed") == chunks
    assert value(after, "singularity_preparations", status="completed") == 1
    # One series per route template, however many ids were asked for.
    assert moved("singularity_http_requests_total", service="preparation", method="GET",
                 route="/preparation/{id}", status="200") >= 2
    assert not any("/preparation/" + prep in str(labels) for _, labels in after)
    assert moved("singularity_http_request_duration_seconds_count", service="preparation", method="POST",
                 route="/preparation") == 1


async def test_unmatched_paths_share_one_series_and_database_errors_count(db, config, serve_app):
    api = await serve_app(preparation_app(Runtime(config, db.client, db)))
    before = await scrape(api)
    for i in range(5):
        assert (await api.get(f"/no/such/{i}")).status == 404
    # A command the server refuses: counted wherever it was issued (the listener is on the client).
    try:
        await db.command({"aggregate": "x", "pipeline": [{"$nope": 1}], "cursor": {}})
    except Exception:
        pass
    after = await scrape(api)
    assert value(after, "singularity_http_requests_total", service="preparation", method="GET",
                 route="unmatched", status="404") - value(before, "singularity_http_requests_total",
                 service="preparation", method="GET", route="unmatched", status="404") == 5
    assert value(after, "singularity_database_errors_total", operation="aggregate") > \
        value(before, "singularity_database_errors_total", operation="aggregate")


async def test_metrics_need_the_api_token_when_one_is_set(db, config, serve_app):
    config.connection.api_token = "s3cret"
    api = await serve_app(preparation_app(Runtime(config, db.client, db)))
    response = await api.get("/metrics")
    assert response.status == 401
    assert (await response.json())["error"]
    metrics = await scrape(api, Authorization="Bearer s3cret")
    assert value(metrics, "singularity_http_requests_total", service="preparation", method="GET",
                 route="/metrics", status="401") >= 1


async def test_database_down_reports_up_zero_not_an_error(config, serve_app):
    from shared import database
    client = database.client("mongodb://127.0.0.1:9/x", serverSelectionTimeoutMS=200)
    api = await serve_app(preparation_app(Runtime(config, client, client["x"])))
    metrics = await scrape(api)
    assert value(metrics, "singularity_database_up") == 0
    assert value(metrics, "singularity_chunks", status="completed") == 0
    await client.close()


async def test_every_service_serves_metrics_and_proposals_are_counted(api, db, config, fake_boost, proposal,
                                                                      serve_app):
    from services.hosting.service import app as hosting_app
    hosting = await serve_app(hosting_app(Runtime(config, db.client, db)))
    assert value(await scrape(hosting), "singularity_database_up") == 1
    before = await scrape(api)
    assert (await api.post("/deal", json=proposal)).status == 200
    fake_boost.control(reject="no space")
    assert (await api.post("/deal", json={**proposal, "provider": "f09999"})).status == 422
    after = await scrape(api)
    for outcome in ("proposed", "rejected"):
        assert value(after, "singularity_deal_proposals_total", outcome=outcome) - \
            value(before, "singularity_deal_proposals_total", outcome=outcome) == 1
    assert value(after, "singularity_deals", state="proposed") == 1
    assert value(after, "singularity_deals", state="rejected") == 1
    assert value(after, "singularity_http_requests_total", service="api", method="POST", route="/deal",
                 status="422") >= 1
