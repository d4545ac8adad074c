"""The engine's acceptance: replicas filled at good providers, backoff on the schedule, repair."""
from __future__ import annotations

from collections import Counter

from services.replication import backoff
from shared import models

from .conftest import GOOD, REJECTS, TIMES_OUT, add_dataset, poll


async def live_pairs(db) -> Counter:
    deals = await db[models.DEAL_STATE].find({"state": {"$in": ["sending", "proposed", "published", "active"]}}).to_list(None)
    return Counter((d["pieceCid"], d["provider"]) for d in deals)


async def create(env, body) -> str:
    response = await env.api.post("/replication", json=body)
    assert response.status == 201, await response.text()
    return (await response.json())["id"]


async def test_twenty_chunks_reach_three_good_providers_with_backoff_on_schedule(env):
    dataset = await add_dataset(env.db, 20)
    request_id = await create(env, env.request(dataset))
    replicator = env.replicator()

    async def filled():
        await replicator.one()
        pairs = await live_pairs(env.db)
        per_piece = Counter(piece for piece, _ in pairs)
        return len(per_piece) == 20 and all(n == 3 for n in per_piece.values()) and pairs

    pairs = await poll(filled, budget=120)
    assert all(n == 1 for n in pairs.values()), "a (piece, provider) was proposed twice"
    assert {provider for _, provider in pairs} == set(GOOD[:3])
    calls = env.boost.deals()
    proposed = Counter((c["piece"], c["provider"]) for c in calls if c["outcome"] == "proposed")
    assert all(n == 1 for n in proposed.values())
    # The refusing provider is asked again only once its backoff ran out: 0.5 s, 1 s, 2 s...
    refusals = sorted(c["time"] for c in calls if c["provider"] == REJECTS)
    assert refusals, "the refusing provider was never asked"
    for k, (before, after) in enumerate(zip(refusals, refusals[1:]), start=1):
        assert after - before >= backoff.delay(k, 0.5, 4.0) - 0.05, (k, after - before)
    assert any(c["provider"] == TIMES_OUT for c in calls)
    timeouts = sorted(c["time"] for c in calls if c["provider"] == TIMES_OUT)
    for k, (before, after) in enumerate(zip(timeouts, timeouts[1:]), start=1):
        assert after - before >= backoff.delay(k, 0.5, 4.0), (k, after - before)
    stored = await env.db[models.REPLICATION_BACKOFF].find_one({"_id": REJECTS})
    assert stored["failures"] == len(refusals)

    # On chain, then tracked: the factor rises to 3.0 and the request completes.
    await env.track()
    await env.db[models.REPLICATION].update_one({"_id": request_id}, {"$set": {"nextRoundAt": 0}})

    async def completed():
        await replicator.one()
        doc = await (await env.api.get(f"/replication/{request_id}")).json()
        return doc["status"] == "completed" and doc

    doc = await poll(completed, budget=30)
    assert doc["replicationFactor"] == 3.0 and doc["replicationCompleted"] == 20
    assert len(doc["replicationDetails"]) == 20 and all(len(c["deals"]) >= 3 for c in doc["replicationDetails"])


async def test_slashed_and_expired_proposals_are_replaced_within_two_rounds(env):
    env.boost.control()  # every provider accepts
    dataset = await add_dataset(env.db, 4)
    criteria = "provider in (" + ", ".join(GOOD) + ")"
    request_id = await create(env, env.request(dataset, criteria=criteria))
    replicator = env.replicator()
    await replicator.one()
    assert sum((await live_pairs(env.db)).values()) == 12
    # One deal never gets published; the others are activated, and then one of them is slashed.
    lost = await env.db[models.DEAL_STATE].find_one({"provider": GOOD[0]}, sort=[("_id", 1)])
    await env.db[models.DEAL_STATE].update_one({"_id": lost["_id"]}, {"$set": {"state": "sending-hold"}})
    await env.track()
    await env.db[models.DEAL_STATE].update_one({"_id": lost["_id"]}, {"$set": {"state": "proposed"}})
    chain = env.lotus.chain
    slashed_id = next(i for i, d in chain.deals.items() if d["Proposal"]["PieceCID"]["/"] != lost["pieceCid"])
    slashed_piece, slashed_provider = (chain.deals[slashed_id]["Proposal"]["PieceCID"]["/"],
                                       chain.deals[slashed_id]["Proposal"]["Provider"])
    chain.slash(slashed_id)
    chain.height = lost["startEpoch"] + 1
    from services.tracking.tracker import Tracker
    from shared.lotus import LotusClient
    await Tracker(env.db, LotusClient(env.session, env.lotus.url)).round()
    states = Counter([d["state"] async for d in env.db[models.DEAL_STATE].find({})])
    assert states["slashed"] == 1 and states["proposal_expired"] == 1
    for _ in range(2):
        await env.db[models.REPLICATION].update_one({"_id": request_id}, {"$set": {"nextRoundAt": 0}})
        await replicator.one()
    pairs = await live_pairs(env.db)
    per_piece = Counter(piece for piece, _ in pairs)
    assert per_piece[lost["pieceCid"]] == 3 and per_piece[slashed_piece] == 3
    assert (lost["pieceCid"], lost["provider"]) not in pairs
    assert (slashed_piece, slashed_provider) not in pairs
    await env.track()
    await env.db[models.REPLICATION].update_one({"_id": request_id}, {"$set": {"nextRoundAt": 0}})
    await replicator.one()
    doc = await env.db[models.REPLICATION].find_one({"_id": request_id})
    assert doc["status"] == "completed", doc


async def test_pause_stops_rounds_and_resume_restarts_them(env):
    env.boost.control()
    dataset = await add_dataset(env.db, 2)
    request_id = await create(env, env.request(dataset, criteria="provider in (f01003, f01004, f01005)"))
    response = await env.api.post(f"/replication/{request_id}", json={"state": "paused"})
    assert response.status == 200 and (await response.json())["state"] == "paused"
    assert not await env.replicator().one()
    assert env.boost.deals() == []
    await env.api.post(f"/replication/{request_id}", json={"state": "active"})
    assert await env.replicator().one()
    assert len(env.boost.deals()) == 6


async def test_ranking_unreachable_fails_the_round_with_the_error_recorded(env):
    dataset = await add_dataset(env.db, 1)
    request_id = await create(env, env.request(dataset))
    env.config.connection.ranking_service = "http://127.0.0.1:9"
    await env.replicator().one()
    doc = await env.db[models.REPLICATION].find_one({"_id": request_id})
    assert doc["status"] == "error" and "ranking service" in doc["error"]
    assert env.boost.deals() == []


async def test_too_little_datacap_is_a_waiting_error_before_any_proposal(env):
    env.boost.control()
    dataset = await add_dataset(env.db, 3)
    env.lotus.chain.datacap = {}
    request_id = await create(env, env.request(dataset, verified=True, criteria="provider in (f01003)",
                                               minReplicas=1))
    await env.replicator().one()
    doc = await env.db[models.REPLICATION].find_one({"_id": request_id})
    assert doc["status"] == "error" and "DataCap" in doc["error"]
    assert env.boost.deals() == []
    env.lotus.chain.datacap = {env.request(dataset)["client"]: 2 * 2**20}
    await env.db[models.REPLICATION].update_one({"_id": request_id}, {"$set": {"nextRoundAt": 0}})
    await env.replicator().one()
    assert len(env.boost.deals()) == 2  # two of the three pieces fit
