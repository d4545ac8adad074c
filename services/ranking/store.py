"""Writing a source's values to ProviderMetric (upserts by _id, in batches) and its status."""
from __future__ import annotations

from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from shared import models

BATCH = 1000


async def write_metrics(db: AsyncDatabase, source: str, values: dict[str, dict[str, Any]], at: float) -> int:
    """Store every value (refreshing updatedAt of unchanged ones too); returns how many were written."""
    batch: list[UpdateOne] = []
    written = 0
    for provider, metrics in values.items():
        for name, value in metrics.items():
            doc = models.provider_metric(provider, source, name, value, at)
            batch.append(UpdateOne({"_id": doc.pop("_id")}, {"$set": doc}, upsert=True))
            if len(batch) >= BATCH:
                await db[models.PROVIDER_METRIC].bulk_write(batch, ordered=False)
                written += len(batch)
                batch = []
    if batch:
        await db[models.PROVIDER_METRIC].bulk_write(batch, ordered=False)
        written += len(batch)
    return written


async def record_status(db: AsyncDatabase, source: str, at: float, error: str | None, providers: int,
                        note: str | None = None) -> None:
    update: dict[str, Any] = {"lastRun": at, "error": error, "note": note}
    if error is None:
        update.update({"lastSuccess": at, "providers": providers})
    else:
        update["errorAt"] = at
    await db[models.PROVIDER_SOURCE].update_one({"_id": source}, {"$set": update}, upsert=True)


async def statuses(db: AsyncDatabase) -> dict[str, dict]:
    return {doc.pop("_id"): doc async for doc in db[models.PROVIDER_SOURCE].find({})}
