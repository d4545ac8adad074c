"""Dashboard page loads at scale, on the embedded database.

Seeds what bench/api.py seeds (1,000 preparations of 20 chunks, one of 10,000 chunks and its file
entries), serves the preparation and deal making APIs and the dashboard in a subprocess, and
times each page as a browser loads it (the whole HTML), first and last page, against the API
call behind it as the baseline. Target: no page over 2 s (issue 15).

    python bench/dashboard.py [--files 100000] [--repeat 5]
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time

import aiohttp

from api import seed, wait_ready
from common import connect, embedded, free_port, scratch

TARGET = 2.0
DB_NAME = "bench_dashboard"


async def serve(url: str, ports: list[int]) -> None:
    from services.dashboard.service import make_app
    from services.dealmaking import service as dealmaking
    from services.preparation import service as preparation
    from shared import config as config_module
    from shared.api import serve as serve_app
    from shared.runtime import Runtime, run_together

    prep, deals, dash = ports
    config = config_module.parse({"connection": {
        "database": url, "deal_preparation_service": f"http://127.0.0.1:{prep}",
        "deal_making_service": f"http://127.0.0.1:{deals}", "ranking_service": f"http://127.0.0.1:{free_port()}",
        "replication_service": f"http://127.0.0.1:{free_port()}"}, "database": {"enabled": False}})
    runtime = await Runtime.connect(config)
    await run_together(serve_app(preparation.app(runtime), "127.0.0.1", prep),
                       serve_app(dealmaking.make_app(runtime), "127.0.0.1", deals),
                       serve_app(make_app(config), "127.0.0.1", dash))


async def timed(session: aiohttp.ClientSession, url: str, repeat: int) -> tuple[float, float]:
    """(median, max) seconds of a whole GET."""
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        async with session.get(url) as response:
            await response.read()
            if response.status != 200:
                raise SystemExit(f"{url}: HTTP {response.status}")
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), max(seconds)


async def main(args) -> int:
    with scratch("bench-dashboard-") as work, embedded(str(work / "db")) as server:
        url = f"{server.url}/{DB_NAME}"
        async with connect(url) as db:
            started = time.perf_counter()
            ids, big = await seed(db, 1000, 20, 10_000, args.files)
            print(f"seeded 1,000 preparations of 20 chunks, one of 10,000 chunks and {args.files:,} files "
                  f"in {time.perf_counter() - started:.0f} s")
        ports = [free_port() for _ in range(3)]
        process = subprocess.Popen([sys.executable, __file__, "--serve", url, *map(str, ports)], start_new_session=True)
        try:
            return await measure(process, *(f"http://127.0.0.1:{p}" for p in ports), big, args.repeat)
        finally:
            process.terminate()
            process.wait(timeout=30)


async def measure(process: subprocess.Popen, prep: str, deals: str, dash: str, big: str, repeat: int) -> int:
    async with aiohttp.ClientSession() as session:
        await wait_ready(session, [f"{prep}/preparations", f"{dash}/static/dashboard.css"], process)
        pages = [
            ("preparations, first page", "/preparations", "/preparations?limit=50"),
            ("preparations, last page", "/preparations?offset=950", "/preparations?offset=950&limit=50"),
            ("big preparation, first chunks", f"/preparation/{big}", f"/preparation/{big}?limit=50"),
            ("big preparation, last chunks", f"/preparation/{big}?offset=9950", f"/preparation/{big}?offset=9950&limit=50"),
            ("big preparation, file search", f"/preparation/{big}?path=d00050/",
             f"/preparation/{big}/files?path=d00050/&limit=100"),
            ("live part of the preparations", "/live/preparations?offset=500", "/preparations?offset=500&limit=50"),
            ("workers", "/workers", "/status"),
        ]
        worst = 0.0
        print(f"{'page':34} {'dashboard':>20} {'API call behind it':>20}")
        for name, page, api in pages:
            page_median, page_max = await timed(session, dash + page, repeat)
            api_median, _ = await timed(session, prep + api, repeat)
            worst = max(worst, page_max)
            print(f"{name:34} {page_median * 1000:>9.0f} ms (max {page_max * 1000:.0f}) {api_median * 1000:>12.0f} ms")
        print(f"slowest page load: {worst:.2f} s (target <= {TARGET:.0f} s): {'met' if worst <= TARGET else 'MISSED'}")
        return 0 if worst <= TARGET else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        asyncio.run(serve(sys.argv[2], [int(p) for p in sys.argv[3:6]]))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    sys.exit(asyncio.run(main(parser.parse_args())))
