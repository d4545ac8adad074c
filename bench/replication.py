"""Replication: planning one round for 10,000 chunks x 3 replicas over 50 providers on the
embedded database (deal sending faked), and the database queries a round makes for 1,000 and for
10,000 chunks (they must be equal: no query per chunk).

Each piece already has one live deal, so the round reads 10,000 DealStates too. Prints a
same-run baseline: reading the chunks alone. Target on the 2-core reference machine: < 10 s.

    python bench/replication.py [--chunks 10000] [--providers 50]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

from common import embedded, scratch

from pymongo import monitoring  # noqa: E402

from services.replication import planner  # noqa: E402
from services.replication.counting import Rules  # noqa: E402
from shared import database, models  # noqa: E402
from shared.ipld import cid as cidlib  # noqa: E402

TARGET_S = 10.0
CLIENT = "f1aaaqeayeaudaocajbifqydiob4ibceqt2oc2pvy"
READS = {"find", "aggregate", "count", "distinct"}


class Counter(monitoring.CommandListener):
    def __init__(self):
        self.commands: dict[str, int] = {}

    def started(self, event):
        self.commands[event.command_name] = self.commands.get(event.command_name, 0) + 1

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass

    def queries(self) -> int:
        return sum(n for name, n in self.commands.items() if name in READS)


async def populate(db, chunks: int, providers: list[str]) -> dict:
    scan = models.scanning_request(f"bench-{chunks}", "/bench", 2**35, 2**34, 2**34 + 1)
    scan["status"] = "completed"
    await db[models.SCANNING].insert_one(scan)
    docs, deals = [], []
    for i in range(chunks):
        doc = models.generation_request(scan, i, 10, 2**34)
        piece = cidlib.to_str(cidlib.piece_cid_v1(i.to_bytes(8, "big") * 4))
        doc.update(status="completed", dataCid=cidlib.to_str(cidlib.raw(b"%d-%d" % (chunks, i))), pieceCid=piece,
                   pieceSize=2**35, carSize=2**34)
        docs.append(doc)
        deals.append({"_id": models.new_id(), "pieceCid": piece, "provider": providers[i % len(providers)],
                      "client": CLIENT, "state": "active", "endEpoch": 5_000_000, "createdAt": models.now() - 10 * 86400,
                      "pieceSize": 2**35, "verified": True})
    for start in range(0, chunks, 5000):
        await db[models.GENERATION].insert_many(docs[start:start + 5000])
        await db[models.DEAL_STATE].insert_many(deals[start:start + 5000])
    request = models.replication_request({
        "preparationId": scan["_id"], "minReplicas": 3, "maxReplicas": 3, "criteria": "provider in (f01000)",
        "client": CLIENT, "keyPath": "k", "verified": True, "duration": 1540800, "startDelay": 8640, "price": "0",
        "keepUnsealed": True, "announceToIpni": True, "urlTemplate": "http://x/{dataCid}.car",
        "maxPendingPerProvider": 10**6, "dealsPerDay": 10**6})
    await db[models.REPLICATION].insert_one(request)
    return request


async def one_size(url: str, chunks: int, providers: list[str]) -> tuple[float, float, int, int, dict]:
    listener = Counter()
    client = database.client(url, event_listeners=[listener])
    db = client[database.database_name(url)]
    await database.ensure_indexes(db)
    request = await populate(db, chunks, providers)
    started = time.perf_counter()
    await db[models.GENERATION].find({"preparationId": {"$eq": request["preparationId"]}},
                                     {"pieceCid": 1, "index": 1}).to_list(None)
    baseline = time.perf_counter() - started
    listener.commands.clear()
    started = time.perf_counter()
    data = await planner.load(db, request, Rules(models.now(), 30 * 2880, 300.0, 1_000_000))
    plan = planner.plan(data, request, providers, models.now(), datacap=2**80)
    elapsed = time.perf_counter() - started
    commands = dict(listener.commands)
    await client.drop_database(db.name)
    await client.close()
    return elapsed, baseline, len(plan.assignments), listener.queries(), commands


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--providers", type=int, default=50)
    parser.add_argument("--port", type=int, default=None, help="of the embedded database (default: a free one)")
    args = parser.parse_args()
    providers = [f"f0{1000 + i}" for i in range(args.providers)]
    with scratch("bench-replication-") as work:
        with embedded(str(work / "db"), args.port) as server:
            print(f"cpus: {os.cpu_count()}")
            results = {}
            for chunks in sorted({args.chunks // 10, args.chunks}):
                results[chunks] = asyncio.run(one_size(f"{server.url}/bench_rep_{chunks}", chunks, providers))
                elapsed, baseline, planned, queries, commands = results[chunks]
                print(f"{chunks:,} chunks x 3 replicas over {args.providers} providers: planned {planned:,} proposals "
                      f"in {elapsed:.2f} s (baseline, reading the chunks alone: {baseline:.2f} s); "
                      f"{queries} queries ({', '.join(f'{k} {v}' for k, v in sorted(commands.items()))})")
            small, large = (results[k] for k in sorted(results))
            print(f"queries per round: {small[3]} for {min(results):,} chunks, {large[3]} for {max(results):,} chunks "
                  f"({'equal' if small[3] == large[3] else 'NOT EQUAL'}; getMore batches follow the result size)")
            ok = large[0] < TARGET_S and small[3] == large[3]
            print(f"target: < {TARGET_S:.0f} s with equal query counts: {'met' if ok else 'MISSED'}")
            return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
