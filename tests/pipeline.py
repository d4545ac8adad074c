"""Preparing a dataset the way a running suite does it, in-process: a ScanningRequest as the
preparation API stores it, then the real worker (its claim loop, `parallelism` slots, the scanner
and CAR generation) until every chunk is a CAR. What the hosting, index, bundle and retrieval tests
serve is therefore real output: real chunk boundaries, split files, empty files and directories."""
from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

from services.worker.generation import GenerationRun
from services.worker.scanning import ScanRun
from services.worker.worker import Worker
from shared import jobs, models

# Generous: the suite shares a loaded 2-core machine; polling returns as soon as work is done.
BUDGET = 120.0


@dataclass
class Prepared:
    id: str
    name: str
    chunks: list[dict]  # the GenerationRequest documents, by index


def write_tree(root: Path, files: dict[str, bytes], empty_dirs: tuple[str, ...] = ()) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for rel in empty_dirs:
        (root / rel).mkdir(parents=True, exist_ok=True)


def snapshot(root: Path) -> tuple[dict[str, bytes], list[str]]:
    """(every file with its bytes, every directory) under root, by relative path."""
    files, dirs = {}, []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_dir():
            dirs.append(rel)
        else:
            files[rel] = path.read_bytes()
    return files, dirs


async def insert_request(db, root: Path, name: str, deal_size: int, min_size: int, max_size: int) -> dict:
    """The ScanningRequest `POST /preparation` stores (its validation is tested on the API)."""
    scan = models.scanning_request(name, str(root.resolve()), deal_size, min_size, max_size)
    await db[models.SCANNING].insert_one(scan)
    return scan


async def chunks_of(db, preparation_id: str) -> list[dict]:
    return await db[models.GENERATION].find({"preparationId": preparation_id}).sort("index", 1).to_list(None)


async def run_worker_until_done(db, config, preparation_ids: list[str], budget: float = BUDGET) -> None:
    """A real Worker runs until every scan and chunk of these preparations is completed; a scan or
    chunk error fails at once with its message."""
    task = asyncio.create_task(Worker(db, config).run())
    deadline = time.monotonic() + budget
    try:
        while True:
            if task.done():
                task.result()
                raise AssertionError("the worker stopped on its own")
            scans = await db[models.SCANNING].find({"_id": {"$in": preparation_ids}}).to_list(None)
            chunks = await db[models.GENERATION].find({"preparationId": {"$in": preparation_ids}}).to_list(None)
            failed = [d for d in scans + chunks if d["status"] == models.Status.ERROR.value]
            assert not failed, [d.get("error") for d in failed]
            if all(s["status"] == models.Status.COMPLETED.value for s in scans) and \
                    all(c["status"] == models.Status.COMPLETED.value for c in chunks):
                return
            assert time.monotonic() < deadline, f"the worker did not finish within {budget}s"
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def prepare(db, config, root: Path, name: str, deal_size: int, min_size: int, max_size: int) -> Prepared:
    """Scan `root` and pack every chunk with the real worker."""
    scan = await insert_request(db, root, name, deal_size, min_size, max_size)
    await run_worker_until_done(db, config, [scan["_id"]])
    return Prepared(scan["_id"], name, await chunks_of(db, scan["_id"]))


async def prepare_partly(db, config, root: Path, name: str, deal_size: int, min_size: int, max_size: int,
                         packed: int) -> Prepared:
    """Scanned completely, but only the first `packed` chunks made into CARs: what the indexer sees
    while a worker is still busy. The scanner and generator are the worker's own, run one job at a
    time so the test decides where to stop."""
    scan = await insert_request(db, root, name, deal_size, min_size, max_size)
    job = await jobs.claim(db, models.SCANNING, "scanner")
    await ScanRun(db, job, "scanner").run()
    for _ in range(packed):
        job = await jobs.claim(db, models.GENERATION, "generator", sort=[("index", 1)])
        await GenerationRun(db, job, "generator", os.path.abspath(config.deal_preparation_worker.out_dir)).run()
    return Prepared(scan["_id"], name, await chunks_of(db, scan["_id"]))
