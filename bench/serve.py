"""Serving a whole piece of an inline chunk (assembled from its layout and the source files) against
serving it from its CAR file, in one run on the embedded database.

The same tree is prepared twice by the real scanner and worker, normally (CAR files) and inline
(layouts only), and two `singularity run hosting` processes serve it on 127.0.0.1: one whose
car_dir holds the CARs, one whose car_dir is empty, so its /piece answers come from the layout.
Each piece is downloaded whole (urllib, 1 MiB reads) from both, alternating, best of --runs; the
ratio is also given for the CAR's span of the piece alone (a Range request), since the zero padding
up to the piece size costs both the same.
Target: the layout at >= 0.7x the CAR file for a chunk of large files; the figure for a chunk of
4,000 small files is reported too.

    .venv/bin/python bench/serve.py [--size 1GiB] [--files 4000] [--file-size 8KiB] [--runs 3]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import urllib.request  # noqa: E402

from bundle import download, free_port  # noqa: E402
from retrieve import wait_http, write_file  # noqa: E402
from services.worker.generation import GenerationRun  # noqa: E402
from services.worker.scanning import ScanRun  # noqa: E402
from shared import config as config_module  # noqa: E402
from shared import database, jobs, models  # noqa: E402
from shared.config import parse_size  # noqa: E402
from shared.embedded import EmbeddedDatabase  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


async def prepare(db, root: Path, out_dir: str, name: str, deal_size: int, inline: bool) -> list[dict]:
    scan = models.scanning_request(name, str(root), deal_size, int(deal_size * 0.6), int(deal_size * 0.9),
                                   inline=inline)
    await db[models.SCANNING].insert_one(scan)
    job = await jobs.claim(db, models.SCANNING, "bench", when={"_id": scan["_id"]})
    await ScanRun(db, job, "bench").run()
    while job := await jobs.claim(db, models.GENERATION, "bench", when={"preparationId": scan["_id"],
                                                                        "status": models.Status.ACTIVE.value}):
        await GenerationRun(db, job, "bench", out_dir).run()
    chunks = await db[models.GENERATION].find({"preparationId": scan["_id"]}).sort("index", 1).to_list(None)
    if not chunks or any(c["status"] != models.Status.COMPLETED.value for c in chunks):
        raise SystemExit(f"{name}: the preparation did not complete: {[c.get('error') for c in chunks]}")
    return chunks


def download_range(url: str, end: int) -> int:
    total = 0
    request = urllib.request.Request(url, headers={"Range": f"bytes=0-{end - 1}"})
    with urllib.request.urlopen(request, timeout=600) as response:
        while chunk := response.read(1 << 20):
            total += len(chunk)
    return total


def small_tree(root: Path, files: int, size: int) -> None:
    rng = random.Random(11)
    for i in range(files):
        directory = root / f"d{i // 100:03d}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{i:05d}.bin").write_bytes(rng.randbytes(size))


def host(work: Path, url: str, car_dir: Path, name: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    config_file = work / f"{name}.toml"
    config_file.write_text(f'[connection]\ndatabase = "{url}"\n[database]\nenabled = false\n'
                           f'[http_hosting_service]\nport = {port}\ncar_dir = "{car_dir}"\n')
    process = subprocess.Popen([sys.executable, "-c", "from cli.main import main; main()", "--config",
                                str(config_file), "run", "hosting"], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    return process, f"http://127.0.0.1:{port}"


async def scenario(server: EmbeddedDatabase, work: Path, label: str, make_tree, runs: int, target: float | None):
    root = work / label / "data"
    make_tree(root)
    url = f"{server.url}/bench_serve_{label}"
    client = database.client(url)
    db = client[database.database_name(url)]
    processes = []
    try:
        await database.ensure_indexes(db)
        cars, empty = work / label / "cars", work / label / "empty"
        empty.mkdir(parents=True)
        data = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        deal_size = 1 << max(data * 10 // 8, 1 << 20).bit_length()  # one chunk holds the whole tree
        normal = await prepare(db, root, str(cars), "normal", deal_size, inline=False)
        inline = await prepare(db, root, str(work / label / "inline-out"), "inline", deal_size, inline=True)
        assert [c["pieceCid"] for c in normal] == [c["pieceCid"] for c in inline]
        layout = inline[0].get("layout") or {}
        from_car, car_base = host(work, url, cars, f"{label}-car")
        from_layout, layout_base = host(work, url, empty, f"{label}-layout")
        processes += [from_car, from_layout]
        piece = normal[0]["pieceCid"]
        for base in (car_base, layout_base):
            await asyncio.to_thread(wait_http, f"{base}/piece/{piece}")
        size, car_size = normal[0]["pieceSize"] // 128 * 127, normal[0]["carSize"]
        best: dict[tuple[str, str], float] = {}
        for _ in range(runs):
            for name, base in (("car", car_base), ("layout", layout_base)):
                for part, fetch, want in (("piece", lambda u: download(u), size),
                                          ("CAR span", lambda u: download_range(u, car_size), car_size)):
                    start = time.perf_counter()
                    got = await asyncio.to_thread(fetch, f"{base}/piece/{piece}")
                    seconds = time.perf_counter() - start
                    if got != want:
                        raise SystemExit(f"{label} {name} {part}: {got} of {want} bytes")
                    best[name, part] = min(best.get((name, part), seconds), seconds)
        print(f"{label}: piece of {size / 2**20:.0f} MiB, CAR of {car_size / 2**20:.1f} MiB "
              f"({data / 2**20:.1f} MiB of data); layout {layout.get('bytes')} B in "
              f"{layout.get('documents')} documents")
        for part, length in (("piece", size), ("CAR span", car_size)):
            ratio = best["car", part] / best["layout", part]
            verdict = "" if target is None else f"; target >= {target}x: {'meets' if ratio >= target else 'misses'}"
            print(f"  {part:<8}: from the CAR file {length / best['car', part] / 2**20:.0f} MiB/s, "
                  f"from the layout {length / best['layout', part] / 2**20:.0f} MiB/s = {ratio:.2f}x{verdict}")
    finally:
        for process in processes:
            process.terminate()
            process.wait(30)
        await client.close()


async def main(args) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    server = EmbeddedDatabase(path="memory", port=free_port())
    server.start()
    try:
        print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        size = parse_size(args.size)
        await scenario(server, work, "large", lambda root: write_file(root / "big.bin", size), args.runs, 0.7)
        file_size = parse_size(args.file_size)
        await scenario(server, work, "small", lambda root: small_tree(root, args.files, file_size), args.runs, None)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="1GiB", help="the large file")
    parser.add_argument("--files", type=int, default=4000, help="small files in the second chunk")
    parser.add_argument("--file-size", default="8KiB")
    parser.add_argument("--runs", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
