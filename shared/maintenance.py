"""The periodic task that hands the jobs of workers whose health expired back to the pool.

It runs wherever claimed jobs run (beside the preparation service and beside each replicator),
so a dead worker's jobs come back even where no preparation service is started. Several copies
running against one database do no harm: each round only unassigns jobs of workers already gone.
"""
import asyncio
import logging
import time

from pymongo.asynchronous.database import AsyncDatabase

from shared import database, jobs

log = logging.getLogger(__name__)


async def run(db: AsyncDatabase, worker_timeout: float, interval: float) -> None:
    # While the database is away, live workers cannot report either: silence then says nothing
    # about them. Until they have had worker_timeout to report again, no job is taken from anyone
    # (it would only make a live worker drop and redo its work).
    judge_after = 0.0
    while True:
        try:
            if time.monotonic() >= judge_after:
                await jobs.release_expired(db, worker_timeout)
            else:
                await db.command("ping")
        except database.UNAVAILABLE as exc:
            if time.monotonic() >= judge_after:
                log.warning("maintenance paused, the database is unavailable: %s", str(exc).split(",")[0])
            judge_after = time.monotonic() + worker_timeout
        except Exception as exc:  # try again next round
            log.warning("maintenance round failed: %s", exc)
        await asyncio.sleep(interval)
