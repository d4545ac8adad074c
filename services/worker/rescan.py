"""Datasets that change: a rescan, and the refresh of chunks that failed on changed files.

Both are the preparation's ScanningRequest claimed again as a job (`rescan` set on it by `POST
/preparation/:id`): one worker at a time adds chunks at the end of the dataset, with the scan's
checkpoint protocol (services/worker/scanning.py), so a killed worker loses nothing and leaves no
half chunk. A rescan walks the whole dataset again and compares it with what is stored
(services/worker/compare.py): what is new or changed goes into new chunks as the next version of
its path, what is gone gets a tombstone; completed chunks and their deals are never touched.
Run again after a kill, it finds what it already placed stored and unchanged, so it is idempotent.

A chunk that failed because its files changed (`sourceChanged`) is refreshed (services/worker/
refresh.py): rebuilt with the files' new sizes and mtimes, unless it has live deals.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import os

from pymongo.errors import BulkWriteError

from services.worker import refresh
from services.worker.compare import Compare, StoredReader, path_order
from services.worker.scanning import BATCH, INSERT_BATCH, Lost, ScanRun, scan
from services.worker.walk import Problem, walk
from shared import jobs, models
from shared.config import Config
from shared.models import Status, fileversions
from shared.roots import ROOTS_KEY, inside_roots

log = logging.getLogger(__name__)


def handler(config: Config):
    """The worker's scanning job: a first scan, or a rescan; either only inside dataset_roots."""
    roots = config.deal_preparation_service.dataset_roots

    async def run(db, request: dict, worker_id: str) -> None:
        path = os.path.realpath(request["path"])
        if not inside_roots(path, roots):
            # The roots may have changed since the preparation was made: its data is no longer ours to read.
            await jobs.release(db, models.SCANNING, request["_id"], worker_id, status=Status.ERROR.value,
                               error=f"dataset path {request['path']} is outside every {ROOTS_KEY} directory of "
                                     f"this worker's config")
            return
        rescan = request.get("rescan")
        if rescan and (request.get("scanCompletedAt") or rescan.get("walk")):
            await RescanRun(db, request, worker_id).run()
        else:
            await scan(db, request, worker_id)

    return run


class RescanRun(ScanRun):
    def __init__(self, db, request: dict, worker_id: str):
        super().__init__(db, request, worker_id)
        # A rescan walks everything again (comparing makes that idempotent), so a resume point
        # of an earlier scan means nothing to it.
        self.after, self.offset = None, 0
        self.tombstones: list[dict] = []
        self.counts = {"added": 0, "changed": 0, "unchanged": 0, "deleted": 0, "refreshed": 0}
        self.after_close: list = []  # refresh work that waits until every placed chunk is committed
        self.queries = 0

    def place(self, entry) -> None:
        super().place(entry)
        version = getattr(entry.file, "version", 1)
        if version != 1:
            self.file_docs[-1]["version"] = version

    async def run(self) -> None:
        if not os.path.isdir(self.request["path"]):
            await jobs.release(self.db, models.SCANNING, self.id, self.worker_id, status=Status.ERROR.value,
                               error=f"dataset path is not a readable directory: {self.request['path']}")
            return
        try:
            await self.discard(self.request["checkpoint"].get("open"))
            await self.save_checkpoint(self.generation_id)
            while True:
                asked = self.request.get("rescan") or {}
                start_index = self.index
                await refresh.refresh_failed(self)
                if asked.get("walk"):
                    await self.compare_walk()
                if self.chunker.count:
                    await self.close_chunk()
                await self.flush(wait=True)
                await self.flush_tombstones()
                for step in self.after_close:
                    await step()
                self.after_close = []
                changed = self.index > start_index or self.counts["deleted"] or self.counts["refreshed"]
                if await self.finish(asked.get("id"), bool(changed)):
                    return
        except Lost:
            await asyncio.gather(self.settle(), return_exceptions=True)
            await self.discard(self.generation_id)
            log.info("rescan of %s stopped: no longer ours", self.id)
        finally:
            if self.pending is not None:
                self.pending.cancel()
                await asyncio.gather(self.pending, return_exceptions=True)

    async def compare_walk(self) -> None:
        # What the refresh placed must be stored before the comparison reads the stored versions,
        # or it would be placed again.
        await self.flush(wait=True)
        # The problems are those of this walk: the last one's go (their folder may be readable now).
        await self.db[models.SCAN_PROBLEMS].delete_many({"preparationId": {"$eq": self.id}})
        reader = StoredReader(self.db, self.id)
        compare = Compare(reader, self.request["path"])
        try:
            await self.compare_with(compare, walk(self.request["path"], key=path_order))
        finally:
            await reader.close()
        for key, value in compare.counts.items():
            self.counts[key] += value
        self.queries += reader.queries

    async def compare_with(self, compare: Compare, walker) -> None:
        while batch := await asyncio.to_thread(list, itertools.islice(walker, BATCH)):
            await compare.before(batch)
            for item in batch:
                if isinstance(item, Problem):
                    compare.problem(item)
                    self.problem_docs.append(self.problem_doc(item))
                    continue
                placed = compare.walked(item)
                if placed is not None:
                    await self.add(*placed)
            await self.gone(compare)
            if len(self.file_docs) + len(self.problem_docs) >= INSERT_BATCH:
                await self.flush()
            await self.check()
        while await compare.finish_page():
            await self.gone(compare)
            await self.check()
        await self.gone(compare)

    async def gone(self, compare: Compare) -> None:
        self.tombstones += [fileversions.tombstone(self.id, s.path, s.version + 1) for s in compare.deleted]
        compare.deleted = []
        if len(self.tombstones) >= INSERT_BATCH:
            await self.flush_tombstones()

    async def flush_tombstones(self) -> None:
        """Tombstones are facts about the dataset, not part of a chunk: written at once, each under
        an _id of its own, so a rescan run again writes none twice."""
        docs, self.tombstones = self.tombstones, []
        for i in range(0, len(docs), INSERT_BATCH):
            try:
                await self.db[models.GENERATION_FILES].insert_many(docs[i:i + INSERT_BATCH], ordered=False)
            except BulkWriteError as exc:
                if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                    raise

    async def finish(self, asked: str | None, changed: bool) -> bool:
        """Complete the request unless another rescan was asked meanwhile (then False: go again)."""
        await self.save_checkpoint(self.generation_id)  # still ours; counts the progress
        fields = {**self.checkpoint(None), "status": Status.COMPLETED.value, "workerId": None,
                  "scannedBy": self.worker_id, "scanCompletedAt": models.now(),
                  "lastRescan": {**self.counts, "at": models.now()}}
        if changed:
            fields["indexStale"] = True  # the indexer builds the index of the newest versions
        match = {"_id": self.id, "workerId": self.worker_id, "status": Status.ACTIVE.value}
        if asked:
            match["rescan.id"] = asked
        result = await self.db[models.SCANNING].update_one(match, {"$set": fields, "$unset": {"rescan": ""}})
        if result.matched_count == 1:
            log.info("rescan of %s completed: %s", self.id, self.counts)
            return True
        request = await self.db[models.SCANNING].find_one({"_id": self.id})
        if not request or request.get("workerId") != self.worker_id or request["status"] != Status.ACTIVE.value:
            raise Lost()
        self.request = request
        return False
