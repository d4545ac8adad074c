"""A sorted, streaming walk of a dataset directory that can resume after any file.

Entries of each directory are sorted by name, so the walk visits files in the lexicographic order
of their path components; resuming "after" a path is then a comparison, and whole directories
before the resume point are never opened again. Only one directory listing is in memory per level.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Iterator

Components = tuple[str, ...]


@dataclass(frozen=True)
class File:
    components: Components  # path relative to the dataset root, split on "/"
    path: str  # absolute
    size: int
    mtime: float
    # An empty directory travels through the chunks like an empty file, so that it is in the
    # chunk's CAR, the index and every retrieval; a directory with content needs no entry.
    directory: bool = False

    @property
    def relative_path(self) -> str:
        return "/".join(self.components)


@dataclass(frozen=True)
class Problem:
    """Something the walk could not take: recorded on the request, the walk goes on."""
    kind: str  # "error" (unreadable) or "skipped" (symlink, socket, device...)
    path: str
    reason: str


def printable(path: str) -> str:
    """A path as storable text: bytes that are not UTF-8 shown as \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # os.scandir decodes such bytes to lone surrogates
        return False
    return True


def walk(root: str, after: Components | None = None, key=None) -> Iterator[File | Problem]:
    """Files (and empty directories) under root in sorted order; with `after`, only those sorting
    after it, plus `after` itself (the caller decides how much of that file remains). `key` sorts
    the entries of each directory instead of their names (then without `after`)."""
    yield from _walk(root, (), tuple(after) if after else None, key or _by_name)


def _by_name(entry: os.DirEntry) -> str:
    return entry.name


def _walk(directory: str, prefix: Components, after: Components | None, key) -> Iterator[File | Problem]:
    try:
        with os.scandir(directory) as listing:
            entries = sorted(listing, key=key)
    except OSError as exc:
        yield Problem("error", directory, exc.strerror or str(exc))
        return
    if not entries and prefix:
        try:
            mtime = os.stat(directory, follow_symlinks=False).st_mtime
        except OSError as exc:
            yield Problem("error", directory, exc.strerror or str(exc))
            return
        yield File(prefix, directory, 0, mtime, directory=True)
        return
    for entry in entries:
        components = prefix + (entry.name,)
        if after is not None:
            head = after[:len(components)]
            if components < head:
                continue  # everything under it precedes the resume point
            inside = components == head
        else:
            inside = False
        if not _is_utf8(entry.name):
            # The database stores text as UTF-8 and the index names entries with it; such a name
            # would make every retry of the scan fail on the same file.
            yield Problem("error", printable(entry.path), "name is not valid UTF-8 (rename it to include it)")
            continue
        try:
            if entry.is_symlink():
                yield Problem("skipped", entry.path, "symbolic link (not followed)")
                continue
            if entry.is_dir(follow_symlinks=False):
                yield from _walk(entry.path, components, after if inside else None, key)
                continue
            info = entry.stat(follow_symlinks=False)
        except OSError as exc:
            yield Problem("error", entry.path, exc.strerror or str(exc))
            continue
        if not stat.S_ISREG(info.st_mode):
            yield Problem("skipped", entry.path, "not a regular file")
            continue
        if not os.access(entry.path, os.R_OK):
            yield Problem("error", entry.path, "permission denied")
            continue
        yield File(components, entry.path, info.st_size, info.st_mtime)
