"""Claiming jobs and proving a worker is alive: the one implementation every worker type uses.

A job is claimable when it is active and has no worker. A claim is one atomic
`find_one_and_update`, so two workers never get the same job. A worker reports health every few
seconds; the maintenance task hands the jobs of a silent worker back to the pool.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from shared import metrics, models
from shared.models import Status

log = logging.getLogger(__name__)


async def claim(db: AsyncDatabase, collection: str, worker_id: str, sort: list | None = None,
                when: dict | None = None) -> dict | None:
    """when: what makes a job claimable besides having no worker (default: status active)."""
    job = await db[collection].find_one_and_update(
        {**(when if when is not None else {"status": Status.ACTIVE.value}), "workerId": None},
        # attempts counts claims: more than one means the job was interrupted and taken up again.
        {"$set": {"workerId": worker_id, "claimedAt": models.now()}, "$inc": {"attempts": 1}},
        sort=sort or [("_id", 1)],
        return_document=ReturnDocument.AFTER,
    )
    if job is not None:
        metrics.JOBS_CLAIMED.labels(collection).inc()
    return job


async def release(db: AsyncDatabase, collection: str, job_id: str, worker_id: str, **fields) -> bool:
    """Give a job back (optionally changing it); False if the job is no longer ours."""
    result = await db[collection].update_one(
        {"_id": job_id, "workerId": worker_id}, {"$set": {"workerId": None, **fields}})
    if result.matched_count == 1:
        metrics.JOBS_RELEASED.labels(collection, fields.get("status") or "handed_back").inc()
    return result.matched_count == 1


async def still_ours(db: AsyncDatabase, collection: str, job_id: str, worker_id: str) -> bool:
    """True while the job exists, is active and is claimed by this worker."""
    doc = await db[collection].find_one({"_id": job_id}, {"status": 1, "workerId": 1})
    return bool(doc) and doc["workerId"] == worker_id and doc["status"] == Status.ACTIVE.value


async def report_health(db: AsyncDatabase, worker_id: str, **fields) -> None:
    """fields: what `singularity status` shows of the reporter (kind, startedAt, modules, slots)."""
    await db[models.HEALTH].update_one(
        {"_id": worker_id},
        {"$set": {"workerId": worker_id, "updatedAt": models.now(), "host": socket.gethostname(), "pid": os.getpid(),
                  **fields}},
        upsert=True,
    )


async def live_workers(db: AsyncDatabase, timeout: float) -> set[str]:
    """Ids of the workers that reported within `timeout` seconds, less those of this host whose
    process is gone (a worker killed a moment ago still has a fresh report)."""
    host = socket.gethostname()
    live = set()
    async for doc in db[models.HEALTH].find({"updatedAt": {"$gte": models.now() - timeout}}, {"host": 1, "pid": 1}):
        pid = doc.get("pid")
        if doc.get("host") == host and isinstance(pid, int) and pid > 0 and not _process_exists(pid):
            continue
        live.add(doc["_id"])
    return live


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


async def heartbeat(db: AsyncDatabase, worker_id: str, interval: float, stopping: asyncio.Event, **fields) -> None:
    """Reports until `stopping` is set. It is stopped rather than cancelled so that no report is
    still in flight when the worker deregisters: a late upsert would bring the record back."""
    while not stopping.is_set():
        try:
            await report_health(db, worker_id, **fields)
        except Exception as exc:  # the worker keeps going; the maintenance task judges it
            log.warning("health report failed: %s", exc)
        try:
            await asyncio.wait_for(stopping.wait(), interval)
        except asyncio.TimeoutError:
            pass


async def announce(db: AsyncDatabase, modules: list[str], interval: float, database: dict) -> None:
    """The heartbeat of a `singularity run`: which modules run in this process, on which host, since
    when. Runs until cancelled, then deregisters; a killed run's record expires like a worker's."""
    run_id = f"run-{uuid.uuid4()}"
    stopping = asyncio.Event()
    beat = asyncio.create_task(heartbeat(db, run_id, interval, stopping, kind="run", modules=modules,
                                         startedAt=models.now(), database=database))
    try:
        await asyncio.wait([beat])  # unlike awaiting it, leaves `beat` running when we are cancelled
    finally:
        stopping.set()
        await asyncio.gather(beat, return_exceptions=True)
        try:
            await db[models.HEALTH].delete_one({"_id": run_id})
        except Exception as exc:
            log.warning("could not deregister run %s: %s", run_id, exc)


async def release_expired(db: AsyncDatabase, timeout: float) -> int:
    """Drop health records older than `timeout` and unassign every job not held by a live worker."""
    cutoff = models.now() - timeout
    await db[models.HEALTH].delete_many({"updatedAt": {"$lt": cutoff}})
    live = [doc["_id"] async for doc in db[models.HEALTH].find({}, {"_id": 1})]
    released = 0
    for collection in models.JOB_COLLECTIONS:
        result = await db[collection].update_many(
            {"workerId": {"$ne": None, "$nin": live}}, {"$set": {"workerId": None}})
        released += result.modified_count
        if result.modified_count:
            metrics.JOBS_RELEASED.labels(collection, "expired").inc(result.modified_count)
    if released:
        log.info("released %d jobs of expired workers", released)
    return released
