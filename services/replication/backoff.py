"""Exponential backoff of providers and of (piece, provider) pairs, kept in the database so it
survives restarts and is shared by every replicator: `backoff_base` seconds after a first refusal
or failure, doubling with each further one up to `backoff_cap`; a success deletes it."""
from __future__ import annotations

from dataclasses import dataclass, field

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from shared import models

COLLECTION = models.REPLICATION_BACKOFF


def pair_key(piece_cid: str, provider: str) -> str:
    return f"{piece_cid}|{provider}"


@dataclass
class Backoff:
    providers: dict[str, float] = field(default_factory=dict)  # provider -> until
    pairs: dict[str, float] = field(default_factory=dict)  # pair_key -> until

    def blocked(self, provider: str, piece_cid: str, now: float) -> bool:
        return self.providers.get(provider, 0) > now or self.pairs.get(pair_key(piece_cid, provider), 0) > now


async def load(db: AsyncDatabase, now: float) -> Backoff:
    """Every backoff still running: one query."""
    out = Backoff()
    async for doc in db[COLLECTION].find({"until": {"$gt": now}}, {"until": 1, "kind": 1}):
        (out.pairs if doc.get("kind") == "pair" else out.providers)[doc["_id"]] = doc["until"]
    return out


def delay(failures: int, base: float, cap: float) -> float:
    return min(cap, base * 2 ** min(failures - 1, 60))


async def failed(db: AsyncDatabase, backoff: Backoff, piece_cid: str, provider: str, error: str,
                 base: float, cap: float) -> float:
    """Record one failure of `provider` (and of that piece at it); the provider's wait in seconds."""
    wait = 0.0
    for key, kind, target in ((provider, "provider", backoff.providers),
                              (pair_key(piece_cid, provider), "pair", backoff.pairs)):
        doc = await db[COLLECTION].find_one_and_update(
            {"_id": key}, {"$inc": {"failures": 1}, "$set": {"kind": kind, "error": error[:500],
                                                              "updatedAt": models.now()}},
            upsert=True, return_document=ReturnDocument.AFTER)
        seconds = delay(int(doc.get("failures") or 1), base, cap)
        until = models.now() + seconds
        await db[COLLECTION].update_one({"_id": key}, {"$set": {"until": until}})
        target[key] = until
        if kind == "provider":
            wait = seconds
    return wait


async def succeeded(db: AsyncDatabase, backoff: Backoff, piece_cid: str, provider: str) -> None:
    # Always written: an elapsed backoff (not loaded) still holds the failure count to reset.
    await db[COLLECTION].delete_many({"_id": {"$in": [provider, pair_key(piece_cid, provider)]}})
    backoff.providers.pop(provider, None)
    backoff.pairs.pop(pair_key(piece_cid, provider), None)
