"""Converting a completed chunk between a CAR file and its layout (ChunkConversion jobs).

`materialize` writes the CAR of an inline chunk (for providers that want a file); `prune` turns a
chunk with a CAR into an inline one and deletes the CAR, once its deals are active at `minActive`
providers or more. Either way the chunk is packed again from its source files in the other mode
and switched over only when that gives the same data CID, piece CID and CAR size: what is served
never changes, and a source that changed since the scan keeps the chunk as it was (the job fails
naming the file). The chunk stays servable throughout: the hosting service prefers a CAR file when
there is one, so the CAR is in place before a chunk stops being inline, and a pruned chunk is
inline before its CAR goes.
"""
from __future__ import annotations

import asyncio
import logging
import os
import threading

from pymongo.asynchronous.database import AsyncDatabase

from services.worker import generation, inline
from shared import jobs, models, stats
from shared.config import Config
from shared.ipld import layout as layoutlib
from shared.ipld.pack import PackCancelled, SourceChanged, SourceUnreadable, pack_chunk
from shared.models import Status

log = logging.getLogger(__name__)

ACTIONS = ("materialize", "prune")


def handler(config: Config):
    out_dir = os.path.abspath(config.deal_preparation_worker.out_dir)
    threads = generation.commp_threads(config.deal_preparation_worker.parallelism)

    async def convert(db: AsyncDatabase, job: dict, worker_id: str) -> None:
        await Conversion(db, job, worker_id, out_dir, threads).run()

    return convert


class Conversion:
    def __init__(self, db: AsyncDatabase, job: dict, worker_id: str, out_dir: str, commp_threads: int = 1):
        self.db = db
        self.job = job
        self.worker_id = worker_id
        self.out_dir = out_dir
        self.commp_threads = commp_threads
        self.stop = threading.Event()

    async def run(self) -> None:
        chunk = await self.db[models.GENERATION].find_one({"_id": self.job["generationId"]})
        if chunk is None or chunk.get("status") != Status.COMPLETED.value or not chunk.get("dataCid"):
            return await self.done(error="the chunk is not completed")
        if chunk.get("importedCar"):
            return await self.done(error="an imported CAR file has no source files to serve it from")
        want_inline = self.job["action"] == "prune"
        if bool(chunk.get("inline")) == want_inline:
            return await self.done()  # already so: nothing to do
        if want_inline:
            held = (await stats.active_providers(self.db, [chunk["pieceCid"]])).get(chunk["pieceCid"], set())
            if len(held) < int(self.job.get("minActive") or 1):
                return await self.done(error=f"active at {len(held)} providers, fewer than {self.job.get('minActive')}")
        entries, empty_dirs, _ = await generation.chunk_entries(self.db, chunk)
        scan = await self.db[models.SCANNING].find_one({"_id": chunk["preparationId"]}, {"dealSize": 1})
        recorder = layoutlib.Recorder(entries) if want_inline else None
        os.makedirs(self.out_dir, exist_ok=True)
        watcher = asyncio.create_task(self.watch())
        try:
            result = await asyncio.to_thread(
                pack_chunk, entries, self.out_dir, min_piece_size=scan["dealSize"] if scan else None,
                empty_dirs=empty_dirs, should_stop=self.stop.is_set,
                temp_prefix=generation.temp_prefix(self.worker_id), commp_threads=self.commp_threads,
                layout=recorder)
        except PackCancelled:
            return
        except (SourceChanged, SourceUnreadable) as exc:
            return await self.done(error=f"source file changed or unreadable, chunk left as it was: {exc}")
        finally:
            self.stop.set()
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        same = (result.data_cid, result.piece_cid, result.car_size) == (
            chunk["dataCid"], chunk["pieceCid"], int(chunk["carSize"]))
        if not same:
            if result.car_path and result.data_cid != chunk["dataCid"]:
                os.unlink(result.car_path)  # a CAR of other bytes, named for them: nobody's
            return await self.done(error=f"the source files no longer give the same CAR ({result.data_cid}, "
                                         f"{result.piece_cid}): chunk left as it was")
        chunks = self.db[models.GENERATION]
        if want_inline:
            await inline.save_layout(self.db, chunk, chunk["dataCid"], recorder.segments)
            await chunks.update_one({"_id": chunk["_id"]}, {"$set": {
                "inline": True, "carPath": None, "unservable": None, "layout": recorder.stats()}})
            car = os.path.join(self.out_dir, f"{chunk['dataCid']}.car")
            try:
                os.unlink(car)
            except FileNotFoundError:
                pass
            log.info("chunk %s #%d is inline now; removed %s", chunk["name"], chunk["index"], car)
        else:
            await chunks.update_one({"_id": chunk["_id"]}, {"$set": {
                "inline": False, "carPath": result.car_path, "unservable": None, "layout": None}})
            await inline.delete_layout(self.db, chunk["_id"])
            log.info("chunk %s #%d materialized as %s", chunk["name"], chunk["index"], result.car_path)
        await self.done()

    async def watch(self) -> None:
        while not self.stop.is_set():
            await asyncio.sleep(generation.WATCH_INTERVAL)
            try:
                if not await jobs.still_ours(self.db, models.CONVERSIONS, self.job["_id"], self.worker_id):
                    self.stop.set()
            except Exception as exc:  # a database hiccup must not stop the packing
                log.warning("conversion %s: ownership check failed: %s", self.job["_id"], exc)

    async def done(self, error: str | None = None) -> None:
        if error:
            log.warning("conversion %s failed: %s", self.job["_id"], error)
        await jobs.release(self.db, models.CONVERSIONS, self.job["_id"], self.worker_id,
                           status=Status.ERROR.value if error else Status.COMPLETED.value, error=error,
                           completedAt=models.now())
