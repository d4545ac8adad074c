"""What a running module is given: the configuration and the shared database."""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared import database
from shared.config import Config

log = logging.getLogger(__name__)

STARTUP_PATIENCE = 10.0  # seconds `run` waits for the database before giving up


@dataclass
class Runtime:
    config: Config
    client: AsyncMongoClient
    db: AsyncDatabase

    @classmethod
    async def connect(cls, config: Config, url: str | None = None) -> "Runtime":
        url = url or config.connection.database
        client = database.service_client(url)
        db = client[database.database_name(url)]
        # Operations fail fast (see SERVICE_SELECTION_TIMEOUT_MS); starting is allowed longer, as a
        # database started beside us may still be on its way up.
        deadline, waited = time.monotonic() + STARTUP_PATIENCE, False
        while True:
            try:
                await database.ensure_indexes(db)
                break
            except database.UNAVAILABLE:
                if time.monotonic() >= deadline:
                    await client.close()
                    raise
                if not waited:
                    log.info("waiting for the database at %s", url)
                waited = True
                await asyncio.sleep(0.5)
            except BaseException:
                await client.close()
                raise
        return cls(config, client, db)

    async def close(self) -> None:
        await self.client.close()


async def run_together(*coroutines) -> None:
    """Run until one fails or we are cancelled; then cancel the others and wait for every one to
    finish its cleanup. (asyncio.gather returns as soon as the first child is cancelled, which
    would close the database under the feet of the others' cleanup.)"""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
