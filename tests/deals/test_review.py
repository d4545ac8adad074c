"""Review findings on the deal side: hostile POST /deal bodies, odd Lotus answers, the deal CLI."""
from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from shared.lotus import LotusClient
from services.tracking.tracker import Tracker
from shared import models

from .conftest import PIECE_CID, PROVIDER, WALLET, WALLET_ID, assert_sent
from .test_cli_deal import cli  # noqa: F401  (fixture)
from .test_tracking import DAY, proposed, state_of


@pytest.mark.parametrize("change", [
    {"price": "NaN"},
    {"price": "sNaN"},
    {"price": "Infinity"},
    {"price": "-Infinity"},
    {"startEpoch": 2**70},
    {"url": "http://example.com/a\x00.car"},
    {"url": "http://example.com/a\x7f.car"},
    {"url": "http://example.com/a\x1b.car"},
    {"url": "http://[::1/a.car"},
    {"url": "http://example.com:99999/a.car"},
])
async def test_hostile_values_are_400_and_change_nothing(api, db, fake_boost, proposal, change):
    response = await api.post("/deal", json={**proposal, **change})
    assert response.status == 400, await response.text()
    answer = await response.json()
    assert answer["error"] and "detail" in answer
    assert fake_boost.calls() == []
    assert await db[models.DEAL_STATE].count_documents({}) == 0
    assert await db[models.DEAL_PENDING].count_documents({}) == 0


async def test_price_with_a_huge_exponent_is_refused_at_once(api, fake_boost, proposal):
    # int(Decimal("1e999999999")) would build a billion-digit number on the event loop.
    started = time.monotonic()
    response = await asyncio.wait_for(api.post("/deal", json={**proposal, "price": "1e999999999"}), 10)
    assert response.status == 400 and time.monotonic() - started < 5
    assert fake_boost.calls() == []


@pytest.mark.parametrize("raw", [
    b'{"duration": ' + b"9" * 5000 + b"}",  # past Python's int digit limit: ValueError, not JSONDecodeError
    b"[" * 100_000 + b"]" * 100_000,  # RecursionError
])
async def test_pathological_json_is_400(api, fake_boost, raw):
    response = await api.post("/deal", data=raw, headers={"Content-Type": "application/json"})
    assert response.status == 400, await response.text()
    assert (await response.json())["error"]
    assert fake_boost.calls() == []


async def test_a_failed_insert_does_not_hold_the_pending_key(api, db, fake_boost, proposal, monkeypatch):
    from dataclasses import replace

    from services.dealmaking import handlers

    parse = handlers.proposal_module.parse
    # A value the database cannot store (BSON integers are 64-bit), as if it slipped past validation.
    monkeypatch.setattr(handlers.proposal_module, "parse", lambda body, key_dir: replace(parse(body, key_dir), start_epoch=2**70))
    response = await api.post("/deal", json=proposal)
    assert response.status == 500
    monkeypatch.undo()
    assert await db[models.DEAL_PENDING].count_documents({}) == 0
    # The next, valid request is sent at once instead of waiting for a holder that will never answer.
    response = await asyncio.wait_for(api.post("/deal", json=proposal), 10)
    assert response.status == 200, await response.text()
    assert len(fake_boost.deal_calls()) == 1, "the request whose insert failed must not reach boost"
    await assert_sent(db, fake_boost, await response.json(), pieceCid=PIECE_CID)


async def test_oversized_key_file_is_refused_without_reading_it(api, db, fake_boost, proposal, key_file):
    big = key_file.parent / "big.key"
    with open(big, "wb") as f:
        f.truncate(64 * 2**20)
    response = await api.post("/deal", json={**proposal, "keyPath": str(big)})
    assert response.status == 400 and str(big) not in await response.text()
    assert fake_boost.calls() == []



@pytest.mark.parametrize("where", ["/etc/hostname", "../outside.key", "{dir}/../outside.key", "link.key"])
async def test_key_files_outside_key_dir_are_refused(api, db, fake_boost, proposal, key_file, where):
    outside = key_file.parent.parent / "outside.key"
    outside.write_text("not for boost")
    (key_file.parent / "link.key").symlink_to(outside)
    response = await api.post("/deal", json={**proposal, "keyPath": where.format(dir=key_file.parent)})
    assert response.status == 400 and "key_dir" in (await response.json())["error"]
    assert fake_boost.calls() == [] and await db[models.DEAL_STATE].count_documents({}) == 0


async def test_a_key_path_relative_to_key_dir_is_accepted(api, db, fake_boost, proposal, key_file):
    response = await api.post("/deal", json={**proposal, "keyPath": key_file.name})
    assert response.status == 200, await response.text()
    # The fake boost refuses a deal unless the key it was given on stdin decoded: the file was found.
    import_call, _ = fake_boost.calls()
    assert import_call[-2:] == ["wallet", "import"]
    await assert_sent(db, fake_boost, await response.json(), client=proposal["wallet"])


# --- tracking ---

@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.mark.parametrize("one_by_one_limit", [50, 0])
@pytest.mark.parametrize("flip", ["unactivated", "unactivated-late"])
async def test_an_active_deal_never_goes_back(db, lotus, session, one_by_one_limit, flip):
    chain = lotus.chain
    tracker = Tracker(db, LotusClient(session, lotus.url), one_by_one_limit=one_by_one_limit)
    deal_id = chain.publish(WALLET_ID, PROVIDER, PIECE_CID, 10_000, 10_000 + 180 * DAY)
    local = await proposed(db, deal_id=deal_id)
    chain.height = 9_000
    chain.activate(deal_id)
    await tracker.round()
    assert (await state_of(db, local))["state"] == "active"
    # A node answering from a bad state (or a buggy one) shows the deal unactivated again.
    chain.deals[deal_id]["State"]["SectorStartEpoch"] = -1
    chain.height = 9_500 if flip == "unactivated" else 10_500
    await tracker.round()
    deal = await state_of(db, local)
    assert deal["state"] == "active" and deal["sectorStartEpoch"] == 9_000


async def test_a_published_deal_never_goes_back_to_proposed_fields(db, lotus, session):
    tracker = Tracker(db, LotusClient(session, lotus.url))
    chain = lotus.chain
    deal_id = chain.publish(WALLET_ID, PROVIDER, PIECE_CID, 10_000, 10_000 + 180 * DAY)
    local = await proposed(db, deal_id=deal_id)
    await tracker.round()
    assert (await state_of(db, local))["state"] == "published"
    chain.activate(deal_id, epoch=9_100)
    chain.height = 9_200
    await tracker.round()
    chain.height = 9_300
    chain.deals[deal_id]["State"]["SectorStartEpoch"] = -1
    await tracker.round()
    chain.deals[deal_id]["State"]["SectorStartEpoch"] = 9_100
    chain.height = 9_400
    await tracker.round()
    assert (await state_of(db, local))["state"] == "active"


@pytest.mark.parametrize("odd", [
    {"Proposal": None, "State": None},
    {"Proposal": {"Client": ["f0100200"]}, "State": {}},
    None,
    "not a deal",
])
async def test_another_clients_odd_market_deal_does_not_break_tracking(db, lotus, session, odd):
    chain = lotus.chain
    tracker = Tracker(db, LotusClient(session, lotus.url), one_by_one_limit=0)
    local = await proposed(db)
    chain.publish(WALLET_ID, PROVIDER, PIECE_CID, 10_000, 10_000 + 180 * DAY)
    chain.deals[1] = odd
    for bulk in (0, 500):  # the small answer, then the streamed one
        chain.bulk = bulk
        await db[models.DEAL_STATE].update_one({"_id": local}, {"$set": {"state": "proposed", "dealId": None,
                                                                       "trackedHeight": None}})
        await tracker.round()
        assert (await state_of(db, local))["state"] == "published"


# --- the deal CLI ---

@pytest.mark.parametrize("deal_id", ["a b", "../deals", "x?state=active", "a\nb"])
async def test_deal_show_with_odd_ids_is_one_line_error(cli, deal_id):  # noqa: F811
    code, out, err = await cli("deal", "show", deal_id)
    assert code == 1, (out, err)
    assert "Traceback" not in err and err.startswith("error: HTTP 404")
