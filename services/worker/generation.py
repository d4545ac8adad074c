"""Running one claimed GenerationRequest: build the chunk's CAR and commP in one pass, then save
the data CID, piece CID and size, each file's CID and the block index.

The CAR is written under a temporary name and renamed to `<dataCid>.car` only when complete, so a
killed worker leaves nothing that counts as a result; another worker rebuilds the same bytes.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import os
import threading
import time

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from shared import jobs, metrics, models
from shared.config import Config
from shared.ipld.pack import PackCancelled, PackEntry, PackResult, SourceChanged, pack_chunk
from shared.models import Status

log = logging.getLogger(__name__)

WATCH_INTERVAL = 1.0  # seconds between ownership checks and progress reports
BATCH = 1000
# A temporary CAR untouched this long belongs to a worker that died: a live pack writes every block.
STALE_TEMP_AGE = 3600.0
STALE_SWEEP_INTERVAL = 600.0  # seconds between the worker's looks for them


def remove_stale_temp_files(out_dir: str, max_age: float = STALE_TEMP_AGE) -> int:
    removed = 0
    cutoff = time.time() - max_age
    try:
        entries = list(os.scandir(out_dir))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if entry.name.startswith(".pack-") and entry.name.endswith(".car.tmp"):
            try:
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                pass  # another worker cleaned it first
    if removed:
        log.info("removed %d temporary CAR files left by dead workers in %s", removed, out_dir)
    return removed


class Progress:
    """Source bytes packed so far, written by the packing thread, read by the event loop."""

    def __init__(self) -> None:
        self.done = 0
        self.started = time.monotonic()

    def add(self, count: int) -> None:
        self.done += count

    def rate(self) -> float:
        return self.done / max(time.monotonic() - self.started, 1e-3)


def handler(config: Config):
    out_dir = os.path.abspath(config.deal_preparation_worker.out_dir)

    async def generate(db: AsyncDatabase, job: dict, worker_id: str) -> None:
        await GenerationRun(db, job, worker_id, out_dir).run()

    return generate


class GenerationRun:
    def __init__(self, db: AsyncDatabase, job: dict, worker_id: str, out_dir: str):
        self.db = db
        self.job = job
        self.id = job["_id"]
        self.worker_id = worker_id
        self.out_dir = out_dir
        self.stop = threading.Event()
        self.progress = Progress()

    async def run(self) -> None:
        os.makedirs(self.out_dir, exist_ok=True)
        files = await self.db[models.GENERATION_FILES].find(
            {"generationId": self.id}, {"cid": 0}).sort("order", 1).to_list(None)
        empty_dirs = [f["relativePath"] for f in files if f.get("directory")]
        files = [f for f in files if not f.get("directory")]
        root = self.job["path"]
        entries = [PackEntry(os.path.join(root, f["relativePath"]), f["relativePath"], f["start"], f["end"],
                             f["size"], f["mtime"], root) for f in files]
        file_ids = [f["_id"] for f in files]
        del files
        deal_size = await self.deal_size()
        watcher = asyncio.create_task(self.watch())
        try:
            result = await asyncio.to_thread(
                pack_chunk, entries, self.out_dir, min_piece_size=deal_size, empty_dirs=empty_dirs,
                should_stop=self.stop.is_set,
                collect_blocks=True, progress=self.progress.add)
        except PackCancelled:
            log.info("generation %s stopped: paused, removed or reassigned", self.id)
            return
        except SourceChanged as exc:
            await self.fail(f"file changed since the scan: {exc}")
            return
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                await self.fail(f"disk full while writing to {self.out_dir}: {exc.strerror}")
                return
            raise
        finally:
            self.stop.set()
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        await self.save(result, file_ids)

    async def deal_size(self) -> int | None:
        """Pieces of a dataset are padded to its deal size, unless the CAR outgrew it."""
        scan = await self.db[models.SCANNING].find_one({"_id": self.job["preparationId"]}, {"dealSize": 1})
        return scan["dealSize"] if scan else None

    async def watch(self) -> None:
        while not self.stop.is_set():
            await asyncio.sleep(WATCH_INTERVAL)
            try:
                if not await jobs.still_ours(self.db, models.GENERATION, self.id, self.worker_id):
                    self.stop.set()
                    return
                await self.db[models.GENERATION].update_one(
                    {"_id": self.id, "workerId": self.worker_id},
                    {"$set": {"bytesDone": self.progress.done, "rate": self.progress.rate()}})
            except Exception as exc:  # a database hiccup must not stop the packing
                log.warning("generation %s: progress report failed: %s", self.id, exc)

    async def fail(self, message: str) -> None:
        log.warning("generation %s failed: %s", self.id, message)
        await jobs.release(self.db, models.GENERATION, self.id, self.worker_id,
                           status=Status.ERROR.value, error=message)

    async def save(self, result: PackResult, file_ids: list) -> None:
        # The block index and file CIDs first: a chunk marked completed always has them.
        blocks = self.db[models.CAR_BLOCKS]
        await blocks.delete_many({"generationId": self.id})
        base = {"generationId": self.id, "preparationId": self.job["preparationId"],
                "dataCid": result.data_cid, "pieceCid": result.piece_cid}
        for i in range(0, len(result.blocks), BATCH):
            await blocks.insert_many([{**base, "cid": cid, "offset": offset, "length": length}
                                      for cid, offset, length in result.blocks[i:i + BATCH]], ordered=False)
        files = self.db[models.GENERATION_FILES]
        # By _id: the embedded server scans the collection for any other filter of an update.
        updates = [UpdateOne({"_id": file_id}, {"$set": {"cid": cid}})
                   for file_id, cid in zip(file_ids, result.entry_cids, strict=True)]
        for i in range(0, len(updates), BATCH):
            await files.bulk_write(updates[i:i + BATCH], ordered=False)
        saved = await jobs.release(
            self.db, models.GENERATION, self.id, self.worker_id,
            status=Status.COMPLETED.value, dataCid=result.data_cid, pieceCid=result.piece_cid,
            pieceSize=result.piece_size, carSize=result.car_size, carPath=result.car_path,
            bytesDone=self.job["size"], rate=self.progress.rate(), completedAt=models.now(), error=None)
        if saved:
            metrics.PACKED_CHUNKS.inc()
            metrics.PACKED_BYTES.inc(self.job["size"])
            metrics.CAR_BYTES.inc(result.car_size)
            log.info("chunk %s #%d: %s %s (%d bytes)", self.job["name"], self.job["index"], result.data_cid,
                     result.piece_cid, result.car_size)
        elif await self.db[models.GENERATION].find_one({"_id": self.id}, {"_id": 1}) is None:
            # Removed while we saved: nothing else will delete the block index we just wrote.
            await blocks.delete_many({"generationId": self.id})
            log.info("generation %s was removed while it was being saved", self.id)
        else:
            log.info("generation %s finished after it was taken from us; the CAR stays valid", self.id)
