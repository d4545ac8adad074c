"""Preparations and their jobs: scanning requests, chunks (generation requests), their files,
blocks and problems, the dataset index blocks, worker health and the schema version."""
from __future__ import annotations

import time
from enum import StrEnum

from bson import ObjectId

SCANNING = "ScanningRequest"
GENERATION = "GenerationRequest"
GENERATION_FILES = "GenerationFile"
CAR_BLOCKS = "CarBlock"  # where each block of each CAR lies: cid -> CAR, offset, length
SCAN_PROBLEMS = "ScanProblem"  # unreadable files (errors) and symlinks etc. (skipped), per request
HEALTH = "HealthCheck"
# The schema version the database holds (one document, SCHEMA_VERSION_ID), written by shared/migrations.
SCHEMA_VERSION = "SchemaVersion"
SCHEMA_VERSION_ID = "schema"

# Replication requests (services/replication): jobs a replicator claims for one round at a time.
REPLICATION = "ReplicationRequest"

# Every job collection a worker can claim from; the maintenance task releases them all.
JOB_COLLECTIONS = (SCANNING, GENERATION, REPLICATION)


class Status(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    ERROR = "error"
    REMOVED = "removed"  # only ever an API verb: removed requests are deleted


def new_id() -> str:
    """Sortable by creation time, and a plain string in the API and the database."""
    return str(ObjectId())


def now() -> float:
    """Timestamps are Unix seconds: nx-27017 stores a datetime written by `$set` as a string,
    which then no longer compares with datetimes; numbers compare the same everywhere."""
    return time.time()


# (collection, keys, options): created idempotently at every start.
INDEXES: list[tuple[str, list[tuple[str, int]], dict]] = [
    (SCANNING, [("name", 1)], {"unique": True}),
    (SCANNING, [("status", 1), ("workerId", 1)], {}),
    (GENERATION, [("preparationId", 1), ("index", 1)], {"unique": True}),
    (GENERATION, [("status", 1), ("workerId", 1)], {}),
    (GENERATION_FILES, [("generationId", 1), ("order", 1)], {}),
    (SCAN_PROBLEMS, [("preparationId", 1), ("kind", 1)], {}),
    (SCAN_PROBLEMS, [("generationId", 1)], {}),
    (HEALTH, [("updatedAt", 1)], {}),
    (GENERATION, [("pieceCid", 1)], {}),
    (GENERATION, [("dataCid", 1)], {}),
    (CAR_BLOCKS, [("cid", 1)], {}),
    (CAR_BLOCKS, [("generationId", 1)], {}),
    (CAR_BLOCKS, [("preparationId", 1)], {}),
]


MAX_NAME_BYTES = 255


def preparation_name_problem(name: str) -> str | None:
    """Why `name` cannot name a preparation, or None. The name becomes a folder in bundles and
    retrievals and a URL path segment, so it must be one safe file name."""
    if name in ("", ".", ".."):
        return "must not be empty, '.' or '..'"
    if "/" in name:
        return "must not contain '/'"
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in name):
        return "must not contain control characters"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "must be valid UTF-8 text"
    if size > MAX_NAME_BYTES:
        return f"must be at most {MAX_NAME_BYTES} bytes of UTF-8 (it has {size})"
    return None


def scanning_request(name: str, path: str, deal_size: int, min_size: int, max_size: int, inline: bool = False) -> dict:
    return {
        "_id": new_id(),
        "name": name,
        "path": path,
        "dealSize": deal_size,
        "minSize": min_size,
        "maxSize": max_size,
        "state": "active",  # what the user asked for: active or paused
        "status": Status.ACTIVE.value,  # of the scan: active, paused, completed, error
        "workerId": None,
        "error": None,
        "createdAt": now(),
        # Where an interrupted scan resumes: the next chunk index, the last entry already placed in
        # a chunk (path components in walk order, and the byte offset reached in it), and the
        # generation id of the chunk being filled, whose documents a resumed scan deletes.
        "checkpoint": {"index": 0, "after": None, "offset": 0, "open": None},
        "scannedFiles": 0,
        "scannedBytes": 0,
        "indexCid": None,
        "inline": inline,  # no CAR files: chunks are served from their layout (absent: false)
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


# --- Dataset index (services/indexing) ---
# One document per block of an index CAR (`<out_dir>/<indexCid>.car`), so the hosting service
# can answer /ipfs/{cid} for index blocks: {cid, preparationId, indexCid, offset, length}.
INDEX_BLOCKS = "IndexBlock"

# Every collection holding documents of a preparation by its `preparationId`: removing the
# preparation empties them all (its ScanningRequest goes first).
OWNED_BY_PREPARATION = (GENERATION, GENERATION_FILES, SCAN_PROBLEMS, CAR_BLOCKS, INDEX_BLOCKS, REPLICATION)

INDEXES += [
    (INDEX_BLOCKS, [("cid", 1)], {}),
    (INDEX_BLOCKS, [("preparationId", 1), ("indexCid", 1)], {}),
    # /bundle selects a folder's files by path prefix, in path order.
    (GENERATION_FILES, [("preparationId", 1), ("relativePath", 1), ("start", 1)], {}),
]

# Summaries count chunks and problems per state and preparation; with the state first these
# indexes hold every field those counts read, so a count never loads a document.
INDEXES += [
    (GENERATION, [("status", 1), ("preparationId", 1), ("size", 1)], {}),
    (SCAN_PROBLEMS, [("kind", 1), ("preparationId", 1)], {}),
]

# GET /preparations/history groups completed chunks by their completion time.
INDEXES += [(GENERATION, [("status", 1), ("completedAt", 1)], {})]

# --- Inline preparations (a preparation with `inline: true` writes no CAR) ---
# The layout of a chunk whose CAR is not on disk (`inline: true` on its GenerationRequest), from
# which the hosting service assembles the CAR's bytes: one document per segment
# {generationId, preparationId, dataCid, seq, start, end, files: [[relativePath, size, mtime]],
# records: bytes} (shared/ipld/layout.py). A chunk that can no longer be served from it (a source
# file changed or vanished) has `unservable: {file, reason, status, at}`; resuming the preparation
# rebuilds it (services/worker/refresh.py), unless it has live deals: then the new versions of its
# files go into new chunks and `unservable.replacedAt` says so, the chunk staying as it is.
CAR_LAYOUTS = "CarLayout"


def unservable_to_refresh(preparation_id: str) -> dict:
    """The completed chunks of a preparation found unservable that a resume has not dealt with yet."""
    return {"preparationId": {"$eq": preparation_id}, "status": {"$eq": Status.COMPLETED.value},
            "unservable.file": {"$gt": ""}, "unservable.replacedAt": None}


# Jobs converting a completed chunk between a CAR file and its layout (services/worker/conversion.py):
# {preparationId, generationId, index, action: "materialize" | "prune", minActive, status, workerId, error}.
CONVERSIONS = "ChunkConversion"
JOB_COLLECTIONS = JOB_COLLECTIONS + (CONVERSIONS,)
OWNED_BY_PREPARATION = OWNED_BY_PREPARATION + (CAR_LAYOUTS, CONVERSIONS)

INDEXES += [
    (CAR_LAYOUTS, [("generationId", 1), ("start", 1)], {}),
    (CAR_LAYOUTS, [("preparationId", 1)], {}),
    (CONVERSIONS, [("status", 1), ("workerId", 1)], {}),
    (CONVERSIONS, [("preparationId", 1)], {}),
    (CONVERSIONS, [("generationId", 1)], {}),
]
