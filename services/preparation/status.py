"""GET /status: which modules run on which hosts, the workers and their jobs, the database, and the
counts of preparations, chunks and deals by state. Reads a bounded number of documents: the
heartbeats (one per run and per worker), the jobs they hold (one query per job collection) and one
`$group` per counted collection."""
from __future__ import annotations

import asyncio

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from shared import migrations, models, stats
from shared.config import Config

MAX_HEARTBEATS = 1000
MAX_JOBS = 10_000
JOB_FIELDS = {"preparationId": 1, "name": 1, "index": 1, "workerId": 1, "claimedAt": 1, "size": 1, "bytesDone": 1}


async def collect(db: AsyncDatabase, config: Config) -> dict:
    now = models.now()
    timeout = config.deal_preparation_service.worker_timeout
    beats = await db[models.HEALTH].find({}).sort("_id", 1).limit(MAX_HEARTBEATS + 1).to_list(None)
    truncated = len(beats) > MAX_HEARTBEATS
    beats = beats[:MAX_HEARTBEATS]

    def common(doc: dict) -> dict:
        updated = doc.get("updatedAt")
        age = now - updated if isinstance(updated, (int, float)) else None
        return {"host": doc.get("host"), "pid": doc.get("pid"), "startedAt": doc.get("startedAt"),
                "lastHeartbeat": updated, "age": None if age is None else round(age, 1),
                "alive": age is not None and age <= timeout}

    runs = [{**common(doc), "modules": doc.get("modules") or [], "database": doc.get("database")}
            for doc in beats if doc.get("kind") == "run"]
    # A record without a kind was written by a worker of schema version 0.
    # Replicators claim jobs too (replication requests, one round at a time).
    workers = {doc["_id"]: {"id": doc["_id"], **common(doc), "slots": doc.get("slots"), "jobs": [],
                            **({"kind": "replicator"} if doc.get("kind") == "replicator" else {})}
               for doc in beats if doc.get("kind", "worker") in ("worker", "replicator")}
    for collection in models.JOB_COLLECTIONS:
        cursor = db[collection].find({"status": models.Status.ACTIVE.value, "workerId": {"$in": list(workers)}},
                                     JOB_FIELDS).limit(MAX_JOBS)
        async for job in cursor:
            if job.get("workerId") in workers:
                kind = {models.SCANNING: "scan", models.REPLICATION: "replication",
                        models.CONVERSIONS: "conversion"}.get(collection, "generation")
                workers[job["workerId"]]["jobs"].append({
                    "kind": kind, "id": job["_id"], "preparationId": job.get("preparationId", job["_id"]),
                    "name": job.get("name"), "index": job.get("index"), "claimedAt": job.get("claimedAt"),
                    "size": job.get("size"), "bytesDone": job.get("bytesDone")})
    counts, database = await asyncio.gather(stats.state_counts(db), describe_database(db, config))
    return {"time": now, "hosts": runs, "workers": list(workers.values()), "truncated": truncated,
            "database": database, "counts": counts}


async def describe_database(db: AsyncDatabase, config: Config) -> dict:
    schema = await migrations.read(db)
    out = {"embedded": config.database.enabled, "name": db.name, "server": None, "version": None,
           "schemaVersion": schema["version"], "codeSchemaVersion": schema["known"],
           "migrating": schema["migrating"]}
    try:
        info = await db.client.admin.command("buildInfo")
    except PyMongoError:
        return out  # a server that refuses buildInfo to this user: the rest still stands
    out["server"] = "nx-27017" if info.get("process") == "nx_27017" else "mongodb"
    out["version"] = info.get("version")
    return out
