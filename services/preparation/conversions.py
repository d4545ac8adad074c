"""Asking for conversions of completed chunks between CAR files and inline chunks: which chunks a
`materialize` or `prune-cars` request applies to, and the ChunkConversion jobs a worker on the
host with out_dir runs (services/worker/conversion.py)."""
from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared import database, models
from shared.stats import active_providers
from shared.api import Conflict, NotFound
from shared.models import Status

PAGE = 1000  # chunks read at a time


def conversion_job(chunk: dict, action: str, min_active: int | None = None) -> dict:
    return {"_id": f"{chunk['_id']}-{action}", "preparationId": chunk["preparationId"], "generationId": chunk["_id"],
            "index": chunk["index"], "name": chunk.get("name"), "action": action, "minActive": min_active,
            "status": Status.ACTIVE.value, "workerId": None, "error": None, "createdAt": models.now(),
            "completedAt": None}


async def _queue(db: AsyncDatabase, jobs: list[dict]) -> int:
    """Insert the jobs; one that exists from an earlier request is asked again unless it is running."""
    queued = 0
    for job in jobs:
        try:
            await db[models.CONVERSIONS].insert_one(job)
            queued += 1
        except DuplicateKeyError:
            again = await db[models.CONVERSIONS].update_one(
                {"_id": job["_id"], "status": {"$ne": Status.ACTIVE.value}},
                {"$set": {"status": Status.ACTIVE.value, "error": None, "minActive": job["minActive"],
                          "createdAt": job["createdAt"], "completedAt": None}})
            queued += again.modified_count
    return queued


async def _completed_chunks(db: AsyncDatabase, preparation_id: str):
    """The completed chunks of a preparation, a page at a time (by index)."""
    last = -1
    while True:
        page = await db[models.GENERATION].find(
            {"preparationId": {"$eq": preparation_id}, "index": {"$gt": last}},
            {"preparationId": 1, "index": 1, "name": 1, "status": 1, "inline": 1, "pieceCid": 1, "importedCar": 1}
        ).sort("index", 1).limit(PAGE).to_list(None)
        if not page:
            return
        last = page[-1]["index"]
        yield [c for c in page if c.get("status") == Status.COMPLETED.value]


async def materialize(db: AsyncDatabase, preparation_id: str, chunk_index: int | None) -> dict:
    if chunk_index is not None:
        chunk = await db[models.GENERATION].find_one({"preparationId": preparation_id, "index": chunk_index})
        if chunk is None:
            raise NotFound(f"preparation {preparation_id!r} has no chunk {chunk_index}")
        if chunk.get("status") != Status.COMPLETED.value:
            raise Conflict(f"chunk {chunk_index} is not completed yet", chunk.get("status"))
        if not chunk.get("inline"):
            raise Conflict(f"chunk {chunk_index} already has a CAR file")
        return {"queued": await _queue(db, [conversion_job(chunk, "materialize")]), "chunks": 1}
    queued = chunks = 0
    async for page in _completed_chunks(db, preparation_id):
        wanted = [conversion_job(c, "materialize") for c in page if c.get("inline")]
        chunks += len(wanted)
        queued += await _queue(db, wanted)
    return {"queued": queued, "chunks": chunks}


async def prune(db: AsyncDatabase, preparation_id: str, min_active: int) -> dict:
    queued = chunks = 0
    async for page in _completed_chunks(db, preparation_id):
        candidates = [c for c in page if not c.get("inline") and not c.get("importedCar") and c.get("pieceCid")]
        held = await active_providers(db, [c["pieceCid"] for c in candidates]) if candidates else {}
        wanted = [conversion_job(c, "prune", min_active) for c in candidates
                  if len(held.get(c["pieceCid"], ())) >= min_active]
        chunks += len(wanted)
        queued += await _queue(db, wanted)
    return {"queued": queued, "chunks": chunks}


def view(job: dict) -> dict:
    return {"id": job["_id"], "chunk": job["index"], "generationId": job["generationId"], "action": job["action"],
            "minActive": job.get("minActive"), "status": job["status"], "workerId": job.get("workerId"),
            "error": job.get("error"), "createdAt": job.get("createdAt"), "completedAt": job.get("completedAt")}


async def page(db: AsyncDatabase, preparation_id: str, offset: int, limit: int) -> dict:
    query = {"preparationId": {"$eq": preparation_id}}
    docs = await db[models.CONVERSIONS].find(query).sort("_id", 1).skip(offset).limit(limit).to_list(None)
    return {"conversions": [view(d) for d in docs], "total": await database.count(db[models.CONVERSIONS], query),
            "offset": offset, "limit": limit}
