"""Runs tracking rounds in a process of its own, so a test can measure its memory or kill it.

usage: tracker_process.py DB_URL LOTUS_URL ROUNDS; prints {"maxrss_mb", "results"} as JSON.
"""
import asyncio
import json
import resource
import sys

import aiohttp

from shared.lotus import LotusClient
from services.tracking.tracker import Tracker
from shared import database


async def main(db_url: str, lotus_url: str, rounds: int) -> None:
    client = database.client(db_url)
    db = client[database.database_name(db_url)]
    results = []
    async with aiohttp.ClientSession() as session:
        tracker = Tracker(db, LotusClient(session, lotus_url), one_by_one_limit=0)
        for _ in range(rounds):
            result = await tracker.round()
            results.append({"height": result.height, "updated": result.updated, "mode": result.mode,
                            "scanned": result.scanned})
    await client.close()
    print(json.dumps({"maxrss_mb": peak_rss_mb(), "results": results}))


def peak_rss_mb() -> float:
    """This process's own peak: ru_maxrss survives exec, so it would also count the memory of the
    (forked) test process that started us; VmHWM belongs to the address space exec gave us."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
