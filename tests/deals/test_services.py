"""The two modules as `singularity run` starts them: `run(runtime)` until cancelled."""
from __future__ import annotations

import asyncio

import aiohttp

from services.dealmaking import service as dealmaking
from services.tracking import service as tracking
from shared import models
from shared.runtime import Runtime
from tests.conftest import free_port
from tests.wait import wait_until

from .conftest import PIECE_CID, PROVIDER, WALLET, WALLET_ID, assert_sent


async def test_dealmaking_module_serves_the_api(deal_config, db_url, db, fake_boost, proposal):
    deal_config.deal_making_service.port = free_port()
    runtime = await Runtime.connect(deal_config, db_url)
    task = asyncio.create_task(dealmaking.run(runtime))
    base = f"http://127.0.0.1:{deal_config.deal_making_service.port}"
    try:
        async with aiohttp.ClientSession() as session:
            async def post_once_listening():
                try:
                    async with session.post(f"{base}/deal", json=proposal) as response:
                        return await response.json()
                except aiohttp.ClientConnectionError:
                    return None  # not listening yet
            answer = await wait_until(post_once_listening, interval=0.02, what="the deal API to answer")
            await assert_sent(db, fake_boost, answer, pieceCid=PIECE_CID, provider=PROVIDER)
            async with session.get(f"{base}/deals") as response:
                assert [d["id"] for d in (await response.json())["deals"]] == [answer["id"]]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await runtime.close()


async def test_tracking_module_updates_deals(deal_config, db_url, db, lotus):
    deal_config.deal_tracking_service.interval = 0.05
    await db[models.DEAL_STATE].insert_one({
        "_id": "d1", "client": WALLET, "provider": PROVIDER, "pieceCid": PIECE_CID, "state": "proposed",
        "startEpoch": 10_000, "endEpoch": 10_000 + 518400, "dealId": None, "trackedHeight": None})
    deal_id = lotus.chain.publish(WALLET_ID, PROVIDER, PIECE_CID, 10_000, 10_000 + 518400)
    runtime = await Runtime.connect(deal_config, db_url)
    task = asyncio.create_task(tracking.run(runtime))
    try:
        async def deal_in(state):
            deal = await db[models.DEAL_STATE].find_one({"_id": "d1"})
            return deal if deal["state"] == state else None
        deal = await wait_until(lambda: deal_in("published"), interval=0.02, what="the deal to be published")
        assert deal["dealId"] == deal_id
        lotus.chain.activate(deal_id)
        await wait_until(lambda: deal_in("active"), interval=0.02, what="the deal to be active")
        assert (await db[models.DEAL_TRACKER].find_one({"_id": "tracker"}))["height"] == lotus.chain.height
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await runtime.close()
