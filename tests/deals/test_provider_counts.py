"""GET /deals/providers: our deals counted by state for a page of providers, in a fixed number of
queries whatever the number of deals (what the dashboard's deals page shows)."""
from __future__ import annotations

from pymongo import monitoring

from services.dealmaking import handlers
from services.dealmaking.routes import routes
from shared import models
from shared.api import create_app


def deal(provider: str, state: str) -> dict:
    return {"_id": models.new_id(), "provider": provider, "state": state, "pieceCid": "baga", "client": "f1x"}


async def test_counts_by_state_per_provider_paged(db, config, serve_app):
    deals = ([deal("f01000", "active") for _ in range(3)]
             + [deal("f01000", "slashed"), deal("f01001", "proposed"), deal("f01001", "rejected")]
             + [deal(f"f0{2000 + i}", "error") for i in range(5)])
    await db[models.DEAL_STATE].insert_many(deals)
    client = await serve_app(create_app(config, db, routes))
    first = await (await client.get("/deals/providers?limit=2")).json()
    assert first["total"] == 7 and first["states"][:3] == ["sending", "proposed", "published"]
    assert first["providers"] == [
        {"provider": "f01000", "counts": {"active": 3, "slashed": 1}, "total": 4},
        {"provider": "f01001", "counts": {"proposed": 1, "rejected": 1}, "total": 2}]
    rest = await (await client.get("/deals/providers?offset=2&limit=100")).json()
    assert [p["provider"] for p in rest["providers"]] == [f"f0{2000 + i}" for i in range(5)]
    assert all(p["counts"] == {"error": 1} for p in rest["providers"])
    assert (await (await client.get("/deals/providers?offset=99")).json())["providers"] == []
    assert (await client.get("/deals/providers?limit=1001")).status == 400


async def test_a_page_costs_the_same_queries_for_forty_or_a_thousand_deals(db, db_url):
    counted = []

    class Listener(monitoring.CommandListener):
        def started(self, event):
            if event.command_name == "aggregate":
                counted.append(event.command_name)

        def succeeded(self, event):
            pass

        def failed(self, event):
            pass

    from shared import database
    client = database.client(db_url, event_listeners=[Listener()])
    watched = client[db.name]
    try:
        runs = []
        for n in (40, 1000):
            await db[models.DEAL_STATE].insert_many([deal(f"f0{1000 + i % 40}", "active") for i in range(n)])
            counted.clear()
            answer = await handlers.provider_counts(watched, 0, 20)
            runs.append(len(counted))
            assert len(answer["providers"]) == 20
        assert runs[0] == runs[1] == 1 + len(models.DealStatus)
    finally:
        await client.close()
