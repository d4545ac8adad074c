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


async def group_count(db: AsyncDatabase, collection: str, field: str, total: str | None = None) -> dict[str, dict]:
    """{state: {"count": n[, "bytes": sum of `total`]}}; a missing state is reported as "unknown"."""
    group: dict = {"_id": f"${field}", "count": {"$sum": 1}}
    if total:
        group["bytes"] = {"$sum": f"${total}"}
    cursor = await db[collection].aggregate([{"$group": group}])
    out = {}
    async for doc in cursor:
        entry = {"count": doc["count"]}
        if total:
            entry["bytes"] = doc.get("bytes") or 0  # nx-27017 sums an empty set to null
        out[str(doc["_id"]) if doc["_id"] is not None else "unknown"] = entry
    return out


async def state_counts(db: AsyncDatabase) -> dict[str, dict[str, int]]:
    """{"preparations": {state: n}, "chunks": {...}, "deals": {...}}"""
    return {name: {state: v["count"] for state, v in (await group_count(db, collection, field)).items()}
            for name, (collection, field) in STATES.items()}


async def chunk_bytes(db: AsyncDatabase) -> dict[str, int]:
    """Source bytes of the chunks in each state."""
    return {state: v["bytes"] for state, v in (await group_count(db, models.GENERATION, "status", "size")).items()}
