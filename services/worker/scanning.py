"""Running one claimed ScanningRequest: walk the dataset, cut it into chunks, store each chunk as
a GenerationRequest with its files, and checkpoint after every chunk.

Crash safety: the checkpoint names the open chunk's generation id before any document of that chunk
is written, and every such document carries it. A chunk becomes real only when its GenerationRequest
is inserted and the checkpoint moves past it (naming the next open chunk), so a run that starts from
a checkpoint first deletes whatever carries the open id. A worker that finds it no longer owns the
request (paused, removed, or handed to another worker) deletes what it wrote for its open chunk and
stops; each run opens chunks under fresh ids, so it never deletes another run's documents.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.worker.chunker import CLOSE, Chunker, Entry, Unplaceable
from services.worker.walk import Problem, walk
from shared import jobs, metrics, models
from shared.models import Status

log = logging.getLogger(__name__)

BATCH = 1000  # walk entries per thread hop
INSERT_BATCH = 5000  # documents per insert_many: the embedded server stores bigger batches faster
CHECK_INTERVAL = 2.0  # seconds between checks that the request is still ours


class Lost(Exception):
    """The request was paused, removed or reassigned while we worked on it."""


class ScanRun:
    def __init__(self, db: AsyncDatabase, request: dict, worker_id: str):
        self.db = db
        self.request = request
        self.id = request["_id"]
        self.worker_id = worker_id
        checkpoint = request["checkpoint"]
        self.index = checkpoint["index"]
        self.after = tuple(checkpoint["after"]) if checkpoint["after"] else None
        self.offset = checkpoint["offset"]
        self.files = request.get("scannedFiles", 0)
        self.bytes = request.get("scannedBytes", 0)
        self.counted = (self.files, self.bytes)  # what the metrics have of this request's committed progress
        self.chunker = Chunker(request["minSize"], request["maxSize"], car_limit=request["dealSize"] * 127 // 128)
        self.pending: asyncio.Task | None = None
        self.open_chunk(models.new_id())
        self.next_check = time.monotonic() + CHECK_INTERVAL

    def open_chunk(self, generation_id: str) -> None:
        self.generation_id = generation_id
        self.file_docs: list[dict] = []
        self.problem_docs: list[dict] = []
        self.chunk_files = 0
        self.chunk_bytes = 0
        self.last: Entry | None = None

    async def run(self) -> None:
        root = self.request["path"]
        if not os.path.isdir(root):
            await jobs.release(self.db, models.SCANNING, self.id, self.worker_id,
                               status=Status.ERROR.value, error=f"dataset path is not a readable directory: {root}")
            return
        try:
            await self.discard(self.request["checkpoint"].get("open"))
            await self.save_checkpoint(self.generation_id)  # name our open chunk before writing any of it
            walker = walk(root, self.after)
            while batch := await asyncio.to_thread(list, itertools.islice(walker, BATCH)):
                for item in batch:
                    if isinstance(item, Problem):
                        self.problem_docs.append(self.problem_doc(item))
                        continue
                    start = 0
                    if item.components == self.after:  # the last entry placed before the checkpoint
                        start = self.offset
                        if start >= item.size:  # placed whole (an empty file too): not again
                            continue
                    await self.add(item, start)
                if len(self.file_docs) + len(self.problem_docs) >= INSERT_BATCH:
                    await self.flush()
                await self.check()
            if self.chunker.count:
                await self.close_chunk()
            await self.complete()
        except Lost:
            await asyncio.gather(self.settle(), return_exceptions=True)  # nothing may land after the discard
            await self.discard(self.generation_id)
            log.info("scan of %s stopped: no longer ours", self.id)
        finally:
            if self.pending is not None:  # stopped by an error or a cancellation
                self.pending.cancel()
                await asyncio.gather(self.pending, return_exceptions=True)

    async def add(self, item, start: int) -> None:
        """Place item[start:] in the open chunk and the chunks after it."""
        for placed in self.chunker.add(item, start):
            if placed is CLOSE:
                await self.close_chunk()
            elif isinstance(placed, Unplaceable):
                self.problem_docs.append(self.problem_doc(Problem(
                    "error", item.path, "its path is too deep for the deal size: the directory "
                    "nodes alone would outgrow a piece (use a larger dealSize)")))
            else:
                self.place(placed)

    def place(self, entry: Entry) -> None:
        if entry.start == 0 and not entry.file.directory:
            self.files += 1
        self.bytes += entry.end - entry.start
        self.chunk_bytes += entry.end - entry.start
        # Absolute path and name are derived from the dataset root: every byte stored per file costs
        # scan speed on the embedded server.
        self.file_docs.append({
            "generationId": self.generation_id,
            "preparationId": self.id,
            "order": self.chunk_files,
            "relativePath": entry.file.relative_path,
            "size": entry.file.size,
            "mtime": entry.file.mtime,
            "start": entry.start,
            "end": entry.end,
            **({"directory": True} if entry.file.directory else {}),
        })
        self.chunk_files += 1
        self.last = entry

    def problem_doc(self, problem: Problem) -> dict:
        return {"generationId": self.generation_id, "preparationId": self.id,
                "kind": problem.kind, "path": problem.path, "reason": problem.reason}

    async def flush(self, wait: bool = False) -> None:
        """Send the buffered documents. The insert runs while the walk goes on (the database
        server has a core of its own); the next flush waits for it first, and a chunk's commit
        passes wait=True, so no chunk is committed before its files are stored."""
        await self.settle()
        batches = [(models.GENERATION_FILES, self.file_docs), (models.SCAN_PROBLEMS, self.problem_docs)]
        self.file_docs, self.problem_docs = [], []
        self.pending = asyncio.create_task(self.insert(batches))
        if wait:
            await self.settle()

    async def insert(self, batches: list[tuple[str, list[dict]]]) -> None:
        for collection, docs in batches:
            if docs:
                await self.db[collection].insert_many(docs, ordered=False)

    async def settle(self) -> None:
        pending, self.pending = self.pending, None
        if pending is not None:
            await pending

    async def check(self) -> None:
        if time.monotonic() >= self.next_check:
            self.next_check = time.monotonic() + CHECK_INTERVAL
            if not await jobs.still_ours(self.db, models.SCANNING, self.id, self.worker_id):
                raise Lost()

    def checkpoint(self, open_id: str | None) -> dict:
        return {
            "checkpoint": {"index": self.index, "after": list(self.last.file.components) if self.last else
                           (list(self.after) if self.after else None),
                           "offset": self.last.end if self.last else self.offset, "open": open_id},
            "scannedFiles": self.files,
            "scannedBytes": self.bytes,
        }

    async def save_checkpoint(self, open_id: str | None, **fields) -> None:
        result = await self.db[models.SCANNING].update_one(
            {"_id": self.id, "workerId": self.worker_id, "status": Status.ACTIVE.value},
            {"$set": {**self.checkpoint(open_id), **fields}})
        if result.matched_count != 1:
            raise Lost()
        metrics.SCANNED_FILES.inc(self.files - self.counted[0])
        metrics.SCANNED_BYTES.inc(self.bytes - self.counted[1])
        self.counted = (self.files, self.bytes)

    async def close_chunk(self) -> None:
        await self.flush(wait=True)
        generation = models.generation_request(self.request, self.index, self.chunk_files, self.chunk_bytes)
        generation["_id"] = self.generation_id
        try:
            await self.db[models.GENERATION].insert_one(generation)
        except DuplicateKeyError:
            raise Lost() from None  # another worker already wrote this chunk
        self.index += 1
        next_id = models.new_id()
        await self.save_checkpoint(next_id)
        self.after = tuple(self.last.file.components)
        self.offset = self.last.end
        self.open_chunk(next_id)

    async def complete(self) -> None:
        await self.flush(wait=True)
        await self.save_checkpoint(None, status=Status.COMPLETED.value, workerId=None,
                                   scannedBy=self.worker_id, scanCompletedAt=models.now())
        await requeue_if_rescan_asked(self.db, self.id)
        log.info("scan of %s completed: %d files, %d bytes, %d chunks", self.id, self.files, self.bytes, self.index)

    async def discard(self, generation_id: str | None) -> None:
        """Delete everything of an unfinished chunk."""
        if generation_id is None:
            return
        await self.db[models.GENERATION].delete_one({"_id": generation_id})
        await self.db[models.GENERATION_FILES].delete_many({"generationId": generation_id})
        await self.db[models.SCAN_PROBLEMS].delete_many({"generationId": generation_id})


async def requeue_if_rescan_asked(db: AsyncDatabase, preparation_id: str) -> None:
    """A rescan (or the refresh of changed files) asked while the scan ran waits for it to end:
    then the request is a job again (services/worker/rescan.py)."""
    await db[models.SCANNING].update_one(
        {"_id": preparation_id, "status": Status.COMPLETED.value, "state": "active", "rescan": {"$exists": True}},
        {"$set": {"status": Status.ACTIVE.value}})


async def scan(db: AsyncDatabase, request: dict, worker_id: str) -> None:
    await ScanRun(db, request, worker_id).run()
