"""Deal tracking against the fake Lotus node: state changes, failures, restarts."""
from __future__ import annotations

import asyncio

import aiohttp
import pytest

from services.tracking import service as tracking_service
from shared.lotus import LotusClient, LotusError, LotusMalformed, LotusUnauthorized, LotusUnavailable
from services.tracking.tracker import Tracker
from shared import models

from tests.wait import wait_until

from .conftest import PIECE_CID, PROVIDER, WALLET, WALLET_ID
from .fakes.lotus import GENESIS

OTHER_PIECE = "baga6ea4seaqhf2ymr6ahkxe3i2txmnqbmltzyf65nwcdvq2hvwmcdaeljdt4ipq"
DAY = 2880


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def tracker(db, lotus, session):
    return Tracker(db, LotusClient(session, lotus.url))


async def proposed(db, piece=PIECE_CID, start=10_000, duration=180 * DAY, provider=PROVIDER, deal_id=None,
                   **extra) -> str:
    doc = {"_id": models.new_id(), "client": WALLET, "provider": provider, "pieceCid": piece,
           "state": "proposed", "proposalCid": models.new_id(), "startEpoch": start, "endEpoch": start + duration,
           "dealId": deal_id, "sectorStartEpoch": None, "trackedHeight": None, **extra}
    await db[models.DEAL_STATE].insert_one(doc)
    return doc["_id"]


async def state_of(db, local_id) -> dict:
    return await db[models.DEAL_STATE].find_one({"_id": local_id})


def at(epoch: int) -> int:
    return GENESIS + 30 * epoch


async def test_lifecycle_proposed_published_active_expired(api, db, lotus, tracker, proposal):
    chain = lotus.chain
    chain.height = 4000
    answer = await (await api.post("/deal", json=proposal)).json()
    deal = await state_of(db, answer["id"])
    start, end = deal["startEpoch"], deal["endEpoch"]

    await tracker.round()
    assert (await state_of(db, answer["id"]))["state"] == "proposed"  # not on chain yet

    chain.height = 4100
    deal_id = chain.publish(WALLET_ID, PROVIDER, PIECE_CID, start, end)
    chain.publish(WALLET_ID, PROVIDER, PIECE_CID, start + 1, end)  # same piece, other epochs: no match
    await tracker.round()
    deal = await state_of(db, answer["id"])
    assert deal["state"] == "published" and deal["dealId"] == deal_id and deal["clientId"] == WALLET_ID
    assert deal["expiration"] == at(end) and deal["activation"] is None
    # Still pending: a retry returns the same proposal.
    again = await (await api.post("/deal", json=proposal)).json()
    assert again["proposalCid"] == answer["proposalCid"] and again["existing"] is True

    chain.height = start - 10
    chain.activate(deal_id, epoch=start - 20, sector=77)
    await tracker.round()
    deal = await state_of(db, answer["id"])
    assert deal["state"] == "active" and deal["sectorId"] == 77 and deal["sectorStartEpoch"] == start - 20
    assert deal["activation"] == at(start - 20)
    assert await db[models.DEAL_PENDING].count_documents({}) == 0

    chain.height = end + 1
    await tracker.round()  # still in market state, past its end
    assert (await state_of(db, answer["id"]))["state"] == "expired"
    listing = await (await api.get("/deals", params={"state": "expired"})).json()
    assert [d["id"] for d in listing["deals"]] == [answer["id"]]


async def active_deal(db, chain, tracker) -> tuple[str, int]:
    """A proposed deal published on chain and activated at height 9,000, after one tracking round."""
    local = await proposed(db)
    deal_id = chain.publish(WALLET_ID, PROVIDER, PIECE_CID, 10_000, 10_000 + 180 * DAY)
    chain.height = 9_000
    chain.activate(deal_id)
    await tracker.round()
    return local, deal_id


async def test_expired_deal_that_vanished(db, lotus, tracker):
    chain = lotus.chain
    local, deal_id = await active_deal(db, chain, tracker)
    assert (await state_of(db, local))["state"] == "active"
    del chain.deals[deal_id]
    chain.height = 10_000 + 180 * DAY + 5
    await tracker.round()
    assert (await state_of(db, local))["state"] == "expired"


@pytest.mark.parametrize("vanish", [False, True])
async def test_slashed(db, lotus, tracker, vanish):
    chain = lotus.chain
    local, deal_id = await active_deal(db, chain, tracker)
    chain.height = 50_000
    if vanish:  # the market actor dropped the terminated deal before we saw its slash epoch
        del chain.deals[deal_id]
    else:
        chain.slash(deal_id)
    await tracker.round()
    deal = await state_of(db, local)
    assert deal["state"] == "slashed"
    if not vanish:
        assert deal["slashEpoch"] == 50_000


@pytest.mark.parametrize("how", ["published-never-activated", "vanished-after-start", "never-published"])
async def test_proposal_expired(db, lotus, tracker, how):
    chain = lotus.chain
    local = await proposed(db)
    if how != "never-published":
        deal_id = chain.publish(WALLET_ID, PROVIDER, PIECE_CID, 10_000, 10_000 + 180 * DAY)
        await tracker.round()
        assert (await state_of(db, local))["state"] == "published"
        if how == "vanished-after-start":
            del chain.deals[deal_id]
    chain.height = 9_999
    await tracker.round()
    assert (await state_of(db, local))["state"] in ("proposed", "published")
    chain.height = 10_001
    await tracker.round()
    assert (await state_of(db, local))["state"] == "proposal_expired"


async def test_terminal_states_are_left_alone(db, lotus, tracker):
    rejected = await proposed(db, state="rejected", message="no")
    chain = lotus.chain
    chain.publish(WALLET_ID, PROVIDER, PIECE_CID, 10_000, 10_000 + 180 * DAY)
    chain.height = 20_000
    await tracker.round()
    assert (await state_of(db, rejected))["state"] == "rejected"


async def test_one_by_one_and_full_scan_agree(db, lotus, session):
    chain = lotus.chain
    ids = [chain.publish(WALLET_ID, PROVIDER, p, 10_000, 10_000 + 180 * DAY) for p in (PIECE_CID, OTHER_PIECE)]
    chain.activate(ids[0])
    first = await proposed(db, deal_id=ids[0], state="published")
    second = await proposed(db, piece=OTHER_PIECE, deal_id=ids[1], state="published")
    gone = await proposed(db, piece=OTHER_PIECE, deal_id=999, state="active", sectorStartEpoch=5)
    result = await Tracker(db, LotusClient(session, lotus.url)).round()
    assert result.mode == "one-by-one" and "Filecoin.StateMarketDeals" not in chain.calls
    one = {i: (await state_of(db, i))["state"] for i in (first, second, gone)}
    assert one == {first: "active", second: "published", gone: "slashed"}
    await db[models.DEAL_STATE].update_many({}, {"$set": {"state": "published", "trackedHeight": None}})
    await db[models.DEAL_STATE].update_one({"_id": gone}, {"$set": {"state": "active"}})
    result = await Tracker(db, LotusClient(session, lotus.url), one_by_one_limit=0).round()
    assert result.mode == "market-deals"
    assert {i: (await state_of(db, i))["state"] for i in (first, second, gone)} == one


async def test_two_local_deals_match_two_chain_deals_deterministically(db, lotus, tracker):
    chain = lotus.chain
    a = await proposed(db)
    b = await proposed(db)
    second = chain.publish(WALLET_ID, PROVIDER, PIECE_CID, 10_000, 10_000 + 180 * DAY)
    first = chain.publish(WALLET_ID, PROVIDER, PIECE_CID, 10_000, 10_000 + 180 * DAY)
    await tracker.round()
    assert {(await state_of(db, a))["dealId"], (await state_of(db, b))["dealId"]} == {first, second}
    assert (await state_of(db, a))["dealId"] == min(first, second)


async def snapshot(db) -> list[dict]:
    docs = []
    for name in (models.DEAL_STATE, models.DEAL_PENDING, models.DEAL_TRACKER):
        docs += [d async for d in db[name].find({}).sort("_id", 1)]
    return docs


@pytest.mark.parametrize("mode, error", [
    ("down", LotusUnavailable), ("malformed", LotusMalformed), ("truncate", LotusUnavailable),
    ("rpc-error", LotusError), ("unauthorized", LotusUnauthorized), ("bad-deal", LotusMalformed),
])
async def test_failures_change_nothing(db, lotus, session, mode, error):
    chain = lotus.chain
    tracker = Tracker(db, LotusClient(session, lotus.url), one_by_one_limit=0)  # the streamed path
    published = await proposed(db)
    active = await proposed(db, piece=OTHER_PIECE)
    chain.publish(WALLET_ID, PROVIDER, PIECE_CID, 10_000, 10_000 + 180 * DAY)
    active_id = chain.publish(WALLET_ID, PROVIDER, OTHER_PIECE, 10_000, 10_000 + 180 * DAY)
    chain.activate(active_id)
    chain.bulk = 500  # big enough that the answer is streamed
    await tracker.round()
    before = await snapshot(db)
    assert [d["state"] for d in before if d["_id"] in (published, active)] == ["published", "active"]
    # Were the failed round to count the deals as gone, they would be expired at this height.
    chain.height = 10_000 + 180 * DAY + 100
    if mode == "unauthorized":
        chain.token = "sekret"
    elif mode == "bad-deal":
        chain.deals[active_id]["State"]["SectorStartEpoch"] = "yesterday"
    else:
        chain.mode = mode
    with pytest.raises(error):
        await tracker.round()
    assert await snapshot(db) == before


async def test_token_is_sent_when_configured(db, lotus, session):
    lotus.chain.token = "sekret"
    local = await proposed(db)
    lotus.chain.publish(WALLET_ID, PROVIDER, PIECE_CID, 10_000, 10_000 + 180 * DAY)
    await Tracker(db, LotusClient(session, lotus.url, token="sekret")).round()
    assert (await state_of(db, local))["state"] == "published"


async def test_older_head_never_undoes_newer_results(db, lotus, tracker):
    chain = lotus.chain
    local, deal_id = await active_deal(db, chain, tracker)
    chain.height = 8_000  # a lagging node, before the activation
    chain.deals[deal_id]["State"]["SectorStartEpoch"] = -1
    result = await tracker.round()
    assert result.skipped and (await state_of(db, local))["state"] == "active"
    assert await tracker.last_height() == 9_000


async def test_service_retries_with_backoff_and_recovers(db, lotus, tracker, caplog):
    chain = lotus.chain
    local = await proposed(db)
    chain.publish(WALLET_ID, PROVIDER, PIECE_CID, 10_000, 10_000 + 180 * DAY)
    chain.mode = "down"
    task = asyncio.create_task(tracking_service.track_forever(tracker, interval=0.2, backoff_base=0.02))
    try:
        await wait_until(lambda: chain.calls.count("Filecoin.ChainHead") + len(caplog.records) >= 3, interval=0.01,
                         what="rounds failing against the node that is down")
        assert (await state_of(db, local))["state"] == "proposed"
        assert "tracking round failed" in caplog.text
        chain.mode = None

        async def published():
            return (await state_of(db, local))["state"] == "published"
        await wait_until(published, interval=0.01, what="the deal to be published once the node is back")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_unknown_wallet_is_not_an_error(db, lotus, tracker):
    lotus.chain.ids.clear()  # the wallet has no actor on chain yet
    local = await proposed(db)
    await tracker.round()
    assert (await state_of(db, local))["state"] == "proposed"
