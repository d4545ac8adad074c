"""The data model: collection names, states and the shape of every stored document.

Lists that grow with a dataset (the files of a chunk, the blocks of a CAR) live in their own
collections, one document per item, because a MongoDB document is capped at 16 MiB.
"""
from __future__ import annotations

import datetime as dt
from enum import StrEnum

from bson import ObjectId

SCANNING = "ScanningRequest"
GENERATION = "GenerationRequest"
GENERATION_FILES = "GenerationFile"
HEALTH = "HealthCheck"

# Every job collection a worker can claim from; the maintenance task releases them all.
JOB_COLLECTIONS = (SCANNING, GENERATION)

# How many named errors a request keeps; the count goes on past it.
MAX_RECORDED_ERRORS = 100


class Status(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    ERROR = "error"
    REMOVED = "removed"  # only ever an API verb: removed requests are deleted


def new_id() -> str:
    """Sortable by creation time, and a plain string in the API and the database."""
    return str(ObjectId())


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# (collection, keys, options): created idempotently at every start.
INDEXES: list[tuple[str, list[tuple[str, int]], dict]] = [
    (SCANNING, [("name", 1)], {"unique": True}),
    (SCANNING, [("status", 1), ("workerId", 1)], {}),
    (GENERATION, [("preparationId", 1), ("index", 1)], {"unique": True}),
    (GENERATION, [("status", 1), ("workerId", 1)], {}),
    (GENERATION_FILES, [("generationId", 1), ("order", 1)], {}),
    (GENERATION_FILES, [("preparationId", 1)], {}),
    (HEALTH, [("updatedAt", 1)], {}),
]


def scanning_request(name: str, path: str, deal_size: int, min_size: int, max_size: int) -> dict:
    return {
        "_id": new_id(),
        "name": name,
        "path": path,
        "dealSize": deal_size,
        "minSize": min_size,
        "maxSize": max_size,
        "status": Status.ACTIVE.value,
        "workerId": None,
        "createdAt": now(),
        # Where an interrupted scan resumes: the next chunk index and the last entry already
        # placed in a chunk (path components in walk order, and the byte offset reached in it).
        "checkpoint": {"index": 0, "after": None, "offset": 0},
        "scannedFiles": 0,
        "scannedBytes": 0,
        "errors": [],
        "errorCount": 0,
        "skipped": [],
        "skippedCount": 0,
        "indexCid": None,
    }


def generation_request(scan: dict, index: int, file_count: int, size: int) -> dict:
    return {
        "_id": new_id(),
        "preparationId": scan["_id"],
        "name": scan["name"],
        "path": scan["path"],
        "index": index,
        "status": Status.ACTIVE.value,
        "workerId": None,
        "fileCount": file_count,
        "size": size,
        "dataCid": None,
        "pieceCid": None,
        "pieceSize": None,
        "carSize": None,
        "error": None,
        "createdAt": now(),
    }
