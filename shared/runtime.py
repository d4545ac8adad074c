"""What a running module is given: the configuration and the shared database."""
from __future__ import annotations

from dataclasses import dataclass

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared import database
from shared.config import Config


@dataclass
class Runtime:
    config: Config
    client: AsyncMongoClient
    db: AsyncDatabase

    @classmethod
    async def connect(cls, config: Config, url: str | None = None) -> "Runtime":
        url = url or config.connection.database
        client = database.client(url)
        db = client[database.database_name(url)]
        await database.ensure_indexes(db)
        return cls(config, client, db)

    async def close(self) -> None:
        await self.client.close()
