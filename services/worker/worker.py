"""The preparation worker: registers with a uuid, reports health, and runs `parallelism` slots that
each claim one job at a time (scanning first, then CAR generation, then conversions between CAR
files and inline chunks)."""
from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from typing import Awaitable, Callable

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from services.worker import conversion, generation, rescan
from shared import database, jobs, models
from shared.config import Config
from shared.models import Status

log = logging.getLogger(__name__)

Handler = Callable[[AsyncDatabase, dict, str], Awaitable[None]]


def job_handlers(config: Config) -> list[tuple[str, Handler]]:
    """(collection, handler) in the order a free slot looks for work."""
    return [(models.SCANNING, rescan.handler(config)), (models.GENERATION, generation.handler(config)),
            (models.CONVERSIONS, conversion.handler(config))]


class Worker:
    def __init__(self, db: AsyncDatabase, config: Config):
        self.db = db
        self.config = config.deal_preparation_worker
        self.worker_timeout = config.deal_preparation_service.worker_timeout
        self.id = str(uuid.uuid4())
        self.handlers = job_handlers(config)
        self.health = {"kind": "worker", "startedAt": models.now(), "slots": self.config.parallelism}

    async def run(self) -> None:
        await self.register()
        log.info("worker %s started with %d slots", self.id, self.config.parallelism)
        stopping = asyncio.Event()
        heartbeat = asyncio.create_task(jobs.heartbeat(self.db, self.id, self.config.heartbeat_interval, stopping,
                                                       **self.health))
        slots = [asyncio.create_task(self.slot()) for _ in range(self.config.parallelism)]
        slots.append(asyncio.create_task(self.sweep_temp_files()))
        try:
            # wait(), unlike gather(), leaves the heartbeat running when this task is cancelled.
            await asyncio.wait([heartbeat, *slots], return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in slots:
                task.cancel()
            await asyncio.gather(*slots, return_exceptions=True)
            stopping.set()
            await asyncio.gather(heartbeat, return_exceptions=True)
            try:
                await self.db[models.HEALTH].delete_one({"_id": self.id})
            except Exception as exc:
                log.warning("could not deregister worker %s: %s", self.id, exc)
            log.info("worker %s stopped", self.id)

    async def register(self) -> None:
        """The first health report, before any claim (the maintenance task releases the jobs of
        unknown workers); a database that is away delays the start, it does not end the worker."""
        for attempt in itertools.count():
            try:
                await jobs.report_health(self.db, self.id, **self.health)
                return
            except database.UNAVAILABLE as exc:
                if attempt == 0:
                    log.warning("worker %s waits for the database: %s", self.id, str(exc).split(",")[0])
                await asyncio.sleep(self.config.poll_interval)

    async def sweep_temp_files(self) -> None:
        """Remove the temporary CARs that no live worker owns: at start, then now and then, since
        a worker of another host killed a moment ago still counts as live at our start."""
        while True:
            try:
                await generation.remove_orphan_temp_files(self.db, self.config.out_dir, self.worker_timeout)
            except (OSError, PyMongoError) as exc:
                log.warning("cannot clean temporary CARs in %s: %s", self.config.out_dir, exc)
            await asyncio.sleep(generation.STALE_SWEEP_INTERVAL)

    async def slot(self) -> None:
        away = False  # the database: said once per outage, not once per poll
        while True:
            try:
                ran = await self.run_one()
                if away:
                    log.info("worker slot: the database is back, resuming")
                away = False
            except Exception as exc:
                if not database.unavailable(exc):
                    log.warning("worker slot: %s", exc)
                elif not away:
                    log.warning("worker slot paused, the database is unavailable: %s", str(exc).split(",")[0])
                    away = True
                ran = False
            if not ran:
                await asyncio.sleep(self.config.poll_interval)

    async def run_one(self) -> bool:
        for collection, handler in self.handlers:
            job = await jobs.claim(self.db, collection, self.id, sort=[("_id", 1)])
            if job is None:
                continue
            try:
                await handler(self.db, job, self.id)
            except Exception as exc:
                if isinstance(exc, PyMongoError):
                    # The database is away: the job itself is fine, so it goes back to the pool as it
                    # is and completes once the database answers again.
                    log.warning("%s %s interrupted (%s); handing it back", collection, job["_id"], exc)
                    await asyncio.shield(self.hand_back(collection, job["_id"]))
                    raise
                # Anything else fails the same way on every retry: handed back as it was, the job
                # would be claimed again at once, forever, ahead of every later job. It becomes an
                # error the user sees; resuming the preparation retries it.
                log.exception("%s %s failed", collection, job["_id"])
                await asyncio.shield(self.hand_back(collection, job["_id"], status=Status.ERROR.value,
                                                    error=f"internal error: {type(exc).__name__}: {exc}"))
            except BaseException:  # cancelled: another worker takes the job up
                await asyncio.shield(self.hand_back(collection, job["_id"]))
                raise
            return True
        return False

    async def hand_back(self, collection: str, job_id: str, **fields) -> None:
        """Unassign a job we stopped working on (optionally changing it), retrying while the
        database is away."""
        delay = 0.5
        while True:
            try:
                await jobs.release(self.db, collection, job_id, self.id, **fields)
                return
            except Exception as exc:
                log.warning("cannot hand back %s %s yet: %s", collection, job_id, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2)  # short: until it is handed back, the job waits
