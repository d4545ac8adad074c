"""What the benchmarks share: a scratch folder, the embedded database on a free port, a client on
it, and a dataset prepared by the real scanner, worker and indexer.

Each benchmark runs as a script (`python bench/NAME.py`), so this folder is on its path and
`import common` finds this module, which puts the repository on the path for the suite's imports.
"""
from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import AsyncIterator, Iterator

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from shared import config as config_module  # noqa: E402
from shared import database  # noqa: E402
from shared.embedded import EmbeddedDatabase  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def scratch(prefix: str, parent: str | None = None) -> Iterator[Path]:
    """A temporary folder (under `parent`, default the system's), removed afterwards."""
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def embedded(path: str = "memory", port: int | None = None) -> EmbeddedDatabase:
    """The embedded nx-27017, in memory or with its data under `path`, on `port` or a free one:
    `with embedded(...) as server:` starts it and stops it afterwards."""
    return EmbeddedDatabase(path=path, port=port or free_port())


@contextlib.asynccontextmanager
async def connect(url: str) -> AsyncIterator:
    """The database `url` names, with the suite's indexes; its client is closed afterwards."""
    client = database.client(url)
    try:
        db = client[database.database_name(url)]
        await database.ensure_indexes(db)
        yield db
    finally:
        await client.close()


def pipeline_config(url: str, work: Path, **sections) -> config_module.Config:
    """A config on the database at `url` (not started by the suite), CARs under `work/cars`."""
    return config_module.parse({
        "connection": {"database": url}, "database": {"enabled": False},
        "deal_preparation_worker": {"out_dir": str(work / "cars")},
        "http_hosting_service": {"car_dir": str(work / "cars")}, **sections})


async def prepare(db, config, root: Path, deal_size: int) -> str:
    """Scan, pack and index `root` as the preparation "bench" through the real code; its id."""
    from services.indexing.indexer import build_index
    from services.worker.generation import GenerationRun
    from services.worker.scanning import ScanRun
    from shared import jobs, models

    scan = models.scanning_request("bench", str(root), deal_size, int(deal_size * 0.6), int(deal_size * 0.9))
    await db[models.SCANNING].insert_one(scan)
    job = await jobs.claim(db, models.SCANNING, "bench")
    await ScanRun(db, job, "bench").run()
    out_dir = config.deal_preparation_worker.out_dir
    while job := await jobs.claim(db, models.GENERATION, "bench"):
        await GenerationRun(db, job, "bench", out_dir).run()
    if not await build_index(db, config, scan["_id"]):
        raise SystemExit("the preparation did not complete")
    return scan["_id"]


async def timed(function, *args) -> tuple[float, int]:
    """Seconds `function(*args)` takes in a thread (the event loop keeps serving), and its result."""
    start = time.perf_counter()
    size = await asyncio.to_thread(function, *args)
    return time.perf_counter() - start, size


async def best_of(label: str, fn, repeat: int = 3, width: int = 56) -> float:
    """The fastest of `repeat` runs of the coroutine function `fn`, printed beside `label`."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        await fn()
        best = min(best, time.perf_counter() - start)
    print(f"{label:<{width}} {best * 1000:9.1f} ms")
    return best
