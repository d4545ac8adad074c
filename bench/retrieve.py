"""Retrieval speed of one large file: through the trustless gateway (`/ipfs/{cid}?format=car`)
and through `/piece` range reads, against reading the chunk's CAR and SHA-256 hashing it, in one
run on the embedded database.

Every block of a retrieval is verified, so hashing the CAR is the floor; target: each method at
least 0.5 of that rate. The file is prepared through the real scanner, worker and indexer
(bench/common.py's `prepare`), served by `singularity run hosting` in its own process on
127.0.0.1 (as a provider or our hosting host would be: client and server do not share one
interpreter lock), and fetched by `singularity retrieve`'s code (`--method car`, `--method
piece`) into a folder.

    .venv/bin/python bench/retrieve.py [--size 1GiB] [--runs 2]
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import time
from pathlib import Path

from common import REPO, connect, embedded, free_port, pipeline_config, prepare, scratch, timed

from services.indexing import retrieval, sources  # noqa: E402
from shared import models  # noqa: E402
from shared.config import parse_size  # noqa: E402


def wait_http(url: str, budget: float = 30.0) -> None:
    deadline = time.monotonic() + budget
    while True:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=5):
                return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise SystemExit(f"the hosting service did not answer at {url}")
            time.sleep(0.2)


def write_file(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for i in range(0, size, 1 << 20):
            # Distinct leaves (no deduplication): each MiB differs in its first bytes.
            f.write((i.to_bytes(8, "big") + block[8:])[:min(1 << 20, size - i)])


def hash_car(path: str) -> int:
    digest = hashlib.sha256()
    total = 0
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            total += len(chunk)
    return total


def retrieve(base: str, index_cid: str, methods: tuple[str, ...], output: Path) -> int:
    retriever = retrieval.Retriever([sources.Source(base)], methods)
    plan = retriever.plan(index_cid, "big.bin", "big.bin")
    return retrieval.write_tree(retriever, plan, output).bytes


def retrieve_to_null(base: str, index_cid: str, methods: tuple[str, ...], spool: Path) -> int:
    """The same fetch, every block verified, its bytes written to /dev/null: transport and
    verification without the cost of the output file (which dominates on a slow disk)."""
    retriever = retrieval.Retriever([sources.Source(base)], methods)
    plan = retriever.plan(index_cid, "big.bin", "big.bin")
    spool.mkdir(exist_ok=True)

    class Null:  # what fetch_file needs of its output: positioned writes, a final truncate
        def __init__(self, fd: int):
            self.fd = fd

        def fileno(self) -> int:
            return self.fd

        def truncate(self, size: int) -> None:
            pass

    fd = os.open(os.devnull, os.O_WRONLY)
    try:
        retriever.fetch_file(plan.files[0], Null(fd), str(spool))
    finally:
        os.close(fd)
    return int(plan.files[0].node["__size"])


async def main(args) -> None:
    size = parse_size(args.size)
    with scratch("bench-retrieve-") as work, embedded() as server:
        root = work / "bench"
        write_file(root / "big.bin", size)
        url = f"{server.url}/bench_retrieve"
        async with connect(url) as db:
            start = time.perf_counter()
            deal_size = 1 << max(size * 2, 1 << 20).bit_length()  # one chunk holds the whole file
            prep_id = await prepare(db, pipeline_config(url, work), root, deal_size)
            index_cid = (await db[models.SCANNING].find_one({"_id": prep_id}))["indexCid"]
            gen = await db[models.GENERATION].find_one({"preparationId": prep_id})
            print(f"prepared a {size} byte file in {time.perf_counter() - start:.1f} s")

            port = free_port()
            config_file = work / "config.toml"
            config_file.write_text(f'[connection]\ndatabase = "{url}"\n[database]\nenabled = false\n'
                                   f'[http_hosting_service]\nport = {port}\ncar_dir = "{work / "cars"}"\n')
            runner = subprocess.Popen([sys.executable, "-c", "from cli.main import main; main()", "--config",
                                       str(config_file), "run", "hosting"], cwd=REPO, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
            try:
                base = f"http://127.0.0.1:{port}"
                await asyncio.to_thread(wait_http, f"{base}/piece/{gen['pieceCid']}")
                await compare(base, work, index_cid, gen["carPath"], size, args.runs)
            finally:
                runner.terminate()
                runner.wait(30)


async def compare(base: str, work: Path, index_cid: str, car_path: str, size: int, runs: int) -> None:
    best: dict[str, float] = {}
    for attempt in range(runs):
        line = []
        seconds, _ = await timed(hash_car, car_path)
        best["floor"] = min(best.get("floor", seconds), seconds)
        line.append(f"read+sha256 CAR {size / seconds / 2**20:.0f} MiB/s")
        for name, methods, function in (("piece", ("piece",), retrieve), ("gateway", ("car",), retrieve),
                                        ("gateway to /dev/null", ("car",), retrieve_to_null),
                                        ("piece to /dev/null", ("piece",), retrieve_to_null)):
            out = work / f"out-{name.replace(' ', '-').replace('/', '')}"
            seconds, got = await timed(function, base, index_cid, methods, out)
            if got != size:
                raise SystemExit(f"{name}: retrieved {got} of {size} bytes")
            shutil.rmtree(out)
            best[name] = min(best.get(name, seconds), seconds)
            line.append(f"{name} {size / seconds / 2**20:.0f} MiB/s")
        print(f"run {attempt + 1}: " + ", ".join(line))
    for name in ("gateway", "piece", "gateway to /dev/null", "piece to /dev/null"):
        ratio = best["floor"] / best[name]
        print(f"best {name}: {size / best[name] / 2**20:.0f} MiB/s = {ratio:.2f} of reading+hashing the CAR "
              f"({size / best['floor'] / 2**20:.0f} MiB/s); target >= 0.5: {'meets' if ratio >= 0.5 else 'misses'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="1GiB", help="size of the file")
    parser.add_argument("--runs", type=int, default=2)
    asyncio.run(main(parser.parse_args()))
