"""Comparing a walk of a dataset with the newest stored version of each of its paths.

Both sides come in the same order, so they are merged like two sorted lists, with bounded memory
and a fixed number of queries per thousand paths: the stored side is read a page of documents at a
time by path range (GenerationFile by preparationId, relativePath, start: an index), the walk lists
each directory sorted by `path_order`, which makes the walked paths come in the string order of
their relative paths (a directory sorts as its name plus "/"). The one exception is an empty
directory, walked where "name/" sorts but stored where "name" does; a stored empty directory the
merge has passed waits in `pending` until the walk is past the place it would come.
"""
from __future__ import annotations

import asyncio
import os
from collections import deque
from dataclasses import dataclass

from services.worker.walk import File, Problem
from shared import models
from shared.models import fileversions

PAGE = 5000  # stored documents per query


def path_order(entry: os.DirEntry) -> str:
    try:
        return entry.name + "/" if entry.is_dir(follow_symlinks=False) else entry.name
    except OSError:
        return entry.name


@dataclass(frozen=True)
class Versioned(File):
    """A walked file to place, as this version of its path."""
    version: int = 1


@dataclass(frozen=True)
class Stored:
    """The newest stored version of a path."""
    path: str
    version: int
    deleted: bool
    directory: bool
    size: int
    mtime: float | None
    covered: int  # bytes from 0 that the version's ranges cover without a gap


def stored_of(group: list[dict]) -> Stored:
    """The newest version among the documents of one path."""
    if len(group) == 1:  # most paths: one version of one range
        doc = group[0]
        covered = doc["end"] if doc["start"] == 0 else 0
        return Stored(doc["relativePath"], fileversions.version_of(doc), bool(doc.get("deleted")),
                      bool(doc.get("directory")), doc["size"], doc.get("mtime"), covered)
    ranges = fileversions.newest_ranges(group)
    covered = 0
    for doc in ranges:
        if doc["start"] <= covered:
            covered = max(covered, doc["end"])
    first = ranges[0]
    return Stored(first["relativePath"], fileversions.version_of(first), bool(first.get("deleted")), bool(first.get("directory")),
                  first["size"], first.get("mtime"), covered)


def unchanged(stored: Stored, file: File) -> bool:
    if stored.deleted or stored.directory != file.directory:
        return False
    # An empty directory is the same while it stays one; its mtime moves with any entry made
    # and removed in it.
    return file.directory or (stored.size == file.size and stored.mtime == file.mtime)


def to_place(stored: Stored | None, file: File) -> tuple[Versioned, int] | None:
    """What of `file` to pack, from which byte, as which version; None when it is stored already."""
    if stored is None:
        return _as(file, 1), 0
    if not unchanged(stored, file):
        return _as(file, stored.version + 1), 0
    if not file.directory and stored.covered < stored.size:
        # The rest of a version whose placing was cut short (a killed rescan, a grown file).
        return _as(file, stored.version), stored.covered
    return None


def _as(file: File, version: int) -> Versioned:
    return Versioned(file.components, file.path, file.size, file.mtime, file.directory, version)


class StoredReader:
    """The newest stored version of every path of a preparation, in relativePath order, read a
    page at a time."""

    def __init__(self, db, preparation_id: str):
        self.collection = db[models.GENERATION_FILES]
        self.preparation_id = preparation_id
        self.buffer: deque[Stored] = deque()
        self.next_from: str | None = None
        self.done = False
        self.limit = PAGE
        self.queries = 0
        self.ahead: asyncio.Future | None = None  # the next page, asked while this one is compared

    def query(self, start: str | None, limit: int):
        query: dict = {"preparationId": {"$eq": self.preparation_id}}
        if start is not None:
            query["relativePath"] = {"$gte": start}
        self.queries += 1
        return self.collection.find(query, {"_id": 0, "relativePath": 1, "version": 1, "deleted": 1, "directory": 1,
                                            "size": 1, "mtime": 1, "start": 1, "end": 1}, batch_size=limit
                                    ).sort([("relativePath", 1), ("start", 1)]).limit(limit).to_list(None)

    async def page(self) -> None:
        """Read the next page into the buffer (nothing once every path is read)."""
        while not self.done:
            ahead, self.ahead = self.ahead, None
            docs = await (ahead or self.query(self.next_from, self.limit))
            if len(docs) < self.limit:
                self.done = True
            else:
                # The last path may go on in the next page: read it again from there.
                last = docs[-1]["relativePath"]
                docs = [d for d in docs if d["relativePath"] != last]
                if not docs:
                    self.limit *= 2  # one path with more ranges and versions than a page
                    continue
                self.next_from = last
                # The server reads the next page while this one is compared with the walk.
                self.ahead = asyncio.ensure_future(self.query(self.next_from, self.limit))
            group: list[dict] = []
            for doc in docs:
                if group and doc["relativePath"] != group[0]["relativePath"]:
                    self.buffer.append(stored_of(group))
                    group = []
                group.append(doc)
            if group:
                self.buffer.append(stored_of(group))
            return

    async def close(self) -> None:
        if self.ahead is not None:
            self.ahead.cancel()
            await asyncio.gather(self.ahead, return_exceptions=True)
            self.ahead = None


class Compare:
    """Feed it the walk; it says what to place and collects the paths found deleted."""

    def __init__(self, reader: StoredReader, root: str):
        self.reader = reader
        self.root = root.rstrip(os.sep) + os.sep
        self.pending: dict[str, Stored] = {}
        self.kept: list[str] = []  # folders the walk could not read: what is stored under them stays
        self.deleted: list[Stored] = []
        self.gone: dict[str, Stored] = {}  # files just found deleted, which the walk may meet as folders
        self.counts = {"added": 0, "changed": 0, "unchanged": 0, "deleted": 0}

    @staticmethod
    def position(item: File) -> str:
        return item.relative_path + "/" if item.directory else item.relative_path

    async def before(self, batch: list) -> None:
        """Read the stored paths a batch of walked items needs. What sorts before the whole batch
        is passed page by page, so a long run of deleted paths never fills memory."""
        paths = [i.relative_path for i in batch if isinstance(i, File)]
        paths += [rel for i in batch if isinstance(i, Problem) and (rel := self.relative(i.path))]
        if not paths:
            return
        low, bound = min(paths), max(paths) + "/"
        buffer = self.reader.buffer
        while not self.reader.done and (not buffer or buffer[-1].path <= bound):
            await self.reader.page()
            while buffer and buffer[0].path < low:
                self._passed(buffer.popleft())

    def relative(self, path: str) -> str | None:
        return path[len(self.root):] if path.startswith(self.root) else None

    def walked(self, item: File) -> tuple[Versioned, int] | None:
        position = self.position(item)
        self._pass_before(item.relative_path, position)
        buffer = self.reader.buffer
        if buffer and buffer[0].path == item.relative_path:
            stored = buffer.popleft()
        else:
            stored = self.pending.pop(item.relative_path, None)
            if stored is None and (gone := self.gone.pop(item.relative_path, None)) is not None:
                stored = Stored(gone.path, gone.version + 1, True, False, 0, None, 0)  # its tombstone
        placed = to_place(stored, item)
        if placed is None:
            self.counts["unchanged"] += 1
        else:
            self.counts["added" if stored is None or stored.deleted else "changed"] += 1
        return placed

    def problem(self, item: Problem) -> None:
        """An entry the walk could not take: an unreadable file or folder keeps what is stored of it
        (it is not known to be gone); a symlink or special file is not part of the dataset."""
        relative = self.relative(item.path)
        if relative is None or item.kind != "error":
            return
        self._pass_before(relative, relative)
        buffer = self.reader.buffer
        if buffer and buffer[0].path == relative:
            buffer.popleft()
        self.pending.pop(relative, None)
        self.kept.append(relative + "/")

    def _pass_before(self, path: str, position: str) -> None:
        buffer = self.reader.buffer
        while buffer and buffer[0].path < path:
            self._passed(buffer.popleft())
        if self.pending:
            for name in [p for p in self.pending if p + "/" < position]:
                self._gone(self.pending.pop(name))
        if self.gone:
            for name in [p for p in self.gone if p + "/" < position]:
                del self.gone[name]

    def _passed(self, stored: Stored) -> None:
        if stored.deleted:
            return
        if stored.directory:
            self.pending[stored.path] = stored  # the walk may still come to it
        else:
            self._gone(stored)

    def _gone(self, stored: Stored) -> None:
        if any(stored.path.startswith(prefix) for prefix in self.kept):
            return
        self.deleted.append(stored)
        self.counts["deleted"] += 1
        if not stored.directory:
            self.gone[stored.path] = stored

    async def finish_page(self) -> bool:
        """After the walk: pass the stored paths it never reached, a page at a time. False once
        every one is passed."""
        buffer = self.reader.buffer
        while buffer:
            self._passed(buffer.popleft())
        if not self.reader.done:
            await self.reader.page()
            return True
        for stored in list(self.pending.values()):
            self._gone(stored)
        self.pending.clear()
        return False


async def newest_of_paths(db, preparation_id: str, paths: list[str]) -> dict[str, Stored]:
    """The newest stored version of a few paths (a thousand per query)."""
    found: dict[str, Stored] = {}
    paths = sorted(set(paths))
    for i in range(0, len(paths), 1000):
        docs = await db[models.GENERATION_FILES].find(
            {"preparationId": {"$eq": preparation_id}, "relativePath": {"$in": paths[i:i + 1000]}}).to_list(None)
        groups: dict[str, list[dict]] = {}
        for doc in docs:
            groups.setdefault(doc["relativePath"], []).append(doc)
        found.update({path: stored_of(group) for path, group in groups.items()})
    return found
