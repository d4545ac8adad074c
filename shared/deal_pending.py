"""The one-deal-in-flight rule: a unique key per (client, provider, piece) while a deal is pending.

Inserting the key is atomic, so of two simultaneous requests for the same piece exactly one sends
a proposal; the other finds the key and answers with the first one's deal.
"""
from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared import models


def key(client: str, provider: str, piece_cid: str) -> str:
    return f"{client}|{provider}|{piece_cid}"


async def claim(db: AsyncDatabase, pending_key: str, deal_id: str) -> dict | None:
    """None when the key is now ours; otherwise the key document that holds it."""
    try:
        await db[models.DEAL_PENDING].insert_one(
            {"_id": pending_key, "dealStateId": deal_id, "createdAt": models.now()})
        return None
    except DuplicateKeyError:
        held = await db[models.DEAL_PENDING].find_one({"_id": pending_key})
        # Released between our insert and our read: report a holder-less key so the caller retries.
        return held or {"_id": pending_key, "dealStateId": None, "createdAt": None}


async def release(db: AsyncDatabase, deal_ids: list[str]) -> None:
    """Free the keys held by these deals (only theirs: a newer deal may hold the same key)."""
    if deal_ids:
        await db[models.DEAL_PENDING].delete_many({"dealStateId": {"$in": list(deal_ids)}})
