"""Scanning throughput: files/s for a tree of small files on the embedded database.

Prints, in one run, the machine's baseline (a bare sorted os.scandir + stat walk of the same tree,
no database) and the scan's rate through the worker code with every chunk stored.
Target on the 2-core reference machine: >= 5,000 files/s.

    python bench/scan.py [--files 100000] [--keep DIR]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

from common import embedded, scratch

from services.worker.scanning import ScanRun  # noqa: E402
from services.worker.walk import File, walk  # noqa: E402
from shared import database, jobs, models  # noqa: E402

TARGET = 5_000


def make_tree(root: Path, files: int) -> None:
    per_dir = 1000
    for i in range(files):
        directory = root / f"d{i // per_dir:04d}"
        if i % per_dir == 0:
            directory.mkdir(parents=True)
        (directory / f"f{i:07d}.txt").write_bytes(b"x" * (i % 4096))


def baseline(root: Path) -> float:
    start = time.perf_counter()
    count = sum(1 for item in walk(str(root)) if isinstance(item, File))
    return count / (time.perf_counter() - start)


async def scan(url: str, root: Path) -> tuple[float, int]:
    client = database.client(url)
    db = client["bench_scan"]
    await client.drop_database("bench_scan")
    await database.ensure_indexes(db)
    deal = 32 * 2**30
    request = models.scanning_request("bench", str(root), deal, 2**20, 2**21)  # many chunks, many checkpoints
    await db[models.SCANNING].insert_one(request)
    start = time.perf_counter()
    job = await jobs.claim(db, models.SCANNING, "bench")
    await ScanRun(db, job, "bench").run()
    elapsed = time.perf_counter() - start
    done = await db[models.SCANNING].find_one({"_id": request["_id"]})
    chunks = await db[models.GENERATION].count_documents({})
    await client.drop_database("bench_scan")
    await client.close()
    return done["scannedFiles"] / elapsed, chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--port", type=int, default=None, help="of the embedded database (default: a free one)")
    args = parser.parse_args()
    with scratch("bench-scan-") as work:
        print(f"making {args.files:,} small files in {work} ...", flush=True)
        make_tree(work / "tree", args.files)
        base = baseline(work / "tree")
        with embedded(str(work / "db"), args.port) as server:
            rate, chunks = asyncio.run(scan(server.url, work / "tree"))
        print(f"cpus: {os.cpu_count()}")
        print(f"baseline sorted scandir+stat walk, no database: {base:,.0f} files/s")
        print(f"scan into the embedded database ({chunks} chunks):  {rate:,.0f} files/s "
              f"(target >= {TARGET:,}: {'met' if rate >= TARGET else 'MISSED'})")


if __name__ == "__main__":
    main()
