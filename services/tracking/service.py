"""The deal tracking module: a tracking round every interval, retried with backoff when it fails."""
from __future__ import annotations

import asyncio
import logging

import aiohttp
from pymongo.errors import PyMongoError

from shared.lotus import LotusClient, LotusError
from services.tracking.tracker import Tracker
from shared.runtime import Runtime

log = logging.getLogger(__name__)

BACKOFF_BASE = 1.0


async def track_forever(tracker: Tracker, interval: float, backoff_base: float = BACKOFF_BASE) -> None:
    failures = 0
    while True:
        try:
            await tracker.round()
            failures = 0
            delay = interval
        except (LotusError, PyMongoError) as exc:
            failures += 1
            delay = min(interval, backoff_base * 2 ** (failures - 1))
            log.warning("tracking round failed (%d in a row), retrying in %.1fs: %s", failures, delay, exc)
        except Exception:  # a bug must not stop tracking for good; the round wrote nothing inconsistent
            failures += 1
            delay = min(interval, backoff_base * 2 ** (failures - 1))
            log.exception("tracking round crashed, retrying in %.1fs", delay)
        await asyncio.sleep(delay)


async def run(runtime: Runtime) -> None:
    connection = runtime.config.connection
    async with aiohttp.ClientSession() as session:
        lotus = LotusClient(session, connection.full_node_api, connection.full_node_token)
        await track_forever(Tracker(runtime.db, lotus), runtime.config.deal_tracking_service.interval)
