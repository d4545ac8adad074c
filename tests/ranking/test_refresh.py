"""A refresh against fake sources stores exactly the expected metrics; a second one changes none;
a failing source keeps its last values and records its error."""
from __future__ import annotations

import datetime as dt

import pytest

from shared import models


def _unix(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


# Written out by hand from the fixtures in conftest.py, not computed by the code under test.
EXPECTED = {
    "f01000": {
        "lotus.peer_id": "12D3KooWPeerA", "lotus.sector_size": 34359738368, "lotus.raw_power": 1099511627776,
        "lotus.quality_adj_power": 10995116277760, "lotus.has_min_power": True,
        "lotus.http_endpoint": "https://sp0.example",
        "deals.proposed": 4, "deals.rejected": 1, "deals.active": 2, "deals.slashed": 0, "deals.expired": 1,
        "deals.acceptance_rate": 0.75, "deals.activation_rate": 1.0, "deals.median_hours_to_activation": 4.0,
        "filrep.reachable": True, "filrep.status": True, "filrep.uptime": 0.98, "filrep.success_rate": 0.98,
        "filrep.deals_total": 120, "filrep.deals_slashed": 2, "filrep.price": 0, "filrep.verified_price": 0,
        "filrep.min_piece_size": 256, "filrep.max_piece_size": 34359738368, "filrep.raw_power": 1099511627776,
        "filrep.quality_adj_power": 10995116277760, "filrep.free_space": 1000, "filrep.score": 97,
        "filrep.rank": 12, "filrep.region": "North America", "filrep.iso_code": "US",
        "datacapstats.verified_deals": 12, "datacapstats.verified_bytes": 412316860416,
        "datacapstats.clients": 3, "datacapstats.last_deal_height": 4863200,
        "ipni.active": True, "ipni.last_advertisement": _unix("2026-05-01T10:00:00+00:00"),
        "ipni.last_error": "", "ipni.http": True,
    },
    "f01001": {
        "lotus.peer_id": "12D3KooWPeerB", "lotus.sector_size": 68719476736, "lotus.raw_power": 0,
        "lotus.quality_adj_power": 0, "lotus.has_min_power": False,
        "lotus.http_endpoint": "http://10.0.0.1:8080",
        "deals.proposed": 3, "deals.rejected": 2, "deals.active": 0, "deals.slashed": 0, "deals.expired": 0,
        "deals.acceptance_rate": 1 / 3, "deals.activation_rate": 0.0,
        "filrep.reachable": False, "filrep.status": False, "filrep.uptime": 0.5, "filrep.success_rate": 0.4,
        "filrep.deals_total": 10, "filrep.deals_slashed": 6, "filrep.price": 20000000, "filrep.verified_price": 0,
        "filrep.min_piece_size": 256, "filrep.max_piece_size": 68719476736, "filrep.raw_power": 0,
        "filrep.quality_adj_power": 0, "filrep.free_space": 0, "filrep.score": 40, "filrep.rank": 300,
        "filrep.region": "Europe", "filrep.iso_code": "DE",
        "ipni.active": False, "ipni.last_advertisement": _unix("2025-01-02T03:04:05.123456+00:00"),
        "ipni.last_error": "fetching advertisement: timeout", "ipni.http": False,
    },
    "f01002": {
        "lotus.peer_id": "12D3KooWPeerC", "lotus.sector_size": 34359738368, "lotus.raw_power": 5,
        "lotus.quality_adj_power": 7, "lotus.has_min_power": False,
        "deals.proposed": 2, "deals.rejected": 0, "deals.active": 0, "deals.slashed": 1, "deals.expired": 0,
        "deals.acceptance_rate": 1.0, "deals.activation_rate": 0.5, "deals.median_hours_to_activation": 10.0,
        "datacapstats.verified_deals": 1, "datacapstats.verified_bytes": 34359738368,
        "datacapstats.clients": 1, "datacapstats.last_deal_height": 4000000,
        "ipni.active": False,
    },
    "f01003": {
        "filrep.reachable": True, "filrep.status": True, "filrep.uptime": 1, "filrep.success_rate": 1,
        "filrep.deals_total": 0, "filrep.score": 50, "filrep.rank": 100, "filrep.region": "Asia",
        "filrep.iso_code": "JP",
    },
}


async def stored(db) -> dict[str, dict]:
    out: dict[str, dict] = {}
    async for doc in db[models.PROVIDER_METRIC].find({}):
        assert doc["_id"] == models.provider_metric_id(doc["provider"], doc["dataProvider"], doc["metricName"])
        assert doc["metricName"].startswith(doc["dataProvider"] + ".")
        out.setdefault(doc["provider"], {})[doc["metricName"]] = doc
    return out


async def test_refresh_stores_exactly_the_expected_metrics(ranking, db):
    summary = await ranking.refresh()
    assert all(s["ok"] for s in summary["sources"].values()), summary["sources"]
    docs = await stored(db)
    values = {p: {m: models.metric_value(d) for m, d in ms.items()} for p, ms in docs.items()}
    assert values.keys() == EXPECTED.keys()
    for provider, expected in EXPECTED.items():
        assert values[provider] == pytest.approx(expected), provider
        for name, value in expected.items():  # the types too: True is not 1, 0 is not "0"
            got = values[provider][name]
            assert isinstance(got, bool) == isinstance(value, bool) and isinstance(got, str) == isinstance(value, str)
    assert "f01003" in summary["sources"]["lotus"]["note"]
    assert summary["changedCount"] == sum(len(m) for m in EXPECTED.values())

    first = {p: {m: d["updatedAt"] for m, d in ms.items()} for p, ms in docs.items()}
    again = await ranking.refresh()
    assert again["changedCount"] == 0 and again["changed"] == []
    docs = await stored(db)
    again_values = {p: {m: models.metric_value(d) for m, d in ms.items()} for p, ms in docs.items()}
    assert [(p, m, v, again_values[p][m]) for p in values for m, v in values[p].items() if again_values[p][m] != v] == []
    assert all(docs[p][m]["updatedAt"] > first[p][m] for p in docs for m in docs[p])


async def test_the_table_reloads_from_the_collection(ranking, db):
    await ranking.refresh()
    await ranking.refresh()  # values now rewritten by $set over existing documents
    before = {p: ranking.table.row(p) for p in ranking.table.providers}
    await ranking.load()
    assert {p: ranking.table.row(p) for p in ranking.table.providers} == before
    assert (await ranking.refresh())["changedCount"] == 0


async def test_api_pages_providers_and_shows_one(ranking, api):
    await (await api.post("/ranking/refresh", json={})).json()
    page = await (await api.get("/providers?offset=1&limit=2")).json()
    assert page["total"] == 4 and page["offset"] == 1 and page["limit"] == 2
    assert [p["id"] for p in page["providers"]] == ["f01001", "f01002"]
    assert page["providers"][0]["deals.rejected"] == 2
    one = await (await api.get("/provider/f01000")).json()
    by_name = {m["name"]: m for m in one["metrics"]}
    assert by_name["filrep.score"]["value"] == 97 and by_name["filrep.score"]["source"] == "filrep"
    assert by_name["filrep.score"]["ageSeconds"] >= 0 and by_name["filrep.score"]["sourceError"] is None
    assert (await api.get("/provider/f09999")).status == 404
    assert (await api.get("/provider/..")).status == 404
    report = await (await api.get("/ranking/report")).json()
    assert [r["id"] for r in report["providers"]] == ["f01000", "f01001", "f01002"]
    assert report["providers"][0]["deals.acceptance_rate"] == 0.75
    assert (await api.get("/providers?limit=0")).status == 400


async def test_a_value_another_host_stored_meanwhile_is_updated_not_duplicated(ranking, db):
    # The table does not know this value yet, so the round first tries to insert it.
    await db[models.PROVIDER_METRIC].insert_one(models.provider_metric("f01000", "filrep", "filrep.score", 1, 0.0))
    summary = await ranking.refresh()
    assert summary["sources"]["filrep"]["ok"]
    docs = await stored(db)
    assert models.metric_value(docs["f01000"]["filrep.score"]) == 97
