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

from services.worker import inline
from shared import jobs, metrics, models
from shared.config import Config
from shared.ipld import commp_threads as commp_threads_module
from shared.ipld import layout as layoutlib
from shared.ipld.pack import PackCancelled, PackEntry, PackResult, SourceChanged, SourceUnreadable, pack_chunk
from shared.models import Status

log = logging.getLogger(__name__)

WATCH_INTERVAL = 1.0  # seconds between ownership checks and progress reports
BATCH = 5000  # documents per bulk write
# A temporary CAR is named for the worker writing it (`.pack-<workerId>-<random>.car.tmp`), so one
# whose worker is no longer live is removed as soon as a worker starts or a chunk is retried. One
# without an owner in its name (older versions) goes once untouched this long.
TEMP_PREFIX = ".pack-"
TEMP_SUFFIX = ".car.tmp"
STALE_TEMP_AGE = 3600.0
STALE_SWEEP_INTERVAL = 60.0  # seconds between the worker's looks for them


def temp_prefix(worker_id: str) -> str:
    return f"{TEMP_PREFIX}{worker_id}-"


def temp_owner(name: str) -> str | None:
    """The worker id in a temporary CAR's name (mkstemp adds 8 characters, none of them '-')."""
    if not (name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)):
        return None
    owner, dash, random = name[len(TEMP_PREFIX):-len(TEMP_SUFFIX)].rpartition("-")
    return owner if dash and owner and len(random) == 8 else None


def remove_stale_temp_files(out_dir: str, max_age: float = STALE_TEMP_AGE, live: set[str] | None = None) -> int:
    """Delete the temporary CARs of workers not in `live` (all owners count as live when it is
    None), and those without an owner once older than max_age."""
    removed = 0
    cutoff = time.time() - max_age
    try:
        entries = list(os.scandir(out_dir))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if entry.name.startswith(TEMP_PREFIX) and entry.name.endswith(TEMP_SUFFIX):
            owner = temp_owner(entry.name)
            try:
                if (owner is not None and live is not None and owner not in live) or \
                        (owner is None and entry.stat().st_mtime < cutoff):
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                pass  # another worker cleaned it first
    if removed:
        log.info("removed %d temporary CAR files left by dead workers in %s", removed, out_dir)
    return removed


async def remove_orphan_temp_files(db: AsyncDatabase, out_dir: str, worker_timeout: float) -> int:
    """Delete the temporary CARs that no live worker owns (see jobs.live_workers)."""
    live = await jobs.live_workers(db, worker_timeout)
    return await asyncio.to_thread(remove_stale_temp_files, out_dir, STALE_TEMP_AGE, live)


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
    worker_timeout = config.deal_preparation_service.worker_timeout
    threads = commp_threads(config.deal_preparation_worker.parallelism)

    async def generate(db: AsyncDatabase, job: dict, worker_id: str) -> None:
        await GenerationRun(db, job, worker_id, out_dir, worker_timeout, threads).run()

    return generate


def commp_threads(parallelism: int) -> int:
    """commP threads per CAR: a pack keeps two cores busy (reading and hashing the CIDs, commP),
    so each of `parallelism` packs gets the cores left beyond those for commP."""
    return max(1, commp_threads_module.cores() // max(1, parallelism) - 1)


class GenerationRun:
    def __init__(self, db: AsyncDatabase, job: dict, worker_id: str, out_dir: str, worker_timeout: float = 30.0,
                 commp_threads: int = 1):
        self.db = db
        self.job = job
        self.id = job["_id"]
        self.worker_id = worker_id
        self.out_dir = out_dir
        self.worker_timeout = worker_timeout  # after which a silent worker's temporary CAR is garbage
        self.commp_threads = commp_threads
        self.stop = threading.Event()
        self.progress = Progress()

    async def run(self) -> None:
        os.makedirs(self.out_dir, exist_ok=True)
        if self.job.get("attempts", 1) > 1:
            # A retry: the worker that had this chunk may have died mid-CAR and left its temporary
            # file, up to a deal size, which nobody else would remove before a restart.
            await remove_orphan_temp_files(self.db, self.out_dir, self.worker_timeout)
        entries, empty_dirs, file_ids = await chunk_entries(self.db, self.job)
        deal_size, inline_chunk = await self.settings()
        # An inline chunk's CAR is described, not written (shared/ipld/layout.py).
        recorder = layoutlib.Recorder(entries) if inline_chunk else None
        watcher = asyncio.create_task(self.watch())
        try:
            result = await asyncio.to_thread(
                pack_chunk, entries, self.out_dir, min_piece_size=deal_size, empty_dirs=empty_dirs,
                should_stop=self.stop.is_set, temp_prefix=temp_prefix(self.worker_id),
                collect_blocks=True, progress=self.progress.add, commp_threads=self.commp_threads, layout=recorder)
        except PackCancelled:
            log.info("generation %s stopped: paused, removed or reassigned", self.id)
            return
        except SourceChanged as exc:
            # Resuming refreshes the chunk from the files as they are now (services/worker/refresh.py).
            await self.fail(f"file changed since the scan: {exc}", sourceChanged=True)
            return
        except SourceUnreadable as exc:
            await self.fail(f"source file unreadable: {exc}")
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
        await self.save(result, file_ids, recorder)

    async def settings(self) -> tuple[int | None, bool]:
        """The preparation's deal size (pieces are padded to it, unless the CAR outgrew it) and
        whether it is inline."""
        scan = await self.db[models.SCANNING].find_one({"_id": self.job["preparationId"]},
                                                       {"dealSize": 1, "inline": 1})
        return (scan["dealSize"], bool(scan.get("inline"))) if scan else (None, False)

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

    async def fail(self, message: str, **fields) -> None:
        log.warning("generation %s failed: %s", self.id, message)
        await jobs.release(self.db, models.GENERATION, self.id, self.worker_id,
                           status=Status.ERROR.value, error=message, **fields)

    async def save(self, result: PackResult, file_ids: list, recorder: layoutlib.Recorder | None = None) -> None:
        # The block index, file CIDs and layout first: a chunk marked completed always has them.
        if recorder is not None:
            await inline.save_layout(self.db, self.job, result.data_cid, recorder.segments)
        blocks = self.db[models.CAR_BLOCKS]
        await blocks.delete_many({"generationId": self.id})
        base = {"generationId": self.id, "preparationId": self.job["preparationId"],
                "dataCid": result.data_cid, "pieceCid": result.piece_cid}
        for i in range(0, len(result.blocks), BATCH):
            await blocks.insert_many([{**base, "cid": cid, "offset": offset, "length": length}
                                      for cid, offset, length in result.blocks[i:i + BATCH]], ordered=False)
        files = self.db[models.GENERATION_FILES]
        # By _id: the embedded server scans the collection for any other filter of an update.
        # With each file's CAR span, which the dataset index needs and would otherwise read back.
        updates = [UpdateOne({"_id": file_id}, {"$set": {"cid": cid, "carOffset": span[0], "carLength": span[1]}})
                   for file_id, cid, span in zip(file_ids, result.entry_cids, result.entry_spans, strict=True)]
        for i in range(0, len(updates), BATCH):
            await files.bulk_write(updates[i:i + BATCH], ordered=False)
        saved = await jobs.release(
            self.db, models.GENERATION, self.id, self.worker_id,
            status=Status.COMPLETED.value, dataCid=result.data_cid, pieceCid=result.piece_cid,
            pieceSize=result.piece_size, carSize=result.car_size, carPath=result.car_path or None,
            inline=recorder is not None, unservable=None,
            layout=recorder.stats() if recorder is not None else None,
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
            await inline.delete_layout(self.db, self.id)
            log.info("generation %s was removed while it was being saved", self.id)
        else:
            log.info("generation %s finished after it was taken from us; the CAR stays valid", self.id)


async def chunk_entries(db: AsyncDatabase, job: dict) -> tuple[list[PackEntry], list[str], list]:
    """A chunk's pack entries in order, its empty directories, and the GenerationFile id of each entry."""
    files = await db[models.GENERATION_FILES].find(
        {"generationId": {"$eq": job["_id"]}}, {"cid": 0}, batch_size=10_000).sort("order", 1).to_list(None)
    empty_dirs = [f["relativePath"] for f in files if f.get("directory")]
    files = [f for f in files if not f.get("directory")]
    root = job["path"]
    entries = [PackEntry(os.path.join(root, f["relativePath"]), f["relativePath"], f["start"], f["end"],
                         f["size"], f["mtime"], root) for f in files]
    return entries, empty_dirs, [f["_id"] for f in files]
