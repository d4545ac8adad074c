"""Cost of a /metrics scrape and of GET /status against a database with many chunks and deals.

Prints, in one run, the time of the state gauges as computed (one `$group` per collection) and the
baseline they replace (a `count_documents` per state, which nx-27017 answers by scanning), on the
embedded database. A scrape must stay well under Prometheus's 10 s timeout.

    python bench/metrics.py [--chunks 100000] [--deals 20000]
"""
from __future__ import annotations

import argparse
import asyncio
import time

from common import best_of, connect, embedded

from services.preparation import status as suite_status  # noqa: E402
from shared import config as config_module  # noqa: E402
from shared import metrics, models, stats  # noqa: E402

STATES = [s.value for s in models.Status if s != models.Status.REMOVED]



async def main(chunks: int, deals: int) -> None:
    with embedded() as server:
        async with connect(f"{server.url}/bench") as db:
            await measure(db, chunks, deals)


async def measure(db, chunks: int, deals: int) -> None:
    scan = models.scanning_request("bench", "/data", 1 << 35, 1 << 34, 1 << 35)
    await db[models.SCANNING].insert_one(scan)
    for start in range(0, chunks, 5000):
        docs = [models.generation_request(scan, i, 10, 1 << 30) for i in range(start, min(chunks, start + 5000))]
        for i, doc in enumerate(docs):
            doc["status"] = STATES[i % len(STATES)]
        await db[models.GENERATION].insert_many(docs)
    deal_states = [s.value for s in models.DealStatus]
    for start in range(0, deals, 5000):
        await db[models.DEAL_STATE].insert_many([{"_id": models.new_id(), "state": deal_states[i % len(deal_states)]}
                                                 for i in range(start, min(deals, start + 5000))])
    print(f"{chunks} chunks, {deals} deals on nx-27017")
    config = config_module.parse({"database": {"enabled": False}})

    async def per_state():
        for state in STATES:
            await db[models.GENERATION].count_documents({"status": state})
        for state in deal_states:
            await db[models.DEAL_STATE].count_documents({"state": state})
    baseline = await best_of("baseline: count_documents per state", per_state)
    grouped = await best_of("state gauges: one $group per collection", lambda: stats.state_counts(db))
    async def summed():
        await (await db[models.GENERATION].aggregate(
            [{"$group": {"_id": "$status", "n": {"$sum": 1}, "bytes": {"$sum": "$size"}}}])).to_list(None)
    await best_of("(not used) chunks: $group with a $sum of size", summed)
    await best_of("full /metrics state families", lambda: metrics.state_families(db))
    await best_of("GET /status body", lambda: suite_status.collect(db, config))
    print(f"$group vs count_documents: {baseline / grouped:.1f}x faster")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--deals", type=int, default=20_000)
    args = parser.parse_args()
    asyncio.run(main(args.chunks, args.deals))
