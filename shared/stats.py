"""Counts of stored things by state, each one `$group` aggregation per collection (nx-27017 scans the
collection for `count_documents`; a `$group` reads it once). Shared by /metrics and /status."""
from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from shared import models

# name -> (collection, the field holding the state)
STATES = {
    "preparations": (models.SCANNING, "status"),
    "chunks": (models.GENERATION, "status"),
    "deals": (models.DEAL_STATE, "state"),
}


async def group_count(db: AsyncDatabase, collection: str, field: str) -> dict[str, int]:
    """{state: n}; a missing state is reported as "unknown". Counts only: on nx-27017 a `$sum` over
    a field costs about fifteen times a count (bench/metrics.py)."""
    cursor = await db[collection].aggregate([{"$group": {"_id": f"${field}", "count": {"$sum": 1}}}])
    return {str(doc["_id"]) if doc["_id"] is not None else "unknown": doc["count"] async for doc in cursor}


async def state_counts(db: AsyncDatabase) -> dict[str, dict[str, int]]:
    """{"preparations": {state: n}, "chunks": {...}, "deals": {...}}"""
    return {name: await group_count(db, collection, field) for name, (collection, field) in STATES.items()}

