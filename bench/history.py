"""Cost of the history charts (GET /deals/history, GET /preparations/history) on the embedded database.

Prints, in one run, the deal-states chart computed as the service does (services/dealmaking/history.py)
for 30 daily buckets and for 1,000 buckets, against the baseline a naive chart would be (every
transition read into Python and replayed), and the bytes-prepared chart over the chunks.

    python bench/history.py [--deals 20000] [--chunks 20000]
"""
from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path

from common import best_of, connect, embedded

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.dealmaking import history  # noqa: E402
from services.preparation import handlers as preparation  # noqa: E402
from shared import models, timeline  # noqa: E402

DAY = 86_400
LIFECYCLES = [["sending", "proposed", "published", "active"], ["sending", "rejected"],
              ["sending", "proposed", "proposal_expired"], ["sending", "proposed", "published", "active", "expired"]]


async def main(deals: int, chunks: int) -> None:
    rng = random.Random(1)
    until = int(time.time())
    since = until - 30 * DAY
    with embedded() as server:
        async with connect(f"{server.url}/bench") as db:
            docs = []
            for i in range(deals):
                deal = {"_id": f"{i:08d}", "provider": f"f0{1000 + i % 20}", "pieceCid": "baga", "client": "f1x",
                        "dealId": i}
                at = since - 5 * DAY + rng.random() * 30 * DAY
                previous = None
                for state in rng.choice(LIFECYCLES):
                    docs.append(models.deal_transition(deal, models.state_change(previous, state, at=at)))
                    previous, at = state, at + rng.random() * 3 * DAY
            for start in range(0, len(docs), 5000):
                await db[models.DEAL_TRANSITION].insert_many(docs[start:start + 5000])
            scan = models.scanning_request("bench", "/data", 1 << 35, 1 << 34, 1 << 35)
            for start in range(0, chunks, 5000):
                indexes = range(start, min(chunks, start + 5000))
                batch = [models.generation_request(scan, i, 10, 1 << 30) for i in indexes]
                for doc in batch:
                    doc.update(status="completed", carSize=(1 << 30) + 4096,
                               completedAt=since + rng.random() * 30 * DAY)
                await db[models.GENERATION].insert_many(batch)
            print(f"{deals} deals, {len(docs)} transitions, {chunks} chunks on nx-27017")

            async def replayed():
                window = timeline.window(since, until, DAY)
                rows = await db[models.DEAL_TRANSITION].find({}, {"from": 1, "to": 1, "time": 1}).to_list(None)
                rows.sort(key=lambda r: r["time"])
                counts: dict = {}
                points, i = [], 0
                for number in range(window.count):
                    end = window.end(number)
                    while i < len(rows) and rows[i]["time"] < end:
                        if rows[i]["from"]:
                            counts[rows[i]["from"]] -= 1
                        counts[rows[i]["to"]] = counts.get(rows[i]["to"], 0) + 1
                        i += 1
                    points.append(dict(counts))
                return points

            baseline = await best_of("baseline: read every transition, replay in Python", replayed)
            daily = await best_of("deal history, 30 daily buckets (two $group, $push)",
                                lambda: history.states_over_time(db, timeline.window(since, until, DAY), None))
            await best_of("deal history, 1,000 buckets",
                        lambda: history.states_over_time(db, timeline.window(until - 1000 * 2592, until, 2592), None))
            await best_of("deal history of one provider, 30 daily buckets",
                        lambda: history.states_over_time(db, timeline.window(since, until, DAY), "f01001"))
            await best_of("bytes prepared, 30 daily buckets ($bucket)",
                        lambda: preparation.prepared_history(db, None, since, until, DAY))
            await best_of("bytes prepared, 1,000 buckets",
                        lambda: preparation.prepared_history(db, None, until - 1000 * 2592, until, 2592))
            whole = await history.states_over_time(db, timeline.window(since, until, DAY), None)
            same = whole["points"][-1]["counts"]
            replay = (await replayed())[-1]
            assert {k: v for k, v in same.items() if v} == {k: v for k, v in replay.items() if v}, (same, replay)
            print(f"aggregation vs replay: {baseline / daily:.1f}x faster (same counts)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--deals", type=int, default=20_000)
    parser.add_argument("--chunks", type=int, default=20_000)
    args = parser.parse_args()
    asyncio.run(main(args.deals, args.chunks))
