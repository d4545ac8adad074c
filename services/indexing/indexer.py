"""When every chunk of a preparation is done: build its index, record it, pin it to kubo.

Pinning is best effort: a missing or failing kubo is recorded in `indexPin` on the
ScanningRequest and retried with backoff, and never fails the preparation. Several indexers
may run (one per worker host): a lease on the request keeps two from building the same index.
"""
from __future__ import annotations

import asyncio
import logging
import os
import uuid

from pymongo.errors import PyMongoError

from services.indexing import builder, kubo
from shared import database, models
from shared.ipld import cid as cidlib

log = logging.getLogger(__name__)

LEASE = 600  # seconds an indexer may hold a preparation before another may take it over
PIN_BACKOFF = (30, 120, 600, 3600)  # seconds before the 1st, 2nd, 3rd, ... retry
OWNER = f"indexer-{uuid.uuid4().hex[:12]}"


def _after(seconds: float) -> float:
    return models.now() + seconds


async def chunks_complete(db, preparation_id: str) -> list[dict] | None:
    """The chunks in order if every one is completed, else None."""
    generations = await db[models.GENERATION].find({"preparationId": preparation_id}).sort("index", 1).to_list(None)
    if any(g.get("status") != models.Status.COMPLETED.value for g in generations):
        return None
    return generations


async def build_index(db, config, preparation_id: str) -> str | None:
    """Build and save the index of a completed preparation; None while chunks are unfinished."""
    prep = await db[models.SCANNING].find_one({"_id": preparation_id})
    if prep is None or prep.get("status") != models.Status.COMPLETED.value:
        return None
    generations = await chunks_complete(db, preparation_id)
    if generations is None:
        return None
    out_dir = config.deal_preparation_worker.out_dir
    tree = await builder.collect(db, preparation_id, generations, out_dir)
    # Links (not strings) to every chunk root: a pin of the index reaches every block.
    chunks = [{"cid": cidlib.from_str(g["dataCid"]), "selector": "/", "offset": 0, "length": int(g["carSize"]),
               "dataCid": cidlib.from_str(g["dataCid"]), "pieceCid": g["pieceCid"], "pieceSize": int(g["pieceSize"])}
              for g in generations]
    index_cid, path, blocks = await asyncio.to_thread(builder.write_index_car, tree, chunks, out_dir)
    for block in blocks:
        block.update(preparationId=preparation_id, indexCid=index_cid)
    # Blocks of this same index may be stored already, by a build the database interrupted.
    await db[models.INDEX_BLOCKS].delete_many({"preparationId": preparation_id, "indexCid": index_cid})
    for i in range(0, len(blocks), 1000):
        await db[models.INDEX_BLOCKS].insert_many(blocks[i:i + 1000])
    # Blocks of an earlier index of this preparation go only once the new ones are findable.
    await db[models.INDEX_BLOCKS].delete_many({"preparationId": preparation_id, "indexCid": {"$ne": index_cid}})
    old = prep.get("indexCid")
    saved = await db[models.SCANNING].update_one({"_id": preparation_id}, {"$set": {
        "indexCid": index_cid, "indexCar": path, "indexedAt": models.now(), "indexError": None,
        "indexPin": {"status": "pending", "attempts": 0, "error": None, "nextAttempt": None},
    }, "$unset": {"indexLease": "", "indexStale": ""}})
    if saved.matched_count == 0:
        # Removed while we built: nothing else would delete the blocks just written.
        await db[models.INDEX_BLOCKS].delete_many({"preparationId": preparation_id})
        log.info("preparation %s was removed while its index was built", preparation_id)
        return None
    if old and old != index_cid:
        _remove_quietly(os.path.join(out_dir, f"{old}.car"))
    log.info("indexed preparation %s: %s (%d blocks)", preparation_id, index_cid, len(blocks))
    await pin_index(db, config, preparation_id)
    return index_cid


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


async def pin_index(db, config, preparation_id: str) -> bool:
    """Import and pin the index CAR through kubo, recording the outcome; True when pinned."""
    prep = await db[models.SCANNING].find_one({"_id": preparation_id})
    if not prep or not prep.get("indexCid"):
        return False
    api = config.deal_preparation_service.ipfs_api
    pin = dict(prep.get("indexPin") or {})
    if not api:
        await db[models.SCANNING].update_one({"_id": preparation_id}, {"$set": {"indexPin": {
            "status": "disabled", "attempts": pin.get("attempts", 0), "error": None, "nextAttempt": None}}})
        return False
    attempts = pin.get("attempts", 0) + 1
    try:
        await kubo.dag_import(api, prep["indexCar"], prep["indexCid"])
    except (kubo.KuboError, OSError) as exc:
        delay = PIN_BACKOFF[min(attempts, len(PIN_BACKOFF)) - 1]
        log.warning("pinning index %s of %s failed (attempt %d): %s", prep["indexCid"], preparation_id, attempts, exc)
        await db[models.SCANNING].update_one({"_id": preparation_id}, {"$set": {"indexPin": {
            "status": "error", "attempts": attempts, "error": str(exc),
            "nextAttempt": _after(delay)}}})
        return False
    await db[models.SCANNING].update_one({"_id": preparation_id}, {"$set": {"indexPin": {
        "status": "pinned", "attempts": attempts, "error": None, "nextAttempt": None, "pinnedAt": models.now()}}})
    return True


async def _claim(db, preparation_id: str) -> bool:
    """Take the lease if it is free or expired: read it, then swap it only if it is unchanged.
    (One filter with $or would do, but the embedded server's find_one_and_update then ignores
    `_id` and updates the first document matching the $or: another preparation.)"""
    prep = await db[models.SCANNING].find_one({"_id": preparation_id}, {"indexLease": 1})
    lease = (prep or {}).get("indexLease")
    # Our own lease is free too: passes run one at a time, so it is left by a pass the database
    # interrupted before the lease could be released, and must not hold the index back for LEASE.
    if prep is None or (lease and lease.get("until", 0) >= models.now() and lease.get("owner") != OWNER):
        return False
    unchanged = ({"indexLease.owner": lease.get("owner"), "indexLease.until": lease.get("until")} if lease
                 else {"indexLease": None})
    result = await db[models.SCANNING].update_one(
        {"_id": preparation_id, **unchanged}, {"$set": {"indexLease": {"owner": OWNER, "until": _after(LEASE)}}})
    return result.modified_count == 1


async def _release(db, preparation_id: str) -> None:
    await db[models.SCANNING].update_one({"_id": preparation_id, "indexLease.owner": OWNER},
                                         {"$unset": {"indexLease": ""}})


async def index_pending(db, config) -> int:
    """One pass: index what is ready, retry pins that are due. Returns how many it indexed."""
    built = 0
    now = models.now()
    # Filtered here rather than in the query: null-matching differs between MongoDB and the
    # embedded server, and completed preparations are few.
    completed = await db[models.SCANNING].find(
        {"status": models.Status.COMPLETED.value},
        {"indexCid": 1, "indexError": 1, "indexRetryAt": 1, "indexPin": 1, "indexStale": 1}).to_list(None)
    # indexStale: an index in an older shape, to rebuild (shared/migrations/v0002_index_links.py).
    candidates = [p for p in completed if (not p.get("indexCid") or p.get("indexStale"))
                  and (not p.get("indexError") or (p.get("indexRetryAt") is not None and p["indexRetryAt"] < now))]
    for candidate in candidates:
        preparation_id = candidate["_id"]
        if not await _claim(db, preparation_id):
            continue  # another indexer has it
        try:
            if await build_index(db, config, preparation_id) is not None:
                built += 1
        except PyMongoError:
            raise  # the database is away: the next pass retries
        except Exception as exc:  # recorded on this preparation; the others are still indexed
            log.exception("cannot index preparation %s", preparation_id)
            message = str(exc) if isinstance(exc, builder.IndexBuildError) else f"{type(exc).__name__}: {exc}"
            await db[models.SCANNING].update_one({"_id": preparation_id}, {"$set": {
                "indexError": message, "indexRetryAt": _after(PIN_BACKOFF[-1])}})
        finally:
            await _release(db, preparation_id)
    if config.deal_preparation_service.ipfs_api:
        for prep in completed:
            pin = prep.get("indexPin") or {}
            if prep.get("indexCid") and pin.get("status") in ("error", "pending", "disabled") and (
                    pin.get("nextAttempt") is None or pin["nextAttempt"] < models.now()):
                await pin_index(db, config, prep["_id"])
    return built


async def run_indexer(runtime, interval: float = 5.0) -> None:
    while True:
        try:
            await index_pending(runtime.db, runtime.config)
        except asyncio.CancelledError:
            raise
        except database.UNAVAILABLE as exc:  # nothing is lost: the next pass picks it up again
            log.warning("indexer paused, the database is unavailable: %s", str(exc).split(",")[0])
        except Exception:
            log.exception("indexer pass failed")
        await asyncio.sleep(interval)
