"""One function per preparation API action; the routes only translate HTTP to these."""
from __future__ import annotations

import os

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.preparation.validation import new_preparation
from shared import models
from shared.api import Duplicate, NotFound
from shared.config import Config, format_size
from shared.models import Status

async def create(db: AsyncDatabase, config: Config, body: dict) -> dict:
    request = new_preparation(body, config.deal_preparation_service.default_deal_size)
    doc = models.scanning_request(request.name, request.path, request.deal_size, request.min_size, request.max_size)
    try:
        await db[models.SCANNING].insert_one(doc)
    except DuplicateKeyError:
        raise Duplicate(f"a preparation named {request.name!r} already exists") from None
    return {"id": doc["_id"]}


async def set_state(db: AsyncDatabase, preparation_id: str, state: str) -> dict:
    """`state` is one of schemas.STATES."""
    scan = await find(db, preparation_id)
    if state == "removed":
        await remove(db, preparation_id)
        return {"id": preparation_id, "state": "removed"}
    # Resuming also retries what failed: the cause (a full disk, a changed file) may be fixed.
    before, after = ((Status.ACTIVE, Status.PAUSED) if state == "paused" else (Status.PAUSED, Status.ACTIVE))
    resumable = [before.value] + ([Status.ERROR.value] if state == "active" else [])
    await db[models.SCANNING].update_one({"_id": preparation_id}, {"$set": {"state": state}})
    await db[models.SCANNING].update_one(
        {"_id": preparation_id, "status": {"$in": resumable}},
        {"$set": {"status": after.value, "workerId": None, "error": None}})
    await db[models.GENERATION].update_many(
        {"preparationId": preparation_id, "status": {"$in": resumable}},
        {"$set": {"status": after.value, "workerId": None, "error": None}})
    return {"id": scan["_id"], "state": state}


async def remove(db: AsyncDatabase, preparation_id: str) -> None:
    # The request goes first, so a worker still scanning it notices and stops writing.
    await db[models.SCANNING].delete_one({"_id": preparation_id})
    for collection in (models.GENERATION, models.GENERATION_FILES, models.SCAN_PROBLEMS, models.CAR_BLOCKS):
        await db[collection].delete_many({"preparationId": preparation_id})


async def find(db: AsyncDatabase, preparation_id: str) -> dict:
    scan = await db[models.SCANNING].find_one({"_id": preparation_id})
    if scan is None:
        raise NotFound(f"no preparation with id {preparation_id!r}")
    return scan


async def generation_counts(db: AsyncDatabase, preparation_id: str) -> dict:
    """Counts by state in one aggregation (the embedded server answers count_documents by
    scanning the collection; a $group runs in SQL), then the few chunks being built."""
    collection = db[models.GENERATION]
    by_status = {doc["_id"]: doc async for doc in await collection.aggregate([
        {"$match": {"preparationId": preparation_id}},
        {"$group": {"_id": "$status", "count": {"$sum": 1}, "size": {"$sum": "$size"}}},
    ])}
    building = await collection.find(
        {"preparationId": preparation_id, "status": Status.ACTIVE.value, "workerId": {"$ne": None}},
        {"bytesDone": 1, "rate": 1}).to_list(None)
    completed = by_status.get(Status.COMPLETED.value, {})
    return {
        "generationCompleted": completed.get("count", 0),
        "generationInprogress": len(building),
        "generationFailed": by_status.get(Status.ERROR.value, {}).get("count", 0),
        "generationTotal": sum(doc["count"] for doc in by_status.values()),
        "bytesDone": completed.get("size", 0) + sum(doc.get("bytesDone") or 0 for doc in building),
        "rate": round(sum(doc.get("rate") or 0 for doc in building)),
    }


async def summary(db: AsyncDatabase, scan: dict) -> dict:
    problems = db[models.SCAN_PROBLEMS]
    return {
        "id": scan["_id"],
        "name": scan["name"],
        "path": scan["path"],
        "dealSize": format_size(scan["dealSize"]),
        "minSize": format_size(scan["minSize"]),
        "maxSize": format_size(scan["maxSize"]),
        "state": scan.get("state", "active"),
        "scanningStatus": scan["status"],
        "scanningError": scan.get("error"),
        "scannedFiles": scan.get("scannedFiles", 0),
        "scannedBytes": scan.get("scannedBytes", 0),
        "errorCount": await problems.count_documents({"preparationId": scan["_id"], "kind": "error"}),
        "skippedCount": await problems.count_documents({"preparationId": scan["_id"], "kind": "skipped"}),
        "indexCid": scan.get("indexCid"),
        "indexError": scan.get("indexError"),
        "indexPin": scan.get("indexPin"),
        "createdAt": scan["createdAt"],
        **await generation_counts(db, scan["_id"]),
    }


def generation_view(doc: dict) -> dict:
    return {
        "id": doc["_id"],
        "index": doc["index"],
        "workerId": doc["workerId"],
        "status": doc["status"],
        "fileCount": doc["fileCount"],
        "size": doc["size"],
        "dataCid": doc.get("dataCid"),
        "pieceCid": doc.get("pieceCid"),
        "pieceSize": doc.get("pieceSize"),
        "carSize": doc.get("carSize"),
        "error": doc.get("error"),
    }


async def list_all(db: AsyncDatabase) -> list[dict]:
    return [await summary(db, scan) async for scan in db[models.SCANNING].find({}).sort("_id", 1)]


async def details(db: AsyncDatabase, preparation_id: str, offset: int, limit: int) -> dict:
    scan = await find(db, preparation_id)
    generations = db[models.GENERATION].find({"preparationId": preparation_id}).sort("index", 1).skip(offset).limit(limit)
    problems = db[models.SCAN_PROBLEMS].find({"preparationId": preparation_id}).sort("_id", 1).limit(100)
    return {
        **await summary(db, scan),
        "generationRequests": [generation_view(doc) async for doc in generations],
        "problems": [{"kind": p["kind"], "path": p["path"], "reason": p["reason"]} async for p in problems],
        "offset": offset,
        "limit": limit,
    }


async def generation(db: AsyncDatabase, generation_id: str, offset: int, limit: int) -> dict:
    doc = await db[models.GENERATION].find_one({"_id": generation_id})
    if doc is None:
        raise NotFound(f"no generation request with id {generation_id!r}")
    files = db[models.GENERATION_FILES].find({"generationId": generation_id}).sort("order", 1).skip(offset).limit(limit)
    return {
        **generation_view(doc),
        "preparationId": doc["preparationId"],
        "name": doc["name"],
        "path": doc["path"],
        "state": doc["status"],
        "fileList": [{
            "path": os.path.join(doc["path"], f["relativePath"]), "relativePath": f["relativePath"],
            "name": f["relativePath"].rsplit("/", 1)[-1], "directory": bool(f.get("directory")), "size": f["size"],
            "mtime": f["mtime"], "start": f["start"], "end": f["end"], "cid": f.get("cid"),
        } async for f in files],
        "offset": offset,
        "limit": limit,
    }


async def files(db: AsyncDatabase, preparation_id: str, prefix: str, offset: int, limit: int) -> dict:
    """The dataset's file -> CID -> piece mapping, by path: each file or range with the CID of its
    DAG and the data CID and piece CID of the chunk that holds it."""
    scan = await find(db, preparation_id)
    query: dict = {"preparationId": preparation_id}
    prefix = prefix.strip("/")
    if prefix:
        # The path itself, or anything under "path/" ("0" is the character after "/").
        query["$or"] = [{"relativePath": prefix}, {"relativePath": {"$gte": prefix + "/", "$lt": prefix + "0"}}]
    docs = await db[models.GENERATION_FILES].find(query).sort(
        [("relativePath", 1), ("start", 1)]).skip(offset).limit(limit).to_list(None)
    chunks = {doc["_id"]: doc async for doc in db[models.GENERATION].find(
        {"_id": {"$in": list({d["generationId"] for d in docs})}})}
    return {
        "id": scan["_id"],
        "name": scan["name"],
        "files": [{
            "relativePath": d["relativePath"], "directory": bool(d.get("directory")), "size": d["size"],
            "start": d["start"], "end": d["end"],
            "cid": d.get("cid"), "chunk": chunk["index"], "generationId": chunk["_id"], "status": chunk["status"],
            "dataCid": chunk.get("dataCid"), "pieceCid": chunk.get("pieceCid"), "pieceSize": chunk.get("pieceSize"),
        } for d in docs if (chunk := chunks.get(d["generationId"])) is not None],  # not of a chunk still being cut
        "offset": offset,
        "limit": limit,
    }
