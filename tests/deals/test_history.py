"""Deal state history: every transition recorded by deal making (the fake boost) and by tracking
(the fake Lotus), none for a state that does not change, none lost when a writer stops between
the state and its transition; GET /deals/history counts across bucket boundaries; bad windows 400."""
from __future__ import annotations

import json

import pytest

from services.dealmaking import history as history_module
from shared import deal_transitions as transitions
from shared import models, timeline

from .conftest import PROVIDER, WALLET_ID
from .test_cli_deal import cli  # noqa: F401  (fixture)
from .test_tracking import DAY, proposed, session, state_of, tracker  # noqa: F401  (fixtures)


async def history_of(api, deal_id: str) -> list[tuple]:
    answer = await (await api.get("/deals/transitions", params={"deal": deal_id})).json()
    return [(t["from"], t["to"], t["epoch"]) for t in answer["transitions"]]


async def test_deal_making_and_tracking_record_every_transition_once(api, db, fake_boost, lotus, tracker, proposal):
    chain = lotus.chain
    chain.height = 4000
    answer = await (await api.post("/deal", json=proposal)).json()
    assert await history_of(api, answer["id"]) == [(None, "sending", None), ("sending", "proposed", None)]
    deal = await state_of(db, answer["id"])
    assert "historyPending" not in deal  # copied: nothing left for a repair
    start, end = deal["startEpoch"], deal["endEpoch"]

    await tracker.round()  # not on chain yet: no change, nothing recorded
    chain.height = 4100
    deal_id = chain.publish(WALLET_ID, PROVIDER, proposal["pieceCid"], start, end)
    await tracker.round()
    await tracker.round()  # the same state again records nothing
    chain.height = start - 10
    chain.activate(deal_id, epoch=start - 20, sector=7)
    await tracker.round()
    listing = await (await api.get("/deals/transitions", params={"deal": answer["id"]})).json()
    assert [(t["from"], t["to"], t["epoch"]) for t in listing["transitions"]] == [
        (None, "sending", None), ("sending", "proposed", None), ("proposed", "published", 4100),
        ("published", "active", start - 10)]
    assert listing["total"] == 4 and listing["offset"] == 0 and listing["limit"] == 100
    last = listing["transitions"][-1]
    assert last["dealId"] == deal_id and last["provider"] == PROVIDER and last["pieceCid"] == proposal["pieceCid"]
    assert last["client"] == proposal["wallet"] and last["id"] == f"{answer['id']}|published"
    assert [t["time"] for t in listing["transitions"]] == sorted(t["time"] for t in listing["transitions"])
    # The deal itself shows none of the bookkeeping.
    shown = await (await api.get(f"/deal/{answer['id']}")).json()
    assert not {"changedFrom", "changedAt", "changedEpoch", "historyPending"} & set(shown)


async def test_a_rejected_proposal_is_recorded(api, fake_boost, proposal):
    fake_boost.control(reject="no thanks")
    response = await api.post("/deal", json=proposal)
    assert response.status == 422
    deal_id = (await response.json())["detail"]["id"]
    assert await history_of(api, deal_id) == [(None, "sending", None), ("sending", "rejected", None)]


async def test_a_sender_killed_before_copying_its_creation_loses_nothing(api, db, fake_boost, proposal):
    """A sender killed after storing its deal (with the creation and its token) but before copying:
    the request that finds its stale key moves the deal to error and records both changes."""
    from .conftest import PIECE_CID, WALLET
    old = models.now() - 6 * 365 * 86400
    creation = models.state_change(None, "sending", at=old)
    await db[models.DEAL_STATE].insert_one({"_id": "crashed", "client": WALLET, "provider": PROVIDER,
                                            "pieceCid": PIECE_CID, "createdAt": old, **transitions.fields(creation)})
    await db[models.DEAL_PENDING].insert_one(
        {"_id": f"{WALLET}|{PROVIDER}|{PIECE_CID}", "dealStateId": "crashed", "createdAt": old})
    response = await api.post("/deal", json=proposal)
    assert response.status == 200
    assert await history_of(api, "crashed") == [(None, "sending", None), ("sending", "error", None)]
    assert "historyPending" not in await state_of(db, "crashed")


async def test_a_round_records_its_changes_in_one_batch(db, lotus, tracker, monkeypatch):
    chain = lotus.chain
    chain.height = 9_000
    locals_ = []
    for i in range(60):  # past the one-by-one limit: the market-deals scan
        deal_id = chain.publish(WALLET_ID, PROVIDER, f"baga6ea4seaqpiece{i:04d}", 10_000, 10_000 + 180 * DAY)
        locals_.append(await proposed(db, piece=f"baga6ea4seaqpiece{i:04d}", deal_id=deal_id))
    calls = []
    real_copy = transitions.copy

    async def counting(db_, deals):
        calls.append(len(deals))
        await real_copy(db_, deals)

    monkeypatch.setattr(transitions, "copy", counting)
    result = await tracker.round()
    assert result.updated == 60 and calls == [60]
    assert await db[models.DEAL_TRANSITION].count_documents({"from": "proposed", "to": "published"}) == 60
    assert await db[models.DEAL_STATE].count_documents({"historyPending": {"$exists": True}}) == 0


async def test_a_change_whose_copy_was_interrupted_is_recorded_by_the_next_round(db, lotus, tracker, monkeypatch):
    chain = lotus.chain
    chain.height = 9_000
    deal_id = chain.publish(WALLET_ID, PROVIDER, "baga6ea4seaqpiece", 10_000, 10_000 + 180 * DAY)
    local = await proposed(db, piece="baga6ea4seaqpiece", deal_id=deal_id)

    async def lost(db_, deals):
        raise ConnectionError("database went away")

    monkeypatch.setattr(transitions, "copy", lost)
    with pytest.raises(ConnectionError):
        await tracker.round()
    assert (await state_of(db, local))["state"] == "published"  # changed, not yet copied
    assert await db[models.DEAL_TRANSITION].count_documents({}) == 0
    monkeypatch.undo()
    await tracker.round()
    docs = await db[models.DEAL_TRANSITION].find({}).to_list(None)
    assert [(d["from"], d["to"], d["epoch"]) for d in docs] == [("proposed", "published", 9_000)]
    assert "historyPending" not in await state_of(db, local)


async def test_the_next_change_copies_an_earlier_one_left_uncopied(db, lotus):
    """A deal whose creation and proposal were stored but never copied (deal making killed), then
    changed by the tracker before any repair ran: the tracker copies both changes."""
    chain = lotus.chain
    chain.height = 9_000
    deal_id = chain.publish(WALLET_ID, PROVIDER, "baga6ea4seaqpiece", 10_000, 10_000 + 180 * DAY)
    change = models.state_change("sending", "proposed", at=models.now() - 60)
    local = await proposed(db, piece="baga6ea4seaqpiece", deal_id=deal_id, **transitions.fields(change))
    deal = await state_of(db, local)
    published = models.state_change("proposed", "published", epoch=9_000)
    written = transitions.fields(published)
    await db[models.DEAL_STATE].update_one({"_id": local}, {"$set": written})
    await transitions.copy(db, [transitions.to_copy(deal, written, published)])
    docs = await db[models.DEAL_TRANSITION].find({}).sort("time", 1).to_list(None)
    assert [(d["from"], d["to"]) for d in docs] == [("sending", "proposed"), ("proposed", "published")]
    assert "historyPending" not in await state_of(db, local)


# --- GET /deals/history ---

DAY_S = 86_400
T0 = 1_700_006_400  # a UTC midnight


async def seed(db, rows: list[tuple[str, str, str | None, str, float]]) -> None:
    """(deal, provider, from, to, time) as DealTransition documents."""
    deals = {}
    for deal, provider, from_state, to_state, at in rows:
        doc = deals.setdefault(deal, {"_id": deal, "provider": provider, "pieceCid": "baga", "client": "f1x"})
        await db[models.DEAL_TRANSITION].insert_one(models.deal_transition(doc, models.state_change(
            from_state, to_state, at=at)))


async def history(api, **params) -> tuple[int, dict]:
    response = await api.get("/deals/history", params={k: str(v) for k, v in params.items()})
    return response.status, await response.json()


@pytest.mark.parametrize("push_limit", [history_module.PUSH_LIMIT, 0], ids=["times-grouped", "bucket-per-state"])
async def test_history_counts_the_states_at_each_bucket_end(api, db, monkeypatch, push_limit):
    monkeypatch.setattr(history_module, "PUSH_LIMIT", push_limit)
    await seed(db, [
        ("a", "f01", None, "sending", T0 - 10),  # before the window: counted from the first point on
        ("a", "f01", "sending", "proposed", T0 - 5),
        ("b", "f01", None, "sending", T0 + 100),
        ("b", "f01", "sending", "proposed", T0 + DAY_S - 1),  # the last second of bucket 0
        ("a", "f01", "proposed", "active", T0 + DAY_S),  # the first second of bucket 1: not at its start
        ("c", "f02", None, "sending", T0 + 2 * DAY_S + 5),
        ("c", "f02", "sending", "rejected", T0 + 2 * DAY_S + 6),
        ("b", "f01", "proposed", "active", T0 + 3 * DAY_S + 1),  # after the window
    ])
    status, answer = await history(api, since=T0, until=T0 + 3 * DAY_S, bucket=DAY_S)
    assert status == 200, answer
    assert (answer["bucket"], answer["since"], answer["until"]) == (DAY_S, T0, T0 + 3 * DAY_S)
    assert answer["states"][:3] == ["sending", "proposed", "published"] and "rejected" in answer["states"]
    assert [p["time"] for p in answer["points"]] == [T0 + DAY_S, T0 + 2 * DAY_S, T0 + 3 * DAY_S]
    nonzero = [{s: n for s, n in p["counts"].items() if n} for p in answer["points"]]
    assert nonzero == [{"proposed": 2}, {"proposed": 1, "active": 1}, {"proposed": 1, "active": 1, "rejected": 1}]
    assert all(set(p["counts"]) == set(answer["states"]) for p in answer["points"])

    status, answer = await history(api, since=T0, until=T0 + 3 * DAY_S, bucket=DAY_S, provider="f02")
    assert [{s: n for s, n in p["counts"].items() if n} for p in answer["points"]] == [{}, {}, {"rejected": 1}]

    # A window not a whole number of buckets: the last point ends at until.
    status, answer = await history(api, since=T0, until=T0 + DAY_S + 50, bucket=DAY_S)
    assert [p["time"] for p in answer["points"]] == [T0 + DAY_S, T0 + DAY_S + 50]
    assert {s: n for s, n in answer["points"][1]["counts"].items() if n} == {"proposed": 1, "active": 1}


async def test_history_defaults_to_the_last_30_days_by_day(api, db):
    await seed(db, [("a", "f01", None, "sending", models.now() - 3 * DAY_S)])
    status, answer = await history(api)
    assert status == 200 and answer["bucket"] == DAY_S
    assert answer["until"] - answer["since"] == 30 * DAY_S and abs(answer["until"] - models.now()) < 60
    assert len(answer["points"]) == 30
    assert [p["counts"]["sending"] for p in answer["points"]] == [0] * 26 + [1] * 4


@pytest.mark.parametrize("params, names", [
    ({"since": 200, "until": 100}, "since"),
    ({"since": 100, "until": 100}, "since"),
    ({"since": 0, "until": 10**6, "bucket": 1}, "bucket"),  # a million buckets
    ({"bucket": 0}, "bucket"),
    ({"bucket": -5}, "bucket"),
    ({"since": 10**30}, "since"),
    ({"until": "9" * 5000}, "until"),
    ({"since": "yesterday"}, "since"),
    ({"bucket": "1.5"}, "bucket"),
])
async def test_bad_windows_are_400(api, params, names):
    status, answer = await history(api, **params)
    assert status == 400, answer
    assert names in answer["error"] and "detail" in answer


async def test_a_default_since_before_1970_starts_at_0(api):
    status, answer = await history(api, until=10**5, bucket=3600)
    assert status == 200 and answer["since"] == 0 and len(answer["points"]) == 28


async def test_the_bucket_limit_is_exact(api):
    status, answer = await history(api, since=0, until=timeline.MAX_BUCKETS * 60, bucket=60)
    assert status == 200 and len(answer["points"]) == timeline.MAX_BUCKETS
    status, answer = await history(api, since=0, until=timeline.MAX_BUCKETS * 60 + 1, bucket=60)
    assert status == 400 and "1001 buckets" in answer["error"]


async def test_transitions_are_paged(api, db):
    await seed(db, [(f"d{i}", "f01" if i % 2 else "f02", None, "sending", T0 + i) for i in range(5)])
    page = await (await api.get("/deals/transitions", params={"provider": "f01", "offset": "1", "limit": "1"})).json()
    assert page["total"] == 2 and [t["deal"] for t in page["transitions"]] == ["d3"]
    assert (page["offset"], page["limit"]) == (1, 1)
    response = await api.get("/deals/transitions", params={"limit": "1001"})
    assert response.status == 400 and "limit" in (await response.json())["error"]
    far = await (await api.get("/deals/transitions", params={"offset": str(2**63 - 1)})).json()
    assert far["transitions"] == [] and far["total"] == 5


async def test_deal_history_command(cli, db, api):
    await seed(db, [("a", "f01", None, "sending", T0 + 5), ("a", "f01", "sending", "proposed", T0 + 3600 + 5),
                    ("b", "f02", None, "sending", T0 + 7200 + 5), ("b", "f02", "sending", "error", T0 + 7200 + 6)])
    window = ["--since", str(T0), "--until", str(T0 + 3 * 3600), "--bucket", "1h"]
    code, out, err = await cli("deal", "history", *window, "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert [p["counts"]["proposed"] for p in answer["points"]] == [0, 1, 1]
    code, out, err = await cli("deal", "history", *window, "--provider", "f01")
    assert code == 0, err
    header = out.splitlines()[1]
    assert "sending" in header and "proposed" in header and "error" not in header and "active" not in header
    assert "2023-11-15 01:00" in out
    code, out, err = await cli("deal", "history", "--since", str(T0), "--until", str(T0 - 1))
    assert code == 1 and "since must be before until" in err and "Traceback" not in err
