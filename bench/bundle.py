"""Bundle speed: a tar of many small files streamed by the hosting service, against `retrieve` of
the same files, in one run on the embedded database.

The tree is prepared through the real scanner and worker code (ScanRun, GenerationRun) and the
indexer, then served by the hosting app on 127.0.0.1. Both clients run in a thread of this process
(the server keeps the event loop): the bundle is one GET read to the end, the retrieval is
`singularity retrieve`'s code writing the files into a folder. Target: the bundle is at least as
fast as the retrieval.

    .venv/bin/python bench/bundle.py [--files 500] [--size 1800] [--tree DIR] [--deal-size 32MiB]
"""
from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import time
import urllib.request
from pathlib import Path

from common import connect, embedded, free_port, pipeline_config, prepare, scratch, timed

from aiohttp import web  # noqa: E402

from services.hosting.routes import routes  # noqa: E402
from services.indexing import retrieval, sources  # noqa: E402
from shared import models  # noqa: E402
from shared.api import create_app  # noqa: E402
from shared.config import parse_size  # noqa: E402


def make_tree(root: Path, files: int, mean_size: int) -> None:
    rng = random.Random(7)
    for i in range(files):
        directory = root / f"d{i // 50:03d}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{i:05d}.txt").write_bytes(rng.randbytes(rng.randint(0, 2 * mean_size)))


def copy_tree(source: Path, root: Path) -> None:
    """Regular files only: the walk skips links and special files anyway."""
    shutil.copytree(source, root, symlinks=True, ignore_dangling_symlinks=True)


def download(url: str) -> int:
    total = 0
    with urllib.request.urlopen(url, timeout=600) as response:
        while chunk := response.read(1 << 20):
            total += len(chunk)
    return total


def retrieve(url: str, output: Path) -> int:
    retriever = retrieval.Retriever([sources.Source(url)])
    plan = retriever.plan(retriever.index_cid_of("bench"), "", "bench")
    return retrieval.write_tree(retriever, plan, output).bytes


async def main(args) -> None:
    with scratch("bench-bundle-") as work, embedded() as server:
        root = work / "bench"
        if args.tree:
            copy_tree(Path(args.tree), root)
        else:
            make_tree(root, args.files, args.size)
        url = f"{server.url}/bench_bundle"
        config = pipeline_config(url, work)
        async with connect(url) as db:
            start = time.perf_counter()
            await prepare(db, config, root, parse_size(args.deal_size))
            files = await db[models.GENERATION_FILES].count_documents({"directory": {"$ne": True}})
            chunks = await db[models.GENERATION].count_documents({})
            print(f"prepared {files} files in {chunks} chunks in {time.perf_counter() - start:.1f} s")

            runner = web.AppRunner(create_app(config, db, routes), access_log=None)
            await runner.setup()
            try:
                port = free_port()
                await web.TCPSite(runner, "127.0.0.1", port).start()
                await compare(f"http://127.0.0.1:{port}", work, files, args.runs)
            finally:
                await runner.cleanup()


async def compare(base: str, work: Path, files: int, runs: int) -> None:
    rows = []
    for attempt in range(runs):
        bundle_time, bundle_bytes = await timed(download, f"{base}/bundle/bench")
        out = work / f"out{attempt}"
        retrieve_time, retrieve_bytes = await timed(retrieve, base, out)
        shutil.rmtree(out)
        rows.append((bundle_time, retrieve_time))
        print(f"run {attempt + 1}: bundle {bundle_time:.2f} s ({bundle_bytes} tar bytes, "
              f"{files / bundle_time:.0f} files/s); retrieve {retrieve_time:.2f} s "
              f"({retrieve_bytes} bytes, {files / retrieve_time:.0f} files/s)")
    bundle_best = min(r[0] for r in rows)
    retrieve_best = min(r[1] for r in rows)
    verdict = "meets" if bundle_best <= retrieve_best else "misses"
    print(f"best: bundle {bundle_best:.2f} s, retrieve {retrieve_best:.2f} s "
          f"(bundle/retrieve = {bundle_best / retrieve_best:.2f}; target <= 1: {verdict})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=500, help="number of generated files")
    parser.add_argument("--size", type=int, default=1800, help="mean size of a generated file, bytes")
    parser.add_argument("--tree", help="bundle a copy of this folder instead (e.g. /usr/share/doc)")
    parser.add_argument("--deal-size", default="32MiB")
    parser.add_argument("--runs", type=int, default=2)
    asyncio.run(main(parser.parse_args()))
