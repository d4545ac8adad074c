"""Versions of a dataset's files (GenerationFile documents).

A dataset that changes keeps every version of a path: each GenerationFile carries the `version`
of its path it belongs to (absent: 1, what a first scan writes), and a path found deleted by a
rescan gets a tombstone, a GenerationFile of the next version with `deleted: true` and no chunk
(`generationId` None). The file mapping lists every version with its chunk; the dataset index,
bundles and retrieval use the newest version of each path and leave out deleted ones.

A tombstone's `_id` is made of the preparation, version and path, so writing it twice (a rescan
killed and run again) stores it once.
"""
from __future__ import annotations

from typing import Iterable, Iterator

from shared.models.preparation import GENERATION_FILES


def version_of(doc: dict) -> int:
    return int(doc.get("version") or 1)


def tombstone(preparation_id: str, relative_path: str, version: int) -> dict:
    return {"_id": f"{preparation_id}:{version}:{relative_path}", "preparationId": preparation_id,
            "generationId": None, "relativePath": relative_path, "version": version, "deleted": True,
            "size": 0, "mtime": None, "start": 0, "end": 0}


def newest(docs: Iterable[dict]) -> Iterator[list[dict]]:
    """From documents sorted by relativePath, the ranges of each path's newest version (its
    documents, by start), paths in order; deleted paths are left out."""
    group: list[dict] = []
    for doc in docs:
        if group and doc["relativePath"] != group[0]["relativePath"]:
            yield from _newest_of(group)
            group = []
        group.append(doc)
    if group:
        yield from _newest_of(group)


def _newest_of(group: list[dict]) -> Iterator[list[dict]]:
    ranges = newest_ranges(group)
    if not any(d.get("deleted") for d in ranges):
        yield ranges


def newest_ranges(group: list[dict]) -> list[dict]:
    """Of the documents of one path, those of its newest version (a tombstone too), by start."""
    top = max(version_of(d) for d in group)
    return sorted((d for d in group if version_of(d) == top), key=lambda d: d["start"])


async def newer_versions(db, preparation_id: str) -> dict[str, tuple[int, bool]]:
    """path -> (newest version, deleted) for the paths of a preparation that have more than one
    version: only documents of version 2 or more are read (the server filters them), so the cost
    follows the changes, not the size of the dataset. Paths not in it have version 1 only."""
    newest_of: dict[str, tuple[int, bool]] = {}
    cursor = db[GENERATION_FILES].find({"preparationId": {"$eq": preparation_id}, "version": {"$gte": 2}},
                                       {"relativePath": 1, "version": 1, "deleted": 1}, batch_size=10_000)
    async for doc in cursor:
        seen = newest_of.get(doc["relativePath"])
        version = version_of(doc)
        if seen is None or version > seen[0]:
            newest_of[doc["relativePath"]] = (version, bool(doc.get("deleted")))
    return newest_of


def is_current(doc: dict, newer: dict[str, tuple[int, bool]]) -> bool:
    """Whether a chunk's document belongs to the newest version of its path (see newer_versions)."""
    seen = newer.get(doc["relativePath"])
    return seen is None or (version_of(doc) == seen[0] and not seen[1])
