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
    """This process's own peak resident memory.

    Not ru_maxrss: Linux carries the peak RSS of the address space a process had before exec into
    it, and a child started (vfork or fork) by pytest begins in pytest's, so ru_maxrss would report
    the test process's peak, hundreds of MB after other test files, as the tracker's. VmHWM is the
    peak of the address space this program's exec created."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    # No procfs: an upper bound (it may include the parent's peak), so a bounded-memory test can only
    # fail wrongly, never pass wrongly.
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return usage / (2**20 if sys.platform == "darwin" else 1024)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
