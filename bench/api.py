"""Preparation API under load, on the embedded database.

Seeds 1,000 preparations of 20 chunks plus one of 10,000 chunks and 200,000 file entries (the
documents the scanner and the workers write, inserted directly), starts the preparation API in a
subprocess, then:
  1. open loop: 50 clients each sending one request a second, alternately GET /preparations (a
     random page) and GET /preparation/:id (a random preparation, one time in ten the big one at a
     random chunk page), for 30 s; latency counts from the time a request was due, so a slow
     server cannot hide behind a slowed-down client;
  2. closed loop: every client back to back for a few seconds per endpoint, beside a bare page
     (a trivial aiohttp handler served the same way by the same process) as the baseline.
Targets (open loop): p50 <= 100 ms, p99 <= 1 s, no errors, no timeouts.

    python bench/api.py [--duration 30] [--clients 50] [--files 200000 | --files 1000000]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import time

from common import embedded, free_port, scratch

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from shared import database, models  # noqa: E402

TARGET_P50, TARGET_P99 = 0.100, 1.0
BATCH = 10_000
DB_NAME = "bench_api"


# --- seeding -------------------------------------------------------------------------------------

def chunk(scan: dict, index: int, files: int, rng: random.Random) -> dict:
    doc = models.generation_request(scan, index, files, 900 << 20)
    roll = rng.random()
    if roll < 0.8:
        doc.update(status=models.Status.COMPLETED.value, dataCid=f"bafy{doc['_id']}", pieceCid=f"baga{doc['_id']}",
                   pieceSize=1 << 30, carSize=950 << 20, bytesDone=doc["size"], rate=50 << 20)
    elif roll < 0.85:
        doc.update(status=models.Status.ERROR.value, error="disk full")
    return doc


def being_packed(doc: dict, slot: int) -> None:
    doc.update(status=models.Status.ACTIVE.value, workerId=f"host-{slot // 2}", bytesDone=300 << 20, rate=40 << 20)


async def seed(db, preparations: int, chunks: int, big_chunks: int, files: int) -> tuple[list[str], str]:
    rng = random.Random(7)
    scans, generations, problems = [], [], []
    for i in range(preparations + 1):
        big = i == preparations
        scan = models.scanning_request(f"dataset-{i:05d}", f"/data/dataset-{i:05d}", 1 << 30, 600 << 20, 900 << 20)
        scan.update(status=models.Status.COMPLETED.value, scannedFiles=files if big else chunks * 10,
                    scannedBytes=(big_chunks if big else chunks) * (900 << 20))
        scans.append(scan)
        count = big_chunks if big else chunks
        per_chunk = max(1, files // big_chunks) if big else 10
        generations += [chunk(scan, j, per_chunk, rng) for j in range(count)]
        # A fleet of 9 workers with 2 slots each: 8 chunks of the big preparation and one chunk of
        # every hundredth small one are being packed.
        for j in range(8 if big else 1 if i % 100 == 0 else 0):
            being_packed(generations[-count + j], j)
        problems += [{"generationId": None, "preparationId": scan["_id"], "kind": rng.choice(["error", "skipped"]),
                      "path": f"/data/dataset-{i:05d}/p{k}", "reason": "permission denied"} for k in range(i % 3)]
    await db[models.SCANNING].insert_many(scans)
    await db[models.SCAN_PROBLEMS].insert_many(problems)
    for i in range(0, len(generations), BATCH):
        await db[models.GENERATION].insert_many(generations[i:i + BATCH], ordered=False)
    big_scan, big_chunks_docs = scans[-1], generations[-big_chunks:]
    per_chunk = max(1, files // big_chunks)
    batch = []
    for n in range(files):
        owner = big_chunks_docs[min(n // per_chunk, big_chunks - 1)]
        batch.append({"generationId": owner["_id"], "preparationId": big_scan["_id"], "order": n % per_chunk,
                      "relativePath": f"d{n // 1000:05d}/f{n:07d}.bin", "size": 4096, "mtime": 1.7e9,
                      "start": 0, "end": 4096, "cid": f"bafk{n:07d}"})
        if len(batch) == BATCH:
            await db[models.GENERATION_FILES].insert_many(batch, ordered=False)
            batch = []
    if batch:
        await db[models.GENERATION_FILES].insert_many(batch, ordered=False)
    return [s["_id"] for s in scans[:-1]], big_scan["_id"]


# --- the server (a subprocess, so the load generator does not share its CPU time) --------------

async def serve(url: str, port: int, bare_port: int) -> None:
    from services.preparation import service
    from shared import config as config_module
    from shared.api import serve as serve_app
    from shared.runtime import Runtime, run_together

    config = config_module.parse({"connection": {"database": url}, "database": {"enabled": False}})
    runtime = await Runtime.connect(config)

    async def bare(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    baseline = web.Application()
    baseline.router.add_get("/bare", bare)
    await run_together(serve_app(service.app(runtime), "127.0.0.1", port),
                       serve_app(baseline, "127.0.0.1", bare_port))


def start_server(url: str, port: int, bare_port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--serve", url, str(port), str(bare_port)],
                            start_new_session=True)


async def wait_ready(session: aiohttp.ClientSession, urls: list[str], process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    for url in urls:
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the API process exited with code {process.returncode}")
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not answer within 120 s")
            await asyncio.sleep(0.2)


# --- load ---------------------------------------------------------------------------------------

class Targets:
    """Which URL a client asks for next: a random page of the list, or a random preparation."""

    def __init__(self, base: str, ids: list[str], big: str, big_chunks: int):
        self.base, self.ids, self.big, self.big_chunks = base, ids, big, big_chunks
        self.rng = random.Random(11)

    def listing(self) -> str:
        pages = (len(self.ids) + 1 + 19) // 20
        return f"{self.base}/preparations?offset={self.rng.randrange(pages) * 20}"

    def details(self) -> str:
        if self.rng.random() < 0.1:
            return f"{self.base}/preparation/{self.big}?offset={self.rng.randrange(self.big_chunks // 20) * 20}"
        return f"{self.base}/preparation/{self.rng.choice(self.ids)}"


class Results:
    def __init__(self):
        self.latencies: dict[str, list[float]] = {}
        self.errors: list[str] = []
        self.timeouts = 0

    def add(self, kind: str, seconds: float) -> None:
        self.latencies.setdefault(kind, []).append(seconds)


async def fetch(session: aiohttp.ClientSession, url: str, timeout: float, results: Results, kind: str,
                due: float) -> None:
    try:
        async with asyncio.timeout(timeout):
            async with session.get(url) as response:
                await response.read()
                if response.status != 200:
                    results.errors.append(f"{response.status} {url}")
                    return
    except TimeoutError:
        results.timeouts += 1
        return
    except aiohttp.ClientError as exc:
        results.errors.append(f"{type(exc).__name__} {url}")
        return
    results.add(kind, time.perf_counter() - due)


async def open_loop(session, targets: Targets, clients: int, duration: float, timeout: float) -> Results:
    results = Results()
    start = time.perf_counter() + 0.5
    tasks = []

    async def client(c: int) -> None:
        for k in range(int(duration)):
            due = start + k + c / clients  # clients spread over the second
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            kind, url = ("list", targets.listing()) if (k + c) % 2 == 0 else ("details", targets.details())
            # Open loop: the next request is sent on time whether or not this one has answered.
            tasks.append(asyncio.create_task(fetch(session, url, timeout, results, kind, due)))

    await asyncio.gather(*(client(c) for c in range(clients)))
    await asyncio.gather(*tasks)
    return results


async def closed_loop(session, next_url, clients: int, duration: float, timeout: float) -> tuple[float, Results]:
    results = Results()
    stop = time.perf_counter() + duration

    async def client() -> None:
        while time.perf_counter() < stop:
            started = time.perf_counter()
            await fetch(session, next_url(), timeout, results, "closed", started)

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    done = sum(len(v) for v in results.latencies.values())
    return done / (time.perf_counter() - start), results


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def report_open(results: Results) -> bool:
    every = [v for values in results.latencies.values() for v in values]
    for kind, values in sorted(results.latencies.items()) + [("all", every)]:
        print(f"  {kind:8s} {len(values):6d} ok   p50 {percentile(values, 0.5) * 1000:8.1f} ms   "
              f"p99 {percentile(values, 0.99) * 1000:8.1f} ms   max {max(values, default=0) * 1000:8.1f} ms")
    print(f"  errors {len(results.errors)}   timeouts {results.timeouts}"
          + (f"   first errors: {results.errors[:3]}" if results.errors else ""))
    ok = (percentile(every, 0.5) <= TARGET_P50 and percentile(every, 0.99) <= TARGET_P99
          and not results.errors and not results.timeouts)
    print(f"  targets p50 <= {TARGET_P50 * 1000:.0f} ms, p99 <= {TARGET_P99 * 1000:.0f} ms, 0 errors, 0 timeouts: "
          f"{'met' if ok else 'NOT met'}")
    return ok


async def load(args, ids: list[str], big: str, port: int, bare_port: int, process) -> bool:
    base = f"http://127.0.0.1:{port}"
    connector = aiohttp.TCPConnector(limit=0)  # one connection per outstanding request, as separate clients
    async with aiohttp.ClientSession(connector=connector) as session:
        await wait_ready(session, [f"{base}/preparations", f"http://127.0.0.1:{bare_port}/bare"], process)
        targets = Targets(base, ids, big, args.big_chunks)
        # Warm-up, unmeasured: the database's first reads after the seeding load its pages.
        await closed_loop(session, lambda: targets.listing() if random.random() < 0.5 else targets.details(),
                          4, 3, args.timeout)
        print(f"open loop: {args.clients} clients x 1 request/s for {args.duration:.0f} s "
              f"(timeout {args.timeout:.0f} s)", flush=True)
        ok = report_open(await open_loop(session, targets, args.clients, args.duration, args.timeout))
        print(f"closed loop: {args.clients} clients back to back, {args.closed_duration:.0f} s each", flush=True)
        bare_url = f"http://127.0.0.1:{bare_port}/bare"
        for label, next_url in (("bare page (baseline)", lambda: bare_url),
                                ("GET /preparations", targets.listing),
                                ("GET /preparation/:id", targets.details)):
            rate, results = await closed_loop(session, next_url, args.clients, args.closed_duration, args.timeout)
            every = [v for values in results.latencies.values() for v in values]
            print(f"  {label:22s} {rate:8.1f} req/s   p50 {percentile(every, 0.5) * 1000:8.1f} ms   "
                  f"errors {len(results.errors)}   timeouts {results.timeouts}", flush=True)
        return ok


async def prepare(url: str, args) -> tuple[list[str], str]:
    client = database.client(url)
    db = client[DB_NAME]
    started = time.perf_counter()
    ids, big = await seed(db, args.preparations, args.chunks, args.big_chunks, args.files)
    await database.ensure_indexes(db)
    print(f"seeded {args.preparations} preparations x {args.chunks} chunks + 1 x {args.big_chunks} chunks "
          f"with {args.files} file entries in {time.perf_counter() - started:.1f} s", flush=True)
    await client.close()
    return ids, big


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        try:
            asyncio.run(serve(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
        except KeyboardInterrupt:
            pass  # the way the benchmark stops it
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preparations", type=int, default=1000)
    parser.add_argument("--chunks", type=int, default=20, help="chunks of each small preparation")
    parser.add_argument("--big-chunks", type=int, default=10_000, help="chunks of the big preparation")
    parser.add_argument("--files", type=int, default=200_000, help="file entries of the big preparation")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=30, help="seconds of the open-loop run")
    parser.add_argument("--closed-duration", type=float, default=5, help="seconds of each closed-loop run")
    parser.add_argument("--timeout", type=float, default=10, help="seconds before a request counts as timed out")
    args = parser.parse_args()

    with scratch("bench-api-") as data_dir, embedded(str(data_dir)) as server:
        url = f"{server.url}/{DB_NAME}"
        ids, big = asyncio.run(prepare(url, args))
        port, bare_port = free_port(), free_port()
        process = start_server(url, port, bare_port)
        try:
            asyncio.run(load(args, ids, big, port, bare_port, process))
            return 0
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()


if __name__ == "__main__":
    sys.exit(main())
