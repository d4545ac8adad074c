"""The periodic task that hands the jobs of workers whose health expired back to the pool."""
import asyncio
import logging

from pymongo.asynchronous.database import AsyncDatabase

from shared import jobs

log = logging.getLogger(__name__)


async def run(db: AsyncDatabase, worker_timeout: float, interval: float) -> None:
    while True:
        try:
            await jobs.release_expired(db, worker_timeout)
        except Exception as exc:  # the database may be restarting; try again next round
            log.warning("maintenance round failed: %s", exc)
        await asyncio.sleep(interval)
