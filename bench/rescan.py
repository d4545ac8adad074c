"""Rescanning a dataset that did not change, and one where a few files did: 100,000 files of
16 bytes in 100 folders (or --files/--folders), on an embedded nx-27017 on disk. Prints in one run:

- the baseline: the walk alone (listing and stat of every file, no database);
- the first scan (ScanRun: every file stored);
- a rescan with nothing changed (RescanRun: the walk compared with the stored versions);
- a rescan after --changes files were added, changed and deleted (a third each);

each with its time, the database commands it sent (by name) and the worker's peak RSS growth.
Target: a rescan sends a fixed number of queries per thousand files (never one per file).

    .venv/bin/python bench/rescan.py [--files 100000] [--folders 100] [--changes 300]
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import resource
import time
from pathlib import Path

import common
from pymongo import monitoring

from services.preparation import handlers  # noqa: E402
from services.worker.compare import path_order  # noqa: E402
from services.worker.rescan import RescanRun  # noqa: E402
from services.worker.scanning import ScanRun  # noqa: E402
from services.worker.walk import walk  # noqa: E402
from shared import database, jobs, models  # noqa: E402

DEAL = 32 << 30


class Commands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.counts: collections.Counter = collections.Counter()

    def started(self, event) -> None:
        self.counts[event.command_name] += 1

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


def make_tree(root: Path, files: int, folders: int) -> None:
    for i in range(files):
        directory = root / f"folder{i % folders:03d}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"file-{i:07d}.txt").write_bytes(b"%015d\n" % i)


def change(root: Path, files: int, folders: int, count: int) -> None:
    def existing(j: int) -> Path:
        return root / f"folder{j % folders:03d}" / f"file-{j:07d}.txt"

    third = max(1, count // 3)
    for i in range(third):
        (root / f"folder{i % folders:03d}" / f"added-{i:05d}.txt").write_bytes(b"new\n")
        existing(i * 2).write_bytes(b"changed\n")
        existing(i * 2 + 1).unlink()


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def step(name: str, commands: Commands, fn) -> tuple[float, dict]:
    commands.counts.clear()
    before = rss_mib()
    started = time.perf_counter()
    result = await fn()
    seconds = time.perf_counter() - started
    sent = dict(commands.counts)
    print(f"{name:<34} {seconds:7.2f} s  commands {sum(sent.values()):>5} {sent}  peak RSS +{rss_mib() - before:.0f} MiB"
          + (f"  {result}" if result else ""))
    return seconds, sent


async def bench(work: Path, files: int, folders: int, changes: int) -> None:
    root = work / "tree"
    make_tree(root, files, folders)
    server = common.embedded(str(work / "db"))
    server.start()
    commands = Commands()
    try:
        url = f"{server.url}/bench"
        client = database.client(url, event_listeners=[commands])
        db = client["bench"]
        await database.ensure_indexes(db)

        async def walk_only():
            count = await asyncio.to_thread(lambda: sum(1 for _ in walk(str(root), key=path_order)))
            return f"{count} entries"

        scan = models.scanning_request("bench", str(root), DEAL, DEAL // 2, DEAL // 2 + 1)
        await db[models.SCANNING].insert_one(scan)

        async def first_scan():
            job = await jobs.claim(db, models.SCANNING, "bench")
            await ScanRun(db, job, "bench").run()

        async def rescan():
            await handlers.rescan(db, scan["_id"])
            job = await jobs.claim(db, models.SCANNING, "bench")
            run = RescanRun(db, job, "bench")
            await run.run()
            return {k: v for k, v in run.counts.items() if v} | {"stored-page queries": run.queries}

        print(f"{files} files in {folders} folders")
        walk_seconds, _ = await step("baseline: walk alone", commands, walk_only)
        await step("first scan", commands, first_scan)
        seconds, sent = await step("rescan, nothing changed", commands, rescan)
        print(f"  {seconds / walk_seconds:.1f}x the walk; {files / seconds:,.0f} files/s; "
              f"{sent.get('find', 0) * 1000 / files:.1f} finds per 1000 files")
        change(root, files, folders, changes)
        await step(f"rescan, {changes} added/changed/deleted", commands, rescan)
        await client.close()
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--folders", type=int, default=100)
    parser.add_argument("--changes", type=int, default=300)
    args = parser.parse_args()
    with common.scratch("bench-rescan-") as work:
        asyncio.run(bench(work, args.files, args.folders, args.changes))


if __name__ == "__main__":
    main()
