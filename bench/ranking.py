"""Ranking: a lookup over 10,000 providers x 30 metrics, and a refresh of 10,000 providers from a
filrep listing, on the embedded database.

Prints, in one run, a baseline for each: a hand-written Python filter over the same rows (no
parsing, no HTTP) for the lookup, and fetching the listing without storing it for the refresh.
Targets on the 2-core reference machine: lookup median < 300 ms; refresh < 60 s.

    python bench/ranking.py [--providers 10000] [--runs 20]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

from common import connect, embedded, scratch

import aiohttp  # noqa: E402
from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from services.ranking.ranking import Ranking  # noqa: E402
from services.ranking.routes import RANKING, routes  # noqa: E402
from services.ranking.sources import Filrep  # noqa: E402
from services.ranking.sources.base import Round  # noqa: E402
from shared import config as config_module  # noqa: E402
from shared import models  # noqa: E402
from shared.api import create_app  # noqa: E402
from tests.ranking.fakes import FakeSources, SourceData  # noqa: E402

LOOKUP_TARGET_MS = 300
REFRESH_TARGET_S = 60
CRITERIA = ("filrep.success_rate > 0.5 && filrep.reachable && deals.acceptance_rate >= 0.3 "
            "&& (lotus.raw_power > 1000 || filrep.region == 'Europe')")


def metric_value(kind: str, i: int, j: int):
    if kind == "bool":
        return (i + j) % 4 != 0
    if kind == "string":
        return ("Europe", "Asia", "North America")[(i + j) % 3]
    if kind == "rate":
        return ((i * 2654435761 + j * 97) % 10_000) / 10_000
    return (i * 31 + j * 17) % 5000


async def lookup_bench(url: str, providers: int, runs: int) -> tuple[float, float, float, float, int]:
    async with connect(url) as db:
        config = config_module.parse({})
        async with aiohttp.ClientSession() as session:
            ranking = Ranking(config, db, session)
            known = ranking.known_metrics
            names = ["filrep.success_rate", "filrep.reachable", "deals.acceptance_rate", "lotus.raw_power",
                     "filrep.region"]
            names += [n for n in sorted(known) if n not in names][:30 - len(names)]
            docs = []
            for i in range(providers):
                for j, name in enumerate(names):
                    kind = known[name]
                    value = metric_value("rate" if kind == "number" and "rate" in name else kind, i, j)
                    docs.append(models.provider_metric(f"f0{10000 + i}", name.split(".")[0], name, value, 0.0))
                if len(docs) >= 20_000:
                    await db[models.PROVIDER_METRIC].insert_many(docs, ordered=False)
                    docs = []
            if docs:
                await db[models.PROVIDER_METRIC].insert_many(docs, ordered=False)
            began = time.perf_counter()
            await ranking.load()
            load_s = time.perf_counter() - began
            # The re-read every reload_interval when no other host stored anything: by the updatedAt index.
            began = time.perf_counter()
            applied = await ranking.reload()
            reload_ms = (time.perf_counter() - began) * 1000
            assert applied == 0, applied
            app = create_app(config, db, routes)
            app[RANKING] = ranking
            api = TestClient(TestServer(app))
            await api.start_server()
            times, found = [], 0
            for _ in range(runs):
                began = time.perf_counter()
                response = await api.post("/ranking/lookup", json={"criteria": CRITERIA, "limit": 100,
                                                                   "sort": "-filrep.success_rate"})
                found = len(await response.json())
                times.append(time.perf_counter() - began)
            await api.close()
            rows = ranking.table.rows()
            began = time.perf_counter()
            for _ in range(runs):
                hits = [p for p, r in rows.items()
                        if r.get("filrep.success_rate", 0) > 0.5 and r.get("filrep.reachable") is True
                        and r.get("deals.acceptance_rate", 0) >= 0.3
                        and (r.get("lotus.raw_power", 0) > 1000 or r.get("filrep.region") == "Europe")]
            baseline = (time.perf_counter() - began) / runs
            assert found == min(100, len(hits)), (found, len(hits))
    return statistics.median(times) * 1000, baseline * 1000, load_s, reload_ms, found


async def refresh_bench(url: str, providers: int) -> tuple[float, float, int]:
    async with connect(url) as db:
        miners = [{"id": i, "address": f"f0{20000 + i}", "status": True, "reachability": "reachable",
                   "uptimeAverage": 0.9, "price": "0", "verifiedPrice": "0", "minPieceSize": "256",
                   "maxPieceSize": "34359738368", "rawPower": str(i * 2**30), "qualityAdjPower": str(i * 2**31),
                   "isoCode": "US", "region": "North America", "freeSpace": "1000",
                   "storageDeals": {"total": i, "successRate": str(i % 100 / 100), "slashed": i % 3},
                   "score": str(i % 100), "rank": str(i)} for i in range(providers)]
        fake = await FakeSources(SourceData(filrep=miners)).start()
        config = config_module.parse({"ranking_service": {"filrep_api": fake.url, "sources": ["filrep"]}})
        async with aiohttp.ClientSession() as session:
            began = time.perf_counter()
            await Filrep().collect(Round(config, db, session, set(), {}))
            fetch_s = time.perf_counter() - began
            ranking = Ranking(config, db, session)
            await ranking.load()
            began = time.perf_counter()
            summary = await ranking.refresh()
            refresh_s = time.perf_counter() - began
        await fake.stop()
        stored = len([1 async for _ in db[models.PROVIDER_METRIC].find({}, {"_id": 1})])
    assert summary["sources"]["filrep"]["ok"], summary
    return refresh_s, fetch_s, stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--providers", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--port", type=int, default=None, help="of the embedded database (default: a free one)")
    args = parser.parse_args()
    with scratch("bench-ranking-") as work:
        with embedded(str(work / "db"), args.port) as server:
            print(f"cpus: {os.cpu_count()}")
            median_ms, base_ms, load_s, reload_ms, found = asyncio.run(
                lookup_bench(f"{server.url}/bench_lookup", args.providers, args.runs))
            print(f"table load of {args.providers:,} providers x 30 metrics from the database: {load_s:.1f} s")
            print(f"table re-read with nothing new since (every reload_interval): {reload_ms:.1f} ms")
            print(f"baseline hand-written filter over the same rows: {base_ms:.1f} ms")
            print(f"POST /ranking/lookup, 5-term criteria, {found} shown, median of {args.runs}: {median_ms:.1f} ms "
                  f"(target < {LOOKUP_TARGET_MS} ms: {'met' if median_ms < LOOKUP_TARGET_MS else 'MISSED'})")
            refresh_s, fetch_s, stored = asyncio.run(refresh_bench(f"{server.url}/bench_refresh", args.providers))
            print(f"baseline fetching the filrep listing of {args.providers:,} providers: {fetch_s:.1f} s")
            print(f"refresh from filrep ({stored:,} metric values stored): {refresh_s:.1f} s "
                  f"(target < {REFRESH_TARGET_S} s: {'met' if refresh_s < REFRESH_TARGET_S else 'MISSED'})")


if __name__ == "__main__":
    main()
