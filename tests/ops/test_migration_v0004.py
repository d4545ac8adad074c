"""Migration v0004: one creation transition per existing deal (so the deal history counts the deals
made before it) and a completion time on completed chunks lacking one, in batches; a run stopped
midway finishes at the next start with nothing written twice."""
import pytest

from services.dealmaking.routes import routes as deal_routes
from shared import migrations, models
from shared.api import create_app
from shared.migrations import v0004_deal_transitions as v0004
from tests.ops import dump


async def stamp(db, version: int) -> None:
    await db[models.SCHEMA_VERSION].insert_one({"_id": models.SCHEMA_VERSION_ID, "version": version,
                                                "lockToken": "", "lockExpires": 0})


async def test_the_version_0_deals_get_their_creation_and_show_in_the_history(db, config, serve_app):
    docs = await dump.load(db)
    await migrations.apply(db)
    deals = {d["_id"]: d for d in docs[models.DEAL_STATE]}
    transitions = await db[models.DEAL_TRANSITION].find({}).sort("_id", 1).to_list(None)
    assert [(t["deal"], t["from"], t["to"], t["time"], t["provider"], t["epoch"]) for t in transitions] == [
        (d["_id"], None, d["state"], d["createdAt"], d["provider"], None) for d in deals.values()]
    assert all(t["_id"] == f"{t['deal']}|" for t in transitions)
    api = await serve_app(create_app(config, db, deal_routes))
    first = int(min(d["createdAt"] for d in deals.values()))
    answer = await (await api.get("/deals/history", params={"since": str(first - 60), "until": str(first + 60),
                                                            "bucket": "120"})).json()
    counts = {s: n for s, n in answer["points"][-1]["counts"].items() if n}
    assert counts == {"published": 1, "rejected": 1}


async def test_backfill_runs_in_batches_and_resumes_after_a_failure(db, monkeypatch):
    await stamp(db, 2)
    await db[models.DEAL_STATE].insert_many([
        {"_id": f"d{i}", "state": "active" if i % 2 else "proposed", "provider": "f01000", "pieceCid": "baga",
         "client": "f1x", "dealId": i, "createdAt": 1000.0 + i, "updatedAt": 2000.0 + i} for i in range(7)])
    await db[models.DEAL_STATE].insert_one({"_id": "d7", "state": "error", "updatedAt": 3000.0})  # no createdAt
    await db[models.GENERATION].insert_many([
        {"_id": "g0", "preparationId": "p", "index": 0, "status": "completed", "size": 5, "createdAt": 10.0,
         "claimedAt": 11.0},
        {"_id": "g1", "preparationId": "p", "index": 1, "status": "completed", "size": 5, "createdAt": 10.0},
        {"_id": "g2", "preparationId": "p", "index": 2, "status": "completed", "size": 5, "completedAt": 50.0},
        {"_id": "g3", "preparationId": "p", "index": 3, "status": "active", "size": 5, "createdAt": 10.0},
    ])
    monkeypatch.setattr(v0004, "BATCH", 3)
    real = db[models.DEAL_TRANSITION].__class__.bulk_write
    calls = []

    async def failing_second_batch(self, requests, **kwargs):
        calls.append(len(requests))
        if len(calls) == 2:
            raise RuntimeError("killed")
        return await real(self, requests, **kwargs)

    monkeypatch.setattr(db[models.DEAL_TRANSITION].__class__, "bulk_write", failing_second_batch)
    with pytest.raises(migrations.MigrationError, match="killed"):
        await migrations.apply(db)
    assert await db[models.DEAL_TRANSITION].count_documents({}) == 3  # the first batch
    state = await migrations.read(db)
    assert state["version"] < v0004.VERSION and state["migrating"]["version"] == v0004.VERSION
    monkeypatch.undo()
    assert await migrations.apply(db) == migrations.CURRENT
    transitions = await db[models.DEAL_TRANSITION].find({}).sort("_id", 1).to_list(None)
    assert [(t["deal"], t["to"], t["time"], t["dealId"]) for t in transitions] == [
        *[(f"d{i}", "active" if i % 2 else "proposed", 1000.0 + i, i) for i in range(7)], ("d7", "error", 3000.0, None)]
    chunks = {c["_id"]: c.get("completedAt") async for c in db[models.GENERATION].find({})}
    assert chunks == {"g0": 11.0, "g1": 10.0, "g2": 50.0, "g3": None}


async def test_backfill_twice_changes_nothing_and_keeps_recorded_transitions(db):
    await stamp(db, 2)
    await db[models.DEAL_STATE].insert_one({"_id": "d", "state": "published", "createdAt": 5.0, "provider": "f0"})
    await migrations.apply(db)
    # Recorded by the new code since, then the step runs again (a resumed run repeats a step).
    await db[models.DEAL_TRANSITION].update_one({"_id": "d|"}, {"$set": {"time": 4.0}})
    await db[models.SCHEMA_VERSION].update_one({}, {"$set": {"version": 3}})
    await migrations.apply(db)
    assert [(t["_id"], t["to"], t["time"]) async for t in db[models.DEAL_TRANSITION].find({})] == [("d|", "published", 4.0)]
