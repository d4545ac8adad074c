"""Counts of stored things by state, each one `$group` aggregation per collection (nx-27017 scans the
collection for `count_documents`; a `$group` reads it once). Shared by /metrics and /status; and
the providers holding each piece in an active deal, which prune-cars counts."""
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


async def active_providers(db: AsyncDatabase, piece_cids: list[str]) -> dict[str, set[str]]:
    """The providers with an active deal of each piece (one query per 500 pieces)."""
    out: dict[str, set[str]] = {}
    for i in range(0, len(piece_cids), 500):
        query = {"pieceCid": {"$in": piece_cids[i:i + 500]}, "state": {"$eq": models.DealStatus.ACTIVE.value}}
        cursor = db[models.DEAL_STATE].find(query, {"pieceCid": 1, "provider": 1})
        async for deal in cursor:
            out.setdefault(deal["pieceCid"], set()).add(deal.get("provider"))
    return out
