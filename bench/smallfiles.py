"""Datasets of many small files: 20,000 files of 8 KiB in 50 folders (or --files/--size), on the
embedded database. Prints in one run:

- the baseline: read + SHA-256 of every file (Python, one thread, page cache warm);
- `singularity pack` of the tree (no database);
- the whole pipeline through the worker code on an embedded nx-27017 on disk: scan, CAR
  generation and the dataset index, each timed.

Targets: pack <= 2.5x the baseline, the whole pipeline <= 6x, scan >= 10,000 files/s.

    .venv/bin/python bench/smallfiles.py [--files 20000] [--size 8KiB] [--folders 50] [--profile STEP]

--profile scan|generation|index prints the 25 costliest functions of that step (cProfile).
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path

from common import connect, embedded, pipeline_config, scratch

from services.indexing import indexer  # noqa: E402
from services.worker.generation import GenerationRun  # noqa: E402
from services.worker.scanning import ScanRun  # noqa: E402
from shared import config as config_module  # noqa: E402
from shared import jobs, models  # noqa: E402

DEAL = 32 << 30


def make_tree(root: Path, files: int, size: int, folders: int) -> None:
    for i in range(files):
        directory = root / f"folder{i % folders:03d}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"file{i:07d}.bin").write_bytes(hashlib.sha256(b"%d" % i).digest() * (size // 32)
                                                     + b"\0" * (size % 32))


def baseline(root: Path) -> float:
    start = time.perf_counter()
    for directory, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(directory, name), "rb") as f:
                hashlib.sha256(f.read()).digest()
    return time.perf_counter() - start


class Steps:
    def __init__(self, profile: str | None):
        self.profile = profile
        self.times: dict[str, float] = {}

    async def run(self, name: str, coro_fn):
        profiler = cProfile.Profile() if self.profile == name else None
        start = time.perf_counter()
        if profiler:
            profiler.enable()
        try:
            return await coro_fn()
        finally:
            if profiler:
                profiler.disable()
            self.times[name] = time.perf_counter() - start
            if profiler:
                pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


async def pipeline(root: Path, work: Path, steps: Steps) -> None:
    with embedded(str(work / "db")) as server:
        url = f"{server.url}/bench"
        async with connect(url) as db:
            await measure(db, pipeline_config(url, work, deal_preparation_service={"dataset_roots": [str(root)]}),
                          root, work, steps)


async def measure(db, config, root: Path, work: Path, steps: Steps) -> None:
    scan = models.scanning_request("bench", str(root), DEAL, int(DEAL * 0.6), int(DEAL * 0.9))
    await db[models.SCANNING].insert_one(scan)

    async def scan_step():
        job = await jobs.claim(db, models.SCANNING, "scanner")
        await ScanRun(db, job, "scanner").run()

    async def generation_step():
        while job := await jobs.claim(db, models.GENERATION, "gen"):
            await GenerationRun(db, job, "gen", str(work / "cars")).run()

    async def index_step():
        if await indexer.build_index(db, config, scan["_id"]) is None:
            raise SystemExit("the index was not built")

    await steps.run("scan", scan_step)
    await steps.run("generation", generation_step)
    await steps.run("index", index_step)
    chunks = await db[models.GENERATION].find({"preparationId": scan["_id"]}).to_list(None)
    if not chunks or any(c["status"] != "completed" for c in chunks):
        raise SystemExit(f"chunks not completed: {[c.get('error') for c in chunks]}")


def parse_size(text: str) -> int:
    return config_module.parse_size(text)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--size", default="8KiB")
    ap.add_argument("--folders", type=int, default=None, help="default: 400 files per folder, at least 50")
    ap.add_argument("--dir", default=None)
    ap.add_argument("--profile", choices=["scan", "generation", "index"])
    args = ap.parse_args()
    size = parse_size(args.size)
    folders = args.folders or max(50, args.files // 400)
    with scratch("bench-small-", args.dir) as work:
        root = work / "tree"
        make_tree(root, args.files, size, folders)
        baseline(root)  # warms the page cache, as every measured step below finds it
        base = baseline(root)
        singularity = os.path.join(os.path.dirname(sys.executable), "singularity")
        (work / "packed").mkdir()
        start = time.perf_counter()
        subprocess.run([singularity, "pack", str(root), "-o", str(work / "packed"), "--json"], check=True,
                       stdout=subprocess.DEVNULL)
        pack = time.perf_counter() - start
        steps = Steps(args.profile)
        asyncio.run(pipeline(root, work, steps))
        total = sum(steps.times.values())
        mb = args.files * size / 1e6
        print(f"{args.files} files of {size} B ({mb:.0f} MB) in {folders} folders; "
              f"load average {os.getloadavg()[0]:.1f}")
        rows = [
            ("read + SHA-256 (baseline)", base, ""),
            ("singularity pack", pack, f"{pack / base:.1f}x baseline, target <= 2.5x: "
                                       + ("met" if pack <= 2.5 * base else "MISSED")),
            ("pipeline: scan", steps.times["scan"], f"{args.files / steps.times['scan']:,.0f} files/s, target >= "
                                                    "10,000: " + ("met" if args.files / steps.times["scan"] >= 10_000
                                                                  else "MISSED")),
            ("pipeline: CARs", steps.times["generation"], f"{mb / steps.times['generation']:.0f} MB/s"),
            ("pipeline: index", steps.times["index"], ""),
            ("pipeline: total", total, f"{total / base:.1f}x baseline, target <= 6x: "
                                       + ("met" if total <= 6 * base else "MISSED")),
        ]
        for name, seconds, note in rows:
            print(f"  {name:<28} {seconds:7.2f} s  {note}")


if __name__ == "__main__":
    main()
