"""Writing a source's values to ProviderMetric (upserts by _id, in batches) and its status."""
from __future__ import annotations

from typing import Any

from typing import Callable

from pymongo import InsertOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from shared import models

BATCH = 1000


async def write_metrics(db: AsyncDatabase, source: str, values: dict[str, dict[str, Any]], at: float,
                        stored: Callable[[str, str], bool] = lambda provider, metric: True) -> int:
    """Store every value (refreshing updatedAt of unchanged ones too); returns how many were written.

    Values `stored` says are new are inserted (several times faster than upserts on nx-27017);
    one that exists after all (written by another host) is upserted by _id instead.
    """
    batch: list = []
    written = 0
    for provider, metrics in values.items():
        for name, value in metrics.items():
            doc = models.provider_metric(provider, source, name, value, at)
            if stored(provider, name):
                batch.append(UpdateOne({"_id": doc.pop("_id")}, {"$set": doc}, upsert=True))
            else:
                batch.append(InsertOne(doc))
            if len(batch) >= BATCH:
                written += await _write(db, batch)
                batch = []
    if batch:
        written += await _write(db, batch)
    return written


async def _write(db: AsyncDatabase, batch: list) -> int:
    collection = db[models.PROVIDER_METRIC]
    try:
        await collection.bulk_write(batch, ordered=False)
    except BulkWriteError as exc:
        retry = []
        for error in exc.details.get("writeErrors", []):
            op = batch[error["index"]]
            if error.get("code") != 11000 or not isinstance(op, InsertOne):
                raise
            doc = dict(error["op"])
            retry.append(UpdateOne({"_id": doc.pop("_id")}, {"$set": doc}, upsert=True))
        if retry:
            await collection.bulk_write(retry, ordered=False)
    return len(batch)


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
