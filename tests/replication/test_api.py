"""The replication API: bad bodies refused with nothing written, CAR file requests, lists, CSV."""
from __future__ import annotations

import pytest

from services.preparation import handlers as preparation
from services.hosting.routes import routes as hosting_routes
from shared import models
from shared.api import create_app
from shared.ipld.pack import pack_path

from .conftest import add_dataset

COLLECTIONS = (models.REPLICATION, models.SCANNING, models.GENERATION, models.DEAL_STATE)


async def counts(db) -> dict:
    return {c: await db[c].count_documents({}) for c in COLLECTIONS}


@pytest.mark.parametrize("change, message", [
    ({"datasetId": "nope"}, "unknown datasetId"),
    ({"minReplicas": 0}, "minReplicas"),
    ({"minReplicas": 1000}, "minReplicas"),
    ({"minReplicas": True}, "minReplicas"),
    ({"criteria": "provider in (f01, "}, "criteria"),
    ({"criteria": "nosuch.metric > 1"}, "unknown metric"),
    ({"criteria": [["filrep.success_rate", "gt", "high"]]}, "criteria"),
    ({"maxReplicas": 2}, "maxReplicas"),
    ({"client": "f1notawallet"}, "client"),
    ({"client": "f01234"}, "client"),
    ({"keyPath": "/etc/passwd"}, "keyPath"),
    ({"keyPath": "../../etc/passwd"}, "keyPath"),
    ({"duration": 5}, "duration"),
    ({"price": -1}, "price"),
    ({"urlTemplate": "ftp://x/{dataCid}"}, "urlTemplate"),
    ({"urlTemplate": "http://x/{nope}"}, "urlTemplate"),
    ({"dealsPerDay": 0}, "dealsPerDay"),
    ({"surprise": 1}, "unknown field"),
    ({"pieceCid": "baga6ea4seaqaaaa"}, "only for a CAR file"),
    ({"path": "/tmp/x.car"}, "either datasetId"),
])
async def test_bad_bodies_are_refused_and_write_nothing(env, change, message):
    dataset = await add_dataset(env.db, 1)
    before = await counts(env.db)
    response = await env.api.post("/replication", json={**env.request(dataset), **change})
    assert 400 <= response.status < 500
    body = await response.json()
    assert message in body["error"], body
    assert await counts(env.db) == before


async def test_bad_updates_and_states(env):
    dataset = await add_dataset(env.db, 1)
    created = await (await env.api.post("/replication", json=env.request(dataset))).json()
    for change in ({"state": "gone"}, {"maxReplicas": 1}, {"minReplicas": 51}, {"criteria": "x.y == 1"},
                   {"datasetId": dataset}):
        response = await env.api.post(f"/replication/{created['id']}", json=change)
        assert response.status == 400, change
    assert (await env.api.post("/replication/nope", json={"state": "paused"})).status == 404
    doc = await env.db[models.REPLICATION].find_one({"_id": created["id"]})
    assert doc["minReplicas"] == 3 and doc["state"] == "active"
    response = await env.api.post(f"/replication/{created['id']}", json={"minReplicas": 4})
    assert (await response.json())["maxReplicas"] == 4
    response = await env.api.post(f"/replication/{created['id']}", json={"state": "removed"})
    assert response.status == 200 and await env.db[models.REPLICATION].count_documents({}) == 0


async def test_lists_page_with_the_common_shape_and_removing_the_dataset_removes_its_requests(env):
    dataset = await add_dataset(env.db, 3)
    ids = [(await (await env.api.post("/replication", json=env.request(dataset, minReplicas=n))).json())["id"]
           for n in (1, 2, 3)]
    page = await (await env.api.get("/replications", params={"offset": "1", "limit": "1"})).json()
    assert page["total"] == 3 and page["offset"] == 1 and page["limit"] == 1
    assert [r["id"] for r in page["replications"]] == ids[1:2]
    assert {"replicationFactor", "replicationCompleted", "replicationInProgress", "replicationTotal"} <= set(
        page["replications"][0])
    details = await (await env.api.get(f"/replication/{ids[0]}", params={"limit": "2"})).json()
    assert details["total"] == 3 and len(details["replicationDetails"]) == 2
    assert (await env.api.get("/replications", params={"limit": "0"})).status == 400
    await preparation.remove(env.db, dataset)
    assert await env.db[models.REPLICATION].count_documents({}) == 0


async def test_a_car_file_gets_the_cids_of_pack_and_is_served_by_hosting(env, tmp_path, serve_app):
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.bin").write_bytes(bytes(range(256)) * 300)
    (tmp_path / "packed").mkdir()
    packed = pack_path(str(source), str(tmp_path / "packed"))
    body = {**env.request(None), "path": packed.car_path}
    del body["datasetId"]
    wrong = await env.api.post("/replication", json={**body, "pieceCid": "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"})
    assert wrong.status == 400 and "does not match" in (await wrong.json())["error"]
    assert (await env.api.post("/replication", json={**body, "dataCid": "bafkreibyq7sp6tfrc6mdxet732o2bqebraj2hvmhwbj5wqh6nwkr62r7i4"})).status == 400
    outside = await env.api.post("/replication", json={**body, "path": "/etc/hostname"})
    assert outside.status == 400 and "dataset_roots" in (await outside.json())["error"]
    assert await env.db[models.SCANNING].count_documents({}) == 0
    response = await env.api.post("/replication", json=body)
    assert response.status == 201, await response.text()
    created = await response.json()
    assert (created["dataCid"], created["pieceCid"], created["pieceSize"]) == (
        packed.data_cid, packed.piece_cid, packed.piece_size)
    given = await env.api.post("/replication", json={**body, "dataCid": packed.data_cid, "pieceCid": packed.piece_cid,
                                                     "pieceSize": packed.piece_size})
    assert given.status == 201
    hosting = await serve_app(create_app(env.config, env.db, hosting_routes))
    served = await hosting.get(f"/{packed.data_cid}.car")
    assert served.status == 200
    with open(packed.car_path, "rb") as f:
        assert await served.read() == f.read()
    piece = await hosting.get(f"/piece/{packed.piece_cid}")
    assert piece.status == 200
    # Outside the roots (the configuration changed): no longer served.
    env.config.deal_preparation_service.dataset_roots = [str(tmp_path / "elsewhere")]
    assert (await hosting.get(f"/{packed.data_cid}.car")).status == 404


async def test_csv_lists_the_proposed_deals_of_the_request(env):
    env.boost.control()
    dataset = await add_dataset(env.db, 2)
    created = await (await env.api.post("/replication", json=env.request(
        dataset, criteria="provider in (f01003, f01004)", minReplicas=2))).json()
    await env.replicator().one()
    text = await (await env.api.get(f"/replication/{created['id']}/csv", params={"provider": "f01004"})).text()
    lines = text.strip().splitlines()
    assert lines[0] == "miner_id,deal_cid,filename,data_cid,piece_cid,start_epoch,full_url,client"
    assert len(lines) == 3 and all(line.startswith("f01004,") for line in lines[1:])
    assert (await env.api.get("/replication/nope/csv")).status == 404
