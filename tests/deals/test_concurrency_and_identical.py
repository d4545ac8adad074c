"""[deal_making_service] max_concurrent bounds the boost runs, and boost's "identical proposal"
answer is a proposed deal flagged `identical`, not an error."""
from __future__ import annotations

import asyncio

from services.dealmaking.routes import routes
from shared import models
from shared.api import create_app
from shared.ipld import cid as cidlib


async def test_identical_proposal_is_taken_as_proposed(api, proposal, fake_boost, db):
    fake_boost.control(identical=True)
    response = await api.post("/deal", json={**proposal, "startEpoch": 5000})
    assert response.status == 200, await response.text()
    answer = await response.json()
    assert answer["state"] == "proposed" and answer["identical"] is True
    deal = await db[models.DEAL_STATE].find_one({"_id": answer["id"]})
    assert deal["identical"] and deal["endEpoch"] == 5000 + deal["duration"]


async def test_max_concurrent_boost_runs(deal_config, db, serve_app, proposal, fake_boost):
    deal_config.deal_making_service.max_concurrent = 1
    client = await serve_app(create_app(deal_config, db, routes))
    fake_boost.control(sleep=0.4)
    pieces = [cidlib.to_str(cidlib.piece_cid_v1(bytes([i]) * 32)) for i in range(3)]
    answers = await asyncio.gather(*(client.post("/deal", json={**proposal, "pieceCid": p}) for p in pieces))
    assert [a.status for a in answers] == [200, 200, 200]
    starts = sorted(c["time"] for c in fake_boost.deals() if c["outcome"] == "timeout")
    assert len(starts) == 3
    assert all(b - a >= 0.4 for a, b in zip(starts, starts[1:])), starts
