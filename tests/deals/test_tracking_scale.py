"""Tracking at scale and across kills: a 200,000-deal StateMarketDeals in bounded memory, and a
tracker killed mid-round that, started again, reaches the same states."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from shared.lotus import LotusClient
from services.tracking.tracker import Tracker
from shared import models

from tests.wait import wait_until

from .conftest import PROVIDER, WALLET, WALLET_ID

SCRIPT = Path(__file__).parent / "fakes" / "tracker_process.py"
ROOT = Path(__file__).parents[2]
DAY = 2880
HEIGHT = 1_000_000
DURATION = 200 * DAY


def _piece(i: int) -> str:
    # Distinct, well-formed-looking piece CIDs; matching compares them as strings.
    return f"baga6ea4seaqscale{i:08d}"


async def build_scenario(db, chain, count: int) -> dict[str, str]:
    """`count` local deals in six situations; returns local id -> the state they must end in."""
    expected, docs = {}, []
    for i in range(count):
        kind = i % 6
        start = HEIGHT + 10_000 if kind in (0, 1) else HEIGHT - DURATION + 5_000
        if kind == 4:
            start = HEIGHT - DURATION - 100  # ended before HEIGHT
        if kind == 5:
            start = HEIGHT - 10
        end = start + DURATION
        local = models.new_id()
        docs.append({"_id": local, "client": WALLET, "provider": PROVIDER, "pieceCid": _piece(i),
                     "state": "proposed", "startEpoch": start, "endEpoch": end, "dealId": None,
                     "sectorStartEpoch": None, "trackedHeight": None})
        if kind in (1, 2, 3, 4):
            deal_id = chain.publish(WALLET_ID, PROVIDER, _piece(i), start, end)
            if kind in (2, 3, 4):
                chain.activate(deal_id, epoch=start - 5, sector=i)
            if kind == 3:
                chain.slash(deal_id, epoch=HEIGHT - 1)
        expected[local] = ["proposed", "published", "active", "slashed", "expired", "proposal_expired"][kind]
    await db[models.DEAL_STATE].insert_many(docs)
    chain.height = HEIGHT
    return expected


async def states(db) -> dict[str, str]:
    return {d["_id"]: d["state"] async for d in db[models.DEAL_STATE].find({}, {"state": 1})}


# Holds argv[1] MB while it runs the rest of argv, then writes its own peak RSS (MB) as stderr's last line.
BALLAST_PARENT = """import resource, subprocess, sys
ballast = b"x" * (int(sys.argv[1]) << 20)
code = subprocess.run(sys.argv[2:]).returncode
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, file=sys.stderr)
sys.exit(code)
"""


async def run_process(db_url: str, lotus_url: str, rounds: int = 1, parent_mb: int = 0
                      ) -> asyncio.subprocess.Process:
    parent = [sys.executable, "-c", BALLAST_PARENT, str(parent_mb)] if parent_mb else []
    return await asyncio.create_subprocess_exec(
        *parent, sys.executable, str(SCRIPT), db_url, lotus_url, str(rounds), cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


@pytest.mark.timeout(120)
async def test_200k_market_deals_in_bounded_memory(db, db_url, lotus):
    chain = lotus.chain
    expected = await build_scenario(db, chain, 60)
    chain.bulk = 200_000
    process = await run_process(db_url, lotus.url)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0, stderr.decode()[-3000:]
    report = json.loads(stdout)
    assert report["results"][0]["mode"] == "market-deals"
    assert report["results"][0]["scanned"] == 200_000 + 40  # the bulk, and our deals that are on chain
    print("tracker peak RSS: %.1f MB" % report["maxrss_mb"])
    assert await states(db) == expected
    assert report["maxrss_mb"] < 200, report


async def test_tracker_memory_figure_is_its_own_not_its_parents(db, db_url, lotus):
    """What the test above bounds is the tracker's memory: started by a process with a 300 MB peak
    (pytest after other test files), a tracker doing a small round reports far less. ru_maxrss, the
    figure used before, reported the parent's peak: the test above failed in long runs, passed alone."""
    expected = await build_scenario(db, lotus.chain, 12)
    process = await run_process(db_url, lotus.url, parent_mb=300)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0, stderr.decode()[-3000:]
    assert int(stderr.split()[-1]) >= 300  # the ballast was resident while the tracker ran
    assert await states(db) == expected
    report = json.loads(stdout)
    assert report["maxrss_mb"] < 150, report


async def test_market_state_is_read_no_faster_than_it_is_used(lotus):
    """A tracker slowed down (a loaded machine) holds the node back instead of buffering the rest of
    its answer, which is gigabytes on mainnet: the node gets only socket buffers ahead."""
    chain = lotus.chain
    chain.bulk = 200_000  # about 100 MB
    everyone = {f"f0{900000 + i}" for i in range(1000)}  # every bulk deal is yielded
    used = ahead = 0
    async with aiohttp.ClientSession() as session:
        async for _ in LotusClient(session, lotus.url).market_deals(everyone):
            used += 1
            ahead = max(ahead, chain.deals_sent - used)
            if used % 1000 == 0:
                await asyncio.sleep(0.01)  # the slow consumer; meanwhile the node writes what it may
    assert used == 200_000
    # About 14,000 (7 MB) measured; an answer read without back-pressure is 195,000 ahead.
    assert ahead < 50_000, ahead


@pytest.mark.parametrize("after_updates", [1, 40, 150])
async def test_tracker_killed_mid_round_reaches_the_same_states(db, db_url, lotus, after_updates):
    chain = lotus.chain
    expected = await build_scenario(db, chain, 300)
    chain.bulk = 20_000
    process = await run_process(db_url, lotus.url, rounds=1)
    try:
        # Kill -9 once the round has written some, not all, of its updates.
        async def some_written():
            written = await db[models.DEAL_STATE].count_documents({"trackedHeight": HEIGHT})
            return written >= after_updates or process.returncode is not None
        await wait_until(some_written, interval=0.005, what=f"{after_updates} updates of the round")
        assert process.returncode is None, "the round ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        await process.wait()
    partial = await states(db)
    assert partial != expected
    restarted = await run_process(db_url, lotus.url, rounds=2)
    stdout, stderr = await restarted.communicate()
    assert restarted.returncode == 0, stderr.decode()[-3000:]
    assert await states(db) == expected
    assert json.loads(stdout)["results"][1]["updated"] == 0  # a further round changes nothing


async def test_round_cancelled_at_any_point_converges(db, lotus):
    chain = lotus.chain
    expected = await build_scenario(db, chain, 120)
    chain.bulk = 3_000
    chain.chunk_delay = 0.002
    async with aiohttp.ClientSession() as session:
        for delay in (0.0, 0.01, 0.03, 0.06, 0.1, 0.15, 0.2, 0.3):
            task = asyncio.create_task(Tracker(db, LotusClient(session, lotus.url), one_by_one_limit=0).round())
            await asyncio.sleep(delay)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await Tracker(db, LotusClient(session, lotus.url)).round()
    assert await states(db) == expected
