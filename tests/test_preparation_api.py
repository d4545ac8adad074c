"""The preparation API: shapes of the design doc, and bad input refused with nothing written."""
import pytest

from services.preparation.routes import routes
from shared import config as config_module
from shared import models
from shared.api import create_app
from tests.scan_helpers import make_tree


@pytest.fixture
async def api(db, config, serve_app):
    return await serve_app(create_app(config, db, routes))


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "dataset"
    make_tree(root, {"a.txt": 10, "b/c.txt": 20})
    return root


async def nothing_written(db):
    for collection in (models.SCANNING, models.GENERATION, models.GENERATION_FILES):
        assert await db[collection].count_documents({}) == 0


async def test_create_list_details(api, db, dataset):
    response = await api.post("/preparation", json={"name": "ds", "path": str(dataset), "dealSize": "64 KiB"})
    assert response.status == 201
    created = await response.json()
    listed = await (await api.get("/preparations")).json()
    assert {k: listed[k] for k in ("total", "offset", "limit")} == {"total": 1, "offset": 0, "limit": 20}
    assert [p["id"] for p in listed["preparations"]] == [created["id"]]
    item = listed["preparations"][0]
    assert item["dealSize"] == "64 KiB" and item["minSize"] == str(int(65536 * 0.6))
    assert item["maxSize"] == str(int(65536 * 0.9))
    assert item["scanningStatus"] == "active" and item["path"] == str(dataset)
    assert {"generationCompleted", "generationInprogress", "generationTotal"} <= set(item)
    details = await (await api.get(f"/preparation/{created['id']}")).json()
    assert details["generationRequests"] == [] and details["name"] == "ds"


async def test_relative_and_tilde_paths_are_stored_absolute(api, db, dataset, monkeypatch):
    monkeypatch.chdir(dataset.parent)
    response = await api.post("/preparation", json={"name": "rel", "path": "dataset/../dataset", "dealSize": 1024})
    assert response.status == 201
    assert (await db[models.SCANNING].find_one({}))["path"] == str(dataset)


@pytest.mark.parametrize("body,status,fragment", [
    ({}, 400, "missing field: name"),
    ({"name": "x"}, 400, "missing field: path"),
    ({"name": "x", "path": "{dataset}", "dealSize": "3 KiB"}, 400, "power of two"),
    ({"name": "x", "path": "{dataset}", "dealSize": 128}, 400, "power of two"),
    ({"name": "x", "path": "{dataset}", "dealSize": "128 GiB"}, 400, "power of two"),
    ({"name": "x", "path": "{dataset}", "dealSize": "lots"}, 400, "dealSize"),
    ({"name": "x", "path": "{dataset}/no/such/dir", "dealSize": 1024}, 400, "existing directory"),
    ({"name": "x", "path": "{dataset}/a.txt", "dealSize": 1024}, 400, "existing directory"),
    ({"name": "x", "path": "{dataset}", "dealSize": 1024, "minSize": 900, "maxSize": 800}, 400, "minSize"),
    ({"name": "x", "path": "{dataset}", "dealSize": 1024, "maxSize": 1016}, 400, "127/128"),
    ({"name": "x", "path": "{dataset}", "dealSize": 1024, "minSize": 0}, 400, "positive"),
    ({"name": "", "path": "{dataset}"}, 400, "name"),
    ({"name": 5, "path": "{dataset}"}, 400, "name"),
    ({"name": "x", "path": "{dataset}", "colour": "red"}, 400, "unknown field"),
])
async def test_bad_requests_change_nothing(api, db, dataset, body, status, fragment):
    body = {k: (v.replace("{dataset}", str(dataset)) if isinstance(v, str) else v) for k, v in body.items()}
    response = await api.post("/preparation", json=body)
    assert response.status == status
    error = await response.json()
    assert fragment in error["error"] and "detail" in error
    await nothing_written(db)


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe", b""])
async def test_invalid_json(api, db, raw):
    response = await api.post("/preparation", data=raw, headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert "JSON" in (await response.json())["error"]
    await nothing_written(db)


async def test_duplicate_name(api, db, dataset):
    body = {"name": "ds", "path": str(dataset), "dealSize": 1024}
    assert (await api.post("/preparation", json=body)).status == 201
    response = await api.post("/preparation", json=body)
    assert response.status == 409 and "already exists" in (await response.json())["error"]
    assert await db[models.SCANNING].count_documents({}) == 1


async def test_unknown_ids_and_states(api, db, dataset):
    for path in ("/preparation/nope", "/generation/nope"):
        response = await api.get(path)
        assert response.status == 404 and (await response.json())["error"].startswith("no ")
    response = await api.post("/preparation/nope", json={"state": "paused"})
    assert response.status == 404
    created = await (await api.post("/preparation", json={"name": "ds", "path": str(dataset), "dealSize": 1024})).json()
    for body in ({"state": "sleeping"}, {}, {"state": "paused", "extra": 1}):
        response = await api.post(f"/preparation/{created['id']}", json=body)
        assert response.status == 400
    assert (await db[models.SCANNING].find_one({}))["state"] == "active"
    response = await api.get("/no/such/route")
    assert response.status == 404 and (await response.json())["error"] == "Not Found"
    response = await api.get(f"/preparation/{created['id']}?limit=0")
    assert response.status == 400


async def test_pause_resume_remove(api, db, dataset):
    created = await (await api.post("/preparation", json={"name": "ds", "path": str(dataset), "dealSize": 1024})).json()
    pid = created["id"]
    scan = await db[models.SCANNING].find_one({"_id": pid})
    await db[models.GENERATION].insert_one(models.generation_request(scan, 0, 1, 10))
    assert (await api.post(f"/preparation/{pid}", json={"state": "paused"})).status == 200
    details = await (await api.get(f"/preparation/{pid}")).json()
    assert details["state"] == "paused" and details["scanningStatus"] == "paused"
    assert details["generationRequests"][0]["status"] == "paused"
    assert (await api.post(f"/preparation/{pid}", json={"state": "active"})).status == 200
    details = await (await api.get(f"/preparation/{pid}")).json()
    assert details["scanningStatus"] == "active" and details["generationRequests"][0]["status"] == "active"
    assert (await api.post(f"/preparation/{pid}", json={"state": "removed"})).status == 200
    assert (await api.get(f"/preparation/{pid}")).status == 404
    await nothing_written(db)


async def test_file_lists_are_paginated(api, db, dataset):
    created = await (await api.post("/preparation", json={"name": "ds", "path": str(dataset), "dealSize": 1024})).json()
    scan = await db[models.SCANNING].find_one({"_id": created["id"]})
    generation = models.generation_request(scan, 0, 25, 0)
    await db[models.GENERATION].insert_one(generation)
    await db[models.GENERATION_FILES].insert_many([
        {"generationId": generation["_id"], "preparationId": scan["_id"], "order": i,
         "relativePath": f"d/{i}", "size": 0, "mtime": 0.0, "start": 0, "end": 0}
        for i in range(25)])
    page = await (await api.get(f"/generation/{generation['_id']}?offset=20&limit=10")).json()
    assert [f["name"] for f in page["fileList"]] == [str(i) for i in range(20, 25)]
    assert page["fileList"][0]["path"] == f"{dataset}/d/20"
    assert page["index"] == 0 and page["name"] == "ds"


async def test_api_token_is_required_when_set(db, dataset, config, serve_app):
    config.connection.api_token = "s3cret"
    client = await serve_app(create_app(config, db, routes))
    response = await client.get("/preparations")
    assert response.status == 401 and "token" in (await response.json())["error"]
    response = await client.get("/preparations", headers={"Authorization": "Bearer wrong"})
    assert response.status == 401
    response = await client.get("/preparations", headers={"Authorization": "Bearer s3cret"})
    assert response.status == 200


def test_services_bind_loopback_by_default():
    cfg = config_module.parse({})
    assert cfg.deal_preparation_service.bind == cfg.http_hosting_service.bind == "127.0.0.1"


async def test_rescan_over_http(api, db, dataset):
    created = await (await api.post("/preparation", json={"name": "ds", "path": str(dataset), "dealSize": "64 KiB"})).json()
    path = f"/preparation/{created['id']}"
    early = await api.post(path, json={"rescan": True})
    assert early.status == 409 and "first scan" in (await early.json())["error"]
    for body in ({}, {"rescan": False}, {"state": "paused", "rescan": True}, {"rescan": "yes"}):
        refused = await api.post(path, json=body)
        assert refused.status == 400 and "error" in await refused.json(), body
    await db[models.SCANNING].update_one({"_id": created["id"]}, {"$set": {"status": "completed",
                                                                        "scanCompletedAt": models.now()}})
    asked = await api.post(path, json={"rescan": True})
    assert asked.status == 200
    answer = await asked.json()
    assert answer["id"] == created["id"] and answer["state"] == "active" and answer["rescan"]
    summary = await (await api.get(path)).json()
    assert summary["scanningStatus"] == "active" and summary["rescanPending"] and not summary["indexStale"]
    missing = await api.post("/preparation/nope", json={"rescan": True})
    assert missing.status == 404
