"""Running one claimed ScanningRequest: walk the dataset, cut it into chunks, store each chunk as
a GenerationRequest with its files, and checkpoint after every chunk.

Crash safety: every document written for the open chunk carries its chunk index and generation id.
A chunk becomes real only when its GenerationRequest is inserted and the checkpoint moves past it,
so a run that starts from a checkpoint first deletes everything at or after the checkpoint's index.
A worker that finds it no longer owns the request (paused, removed, or handed to another worker)
deletes what it wrote for the open chunk and stops.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.worker.chunker import Chunker, Entry
from services.worker.walk import Problem, walk
from shared import jobs, models
from shared.models import Status

log = logging.getLogger(__name__)

BATCH = 1000  # documents per insert_many, and walk entries per thread hop
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
        self.chunker = Chunker(request["minSize"], request["maxSize"])
        self.open_chunk()
        self.next_check = time.monotonic() + CHECK_INTERVAL

    def open_chunk(self) -> None:
        self.generation_id = models.new_id()
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
        await self.discard(index_from=self.index)
        try:
            walker = walk(root, self.after)
            while batch := await asyncio.to_thread(list, itertools.islice(walker, BATCH)):
                for item in batch:
                    if isinstance(item, Problem):
                        self.problem_docs.append(self.problem_doc(item))
                        continue
                    start = 0
                    if item.components == self.after:
                        start = self.offset
                        if start >= item.size and item.size:
                            continue
                    for entry, closes in self.chunker.add(item, start):
                        self.place(entry)
                        if closes:
                            await self.close_chunk()
                await self.flush()
                await self.check()
            if self.chunker.count:
                await self.close_chunk()
            await self.complete()
        except Lost:
            await self.discard(generation_id=self.generation_id)
            log.info("scan of %s stopped: no longer ours", self.id)

    def place(self, entry: Entry) -> None:
        file = entry.file
        if entry.start == 0:
            self.files += 1
        self.bytes += entry.end - entry.start
        self.chunk_bytes += entry.end - entry.start
        self.file_docs.append({
            "generationId": self.generation_id,
            "preparationId": self.id,
            "chunkIndex": self.index,
            "order": self.chunk_files,
            "path": file.path,
            "relativePath": file.relative_path,
            "name": file.components[-1],
            "size": file.size,
            "mtime": file.mtime,
            "start": entry.start,
            "end": entry.end,
        })
        self.chunk_files += 1
        self.last = entry

    def problem_doc(self, problem: Problem) -> dict:
        return {"generationId": self.generation_id, "preparationId": self.id, "chunkIndex": self.index,
                "kind": problem.kind, "path": problem.path, "reason": problem.reason}

    async def flush(self) -> None:
        if self.file_docs:
            await self.db[models.GENERATION_FILES].insert_many(self.file_docs, ordered=False)
            self.file_docs = []
        if self.problem_docs:
            await self.db[models.SCAN_PROBLEMS].insert_many(self.problem_docs, ordered=False)
            self.problem_docs = []

    async def check(self) -> None:
        if time.monotonic() >= self.next_check:
            self.next_check = time.monotonic() + CHECK_INTERVAL
            if not await jobs.still_ours(self.db, models.SCANNING, self.id, self.worker_id):
                raise Lost()

    def checkpoint(self) -> dict:
        return {
            "checkpoint": {"index": self.index, "after": list(self.last.file.components) if self.last else
                           (list(self.after) if self.after else None),
                           "offset": self.last.end if self.last else self.offset},
            "scannedFiles": self.files,
            "scannedBytes": self.bytes,
        }

    async def close_chunk(self) -> None:
        await self.flush()
        generation = models.generation_request(self.request, self.index, self.chunk_files, self.chunk_bytes)
        generation["_id"] = self.generation_id
        try:
            await self.db[models.GENERATION].insert_one(generation)
        except DuplicateKeyError:
            raise Lost() from None  # another worker already wrote this chunk
        self.index += 1
        result = await self.db[models.SCANNING].update_one(
            {"_id": self.id, "workerId": self.worker_id, "status": Status.ACTIVE.value},
            {"$set": self.checkpoint()})
        if result.matched_count != 1:
            raise Lost()
        self.after = tuple(self.last.file.components)
        self.offset = self.last.end
        self.open_chunk()

    async def complete(self) -> None:
        await self.flush()
        result = await self.db[models.SCANNING].update_one(
            {"_id": self.id, "workerId": self.worker_id, "status": Status.ACTIVE.value},
            {"$set": {**self.checkpoint(), "status": Status.COMPLETED.value, "workerId": None,
                      "scannedBy": self.worker_id, "scanCompletedAt": models.now()}})
        if result.matched_count != 1:
            raise Lost()
        log.info("scan of %s completed: %d files, %d bytes, %d chunks", self.id, self.files, self.bytes, self.index)

    async def discard(self, index_from: int | None = None, generation_id: str | None = None) -> None:
        """Delete chunk documents at or past an index, or those of one unfinished chunk."""
        if generation_id is not None:
            query = {"generationId": generation_id}
            await self.db[models.GENERATION].delete_one({"_id": generation_id})
        else:
            query = {"preparationId": self.id, "chunkIndex": {"$gte": index_from}}
            await self.db[models.GENERATION].delete_many({"preparationId": self.id, "index": {"$gte": index_from}})
        await self.db[models.GENERATION_FILES].delete_many(query)
        await self.db[models.SCAN_PROBLEMS].delete_many(query)


async def scan(db: AsyncDatabase, request: dict, worker_id: str) -> None:
    await ScanRun(db, request, worker_id).run()
