"""Preparation summaries for a whole page at once: a fixed number of aggregations, whatever the
number of preparations on the page or of chunks and problems under them.

Progress is derived from the chunk and problem records every time rather than kept in counters:
a chunk changes state in several places (claims, releases, pause/resume, retries of a crashed
worker), and counters bumped at each of them drift as soon as one step is retried. On the embedded
server a `$match` on an indexed field followed by a `$group` on one computed key runs as one SQL
query over the index (measured: 2 ms for a preparation of 20 chunks, 22 ms for 10,000); `$in`,
`$or`, `$cond` or a compound `_id` in the pipeline make it fall back to scanning the collection in
Python, hence the id range and the key built with `$concat`.
"""
from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from shared import models
from shared.config import format_size
from shared.models import Status

# Separates the parts of a grouping key; ids and states never contain it.
SEP = " "


def id_range(ids: list[str]) -> dict:
    """Preparation ids sort by creation, and a page is a run of consecutive ids: every record of
    the page's preparations lies within [first, last] (and records of other ids never exist there
    except as leftovers of removed preparations, which no page asks for)."""
    return {"$gte": min(ids), "$lte": max(ids)}


async def _grouped(db: AsyncDatabase, collection: str, ids: list[str], key: list, sums: dict) -> list[dict]:
    pipeline = [
        {"$match": {"preparationId": id_range(ids)}},
        {"$project": {"key": {"$concat": key}, **{field: 1 for field in sums}}},
        {"$group": {"_id": "$key", "count": {"$sum": 1}, **{field: {"$sum": f"${field}"} for field in sums}}},
    ]
    return await (await db[collection].aggregate(pipeline)).to_list(None)


async def chunk_stats(db: AsyncDatabase, ids: list[str]) -> dict[str, dict]:
    """Per preparation: chunk counts by state, bytes of completed chunks, and the progress of the
    chunks being built (active with a worker), in one aggregation."""
    rows = await _grouped(db, models.GENERATION, ids,
                          ["$preparationId", SEP, "$status", SEP, {"$ifNull": ["$workerId", ""]}],
                          {"size": 1, "bytesDone": 1, "rate": 1})
    stats: dict[str, dict] = {}
    for row in rows:
        preparation_id, status, worker = row["_id"].split(SEP, 2)
        entry = stats.setdefault(preparation_id, {
            "generationCompleted": 0, "generationInprogress": 0, "generationFailed": 0, "generationTotal": 0,
            "bytesDone": 0, "rate": 0})
        entry["generationTotal"] += row["count"]
        if status == Status.COMPLETED.value:
            entry["generationCompleted"] += row["count"]
            entry["bytesDone"] += row.get("size") or 0  # a sum over no values is null on the embedded server
        elif status == Status.ERROR.value:
            entry["generationFailed"] += row["count"]
        elif status == Status.ACTIVE.value and worker:
            entry["generationInprogress"] += row["count"]
            entry["bytesDone"] += row.get("bytesDone") or 0
            entry["rate"] += row.get("rate") or 0
    for entry in stats.values():
        entry["rate"] = round(entry["rate"])
    return stats


async def problem_counts(db: AsyncDatabase, ids: list[str]) -> dict[str, dict]:
    rows = await _grouped(db, models.SCAN_PROBLEMS, ids, ["$preparationId", SEP, "$kind"], {})
    counts: dict[str, dict] = {}
    for row in rows:
        preparation_id, kind = row["_id"].split(SEP, 1)
        counts.setdefault(preparation_id, {})[kind] = row["count"]
    return counts


NO_CHUNKS = {"generationCompleted": 0, "generationInprogress": 0, "generationFailed": 0, "generationTotal": 0,
             "bytesDone": 0, "rate": 0}


async def summaries(db: AsyncDatabase, scans: list[dict]) -> list[dict]:
    """The summaries of a page of preparations (in the given order): two aggregations in all."""
    if not scans:
        return []
    ids = [scan["_id"] for scan in scans]
    chunks = await chunk_stats(db, ids)
    problems = await problem_counts(db, ids)
    return [view(scan, chunks.get(scan["_id"], NO_CHUNKS), problems.get(scan["_id"], {})) for scan in scans]


def view(scan: dict, chunks: dict, problems: dict) -> dict:
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
        "errorCount": problems.get("error", 0),
        "skippedCount": problems.get("skipped", 0),
        "indexCid": scan.get("indexCid"),
        "indexError": scan.get("indexError"),
        "indexPin": scan.get("indexPin"),
        "createdAt": scan["createdAt"],
        **chunks,
    }
