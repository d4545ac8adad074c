"""A chunk's CAR bytes, from the CAR file or, for an inline chunk, assembled from its layout.

Every reader of chunk bytes (pieces, CAR downloads, blocks, the gateway, bundles, the ranking
probe's own copy) goes through a body: `read(offset, length)` for a few blocks, `send()` for a
whole range of an HTTP response (sendfile where it can). A layout body reads the source files:
each one is opened as the packer opened it (beneath the dataset root, no link followed) and its
size and mtime checked against the scan before any of its bytes are used, and again after; a file
that changed or vanished makes the chunk unservable (recorded on its GenerationRequest) and the
request is answered 409 (changed) or 410 (gone) naming the file, never with bytes that would not
match the piece CID.
"""
from __future__ import annotations

import asyncio
import errno
import os
import posixpath
import select
import stat as stat_module
from pathlib import Path
from typing import AsyncIterator

from aiohttp import web

from shared import models
from shared.api import ApiError
from shared.ipld import carfile
from shared.ipld import layout as layoutlib
from shared.ipld.pack import SourceChanged, SourceUnreadable

READ = 1 << 20  # bytes of small parts assembled per write
SENDFILE_MIN = 128 << 10  # source ranges at least this long go out with sendfile
CACHED_SEGMENTS = 4
STALL = 60.0  # seconds a client may take no data before its response is given up


class Unservable(ApiError):
    """A source file of an inline chunk changed (409) or is gone (410)."""

    def __init__(self, file: str, reason: str, status: int, chunk: dict):
        super().__init__("a source file of this chunk changed since it was prepared: it cannot be served "
                         "from the dataset any more (resume or rescan the preparation to rebuild it)",
                         {"file": file, "reason": reason, "dataCid": chunk.get("dataCid"),
                          "pieceCid": chunk.get("pieceCid"), "chunk": chunk.get("index")})
        self.status = status
        self.file = file
        self.reason = reason


class CarFileBody:
    """A CAR file on disk."""

    def __init__(self, path: Path):
        self.path = path
        self.name = str(path)
        st = path.stat()
        self.size = st.st_size
        self.mtime = st.st_mtime

    async def check(self, start: int, end: int) -> None:
        pass

    async def read(self, offset: int, length: int) -> bytes:
        def read() -> bytes:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                return carfile.read_exact(fd, offset, length)
            finally:
                os.close(fd)
        return await asyncio.to_thread(read)

    async def send(self, request: web.Request, response: web.StreamResponse, start: int, end: int) -> None:
        with open(self.path, "rb") as f:
            await _send_file(request, response, f, start, end - start, self.name)


class LayoutBody:
    """An inline chunk's CAR, assembled from its CarLayout segments and the source files."""

    def __init__(self, db, chunk: dict):
        self.db = db
        self.chunk = chunk
        self.root = chunk["path"]
        self.name = f"layout of {chunk.get('dataCid')}"
        self.size = int(chunk["carSize"])
        self.mtime = float(chunk.get("completedAt") or chunk.get("createdAt") or 0)
        self._cache: dict[int, layoutlib.Decoded] = {}

    def _query(self, start: int, end: int) -> dict:
        return {"generationId": {"$eq": self.chunk["_id"]}, "start": {"$lt": end}, "end": {"$gt": start}}

    async def segments(self, start: int, end: int) -> AsyncIterator[layoutlib.Decoded]:
        """The decoded segments covering [start, end), in order, one document at a time."""
        if start >= end:
            return
        cursor = self.db[models.CAR_LAYOUTS].find(self._query(start, end), batch_size=2).sort("start", 1)
        expected = start
        async for doc in cursor:
            seq = int(doc["seq"])
            decoded = self._cache.get(seq)
            if decoded is None:
                segment = layoutlib.Segment(seq, int(doc["start"]), int(doc["end"]),
                                            [tuple(f) for f in doc["files"]], bytes(doc["records"]))
                decoded = await asyncio.to_thread(layoutlib.decode, segment)
                if len(self._cache) >= CACHED_SEGMENTS:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[seq] = decoded
            if decoded.segment.start > expected:
                break
            expected = decoded.segment.end
            yield decoded
        if expected < end:
            raise LookupError(f"the layout of chunk {self.chunk.get('dataCid')} does not cover bytes "
                              f"{expected}-{end}")

    async def _refuse(self, file: str, exc: Exception) -> Unservable:
        gone = isinstance(exc, SourceChanged) and isinstance(exc.__cause__, FileNotFoundError)
        status = 410 if gone else 409
        reason = str(exc).removeprefix(os.path.join(self.root, file) + ": ")
        await self.db[models.GENERATION].update_one(
            {"_id": self.chunk["_id"]},
            {"$set": {"unservable": {"file": file, "reason": reason, "status": status, "at": models.now()}}})
        return Unservable(file, reason, status, self.chunk)

    def refused(self) -> Unservable | None:
        """The refusal recorded on the chunk, if it was found unservable before."""
        mark = self.chunk.get("unservable")
        if not isinstance(mark, dict):
            return None
        return Unservable(str(mark.get("file")), str(mark.get("reason")), int(mark.get("status") or 409), self.chunk)

    async def check(self, start: int, end: int) -> None:
        """Every source file the segments of [start, end) reference is as scanned: the cheap
        check (lstat: a regular file of the recorded size and mtime) before a response starts."""
        refused = self.refused()
        if refused is not None:
            raise refused
        cursor = self.db[models.CAR_LAYOUTS].find(self._query(start, end), {"files": 1}, batch_size=4)
        async for doc in cursor:
            problem = await asyncio.to_thread(_first_changed, self.root, doc["files"])
            if problem is not None:
                raise await self._refuse(*problem)

    async def _checked(self, work, *args):
        """work(*args) in a thread; a source that changed or cannot be read refuses the chunk."""
        try:
            return await asyncio.to_thread(work, *args)
        except (SourceChanged, SourceUnreadable) as exc:
            raise await self._refuse(exc.path.removeprefix(self.root.rstrip("/") + "/"), exc) from None

    async def read(self, offset: int, length: int) -> bytes:
        refused = self.refused()
        if refused is not None:
            raise refused
        parts: list[layoutlib.Piece] = []
        async for decoded in self.segments(offset, offset + length):
            parts.extend(layoutlib.pieces(decoded, offset, offset + length))
        sources = Sources(self.root)
        try:
            return await self._checked(layoutlib.assemble, parts, sources.read)
        finally:
            await self._checked(sources.close)

    async def send(self, request: web.Request, response: web.StreamResponse, start: int, end: int) -> None:
        """Bytes [start, end): long source ranges with sendfile, the rest assembled a MiB at a time."""
        socket_fd = await _writable_socket(request, response)
        sources = Sources(self.root)
        if socket_fd is not None:
            # A segment's records at a time, pushed by a thread straight to the socket: a large
            # file's leaves cost a sendfile each, not an event-loop round trip each.
            try:
                async for decoded in self.segments(start, end):
                    parts = list(layoutlib.pieces(decoded, start, end))
                    await self._checked(_push, socket_fd, parts, sources)
            finally:
                await self._checked(sources.close)
            return
        pending: list[layoutlib.Piece] = []
        size = 0
        try:
            async for decoded in self.segments(start, end):
                for part in layoutlib.pieces(decoded, start, end):
                    if isinstance(part, layoutlib.FileRange) and part.length >= SENDFILE_MIN:
                        if pending:
                            await response.write(await self._checked(layoutlib.assemble, pending, sources.read))
                            pending, size = [], 0
                        f = await self._checked(sources.file, part)
                        await _send_file(request, response, f, part.offset, part.length, part.path)
                        continue
                    pending.append(part)
                    size += len(part) if isinstance(part, memoryview) else part.length
                    if size >= READ:
                        await response.write(await self._checked(layoutlib.assemble, pending, sources.read))
                        pending, size = [], 0
            if pending:
                await response.write(await self._checked(layoutlib.assemble, pending, sources.read))
        finally:
            await self._checked(sources.close)  # the last file's check after its bytes went out


async def _writable_socket(request: web.Request, response: web.StreamResponse) -> int | None:
    """The socket of a plain TCP transport with the headers sent and nothing left in its buffer,
    for writing to it directly; None where that cannot be had (TLS, another transport)."""
    transport = request.transport
    if transport is None or transport.get_extra_info("sslcontext") is not None:
        return None
    # What loop.sendfile waits on too; while it is set the transport refuses writes, so it is reset.
    empty, reset = getattr(transport, "_make_empty_waiter", None), getattr(transport, "_reset_empty_waiter", None)
    sock = transport.get_extra_info("socket")
    if empty is None or reset is None or sock is None:
        return None
    await response.write(b"")  # sends the headers aiohttp holds back for the first body bytes
    try:
        await empty()
    finally:
        reset()
    return sock.fileno()


def _push(socket_fd: int, parts: list[layoutlib.Piece], sources: "Sources") -> None:
    """Write parts to the (non-blocking) socket, waiting for room: literal bytes and short ranges
    gathered into writes of up to READ bytes, long ranges with sendfile."""
    pending: list = []
    size = 0
    for part in parts:
        if isinstance(part, layoutlib.FileRange) and part.length >= SENDFILE_MIN:
            if pending:
                _send_all(socket_fd, b"".join(pending))
                pending, size = [], 0
            _sendfile_all(socket_fd, sources.file(part).fileno(), part.offset, part.length, part)
            continue
        pending.append(part if isinstance(part, memoryview) else sources.read(part))
        size += len(pending[-1])
        if size >= READ:
            _send_all(socket_fd, b"".join(pending))
            pending, size = [], 0
    if pending:
        _send_all(socket_fd, b"".join(pending))


def _wait_writable(fd: int) -> None:
    if not select.select([], [fd], [], STALL)[1]:
        raise TimeoutError(f"the client took no data for {STALL:.0f} s")


def _send_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            _wait_writable(fd)


def _sendfile_all(fd: int, source: int, offset: int, count: int, part: layoutlib.FileRange) -> None:
    while count:
        try:
            sent = os.sendfile(fd, source, offset, count)
        except BlockingIOError:
            _wait_writable(fd)
            continue
        if not sent:
            raise SourceChanged(part.path, "shorter than at scan time")
        offset += sent
        count -= sent


class Sources:
    """The source files one response reads, opened beneath the dataset root as the packer opens
    them (no symbolic link followed, O_NONBLOCK so a FIFO swapped in cannot block) and checked
    against the scan's size and mtime when opened and again when let go. The open file and the
    directories on its path stay open while consecutive ranges need them: a chunk of small files
    costs one open per file, a large file one open for all its leaves."""

    def __init__(self, root: str):
        self.root = root
        # dirs[i]: (name, fd) of the i-th directory of the current path, dirs[0] the root.
        self.dirs: list[tuple[str, int]] = []
        self.current: tuple[layoutlib.FileRange, object] | None = None

    def _dir(self, relative: str) -> int:
        parts = relative.split("/") if relative else []
        if not self.dirs:
            self.dirs.append(("", os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)))
        keep = 1  # the shared prefix stays open
        while keep < len(self.dirs) and keep <= len(parts) and self.dirs[keep][0] == parts[keep - 1]:
            keep += 1
        while len(self.dirs) > keep:
            os.close(self.dirs.pop()[1])
        for name in parts[len(self.dirs) - 1:]:
            self.dirs.append((name, os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW,
                                            dir_fd=self.dirs[-1][1])))
        return self.dirs[-1][1]

    def file(self, part: layoutlib.FileRange):
        """The open file of `part`, checked."""
        if self.current is not None and self.current[0].path == part.path:
            return self.current[1]
        self._let_go()
        full = os.path.join(self.root, part.path)
        directory, name = posixpath.split(part.path)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=self._dir(directory))
        except FileNotFoundError as exc:
            raise SourceChanged(full, "vanished") from exc
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise SourceChanged(full, "is now a symbolic link or not a directory (not followed)") from exc
            raise SourceUnreadable(full, f"cannot be read: {exc.strerror or exc}") from exc
        f = open(fd, "rb", buffering=0)
        try:
            _check(full, os.fstat(fd), part, "")
        except BaseException:
            f.close()
            raise
        self.current = (part, f)
        return f

    def read(self, part: layoutlib.FileRange) -> bytes:
        f = self.file(part)
        data = layoutlib.read_full(f.fileno(), part.offset, part.length)
        if len(data) != part.length:
            raise SourceChanged(os.path.join(self.root, part.path), "shorter than at scan time")
        return data

    def _let_go(self) -> None:
        if self.current is not None:
            part, f = self.current
            self.current = None
            try:
                _check(os.path.join(self.root, part.path), os.fstat(f.fileno()), part, " while it was being served")
            finally:
                f.close()

    def close(self) -> None:
        try:
            self._let_go()
        finally:
            while self.dirs:
                os.close(self.dirs.pop()[1])


def _check(full: str, st: os.stat_result, part: layoutlib.FileRange, when: str) -> None:
    if not stat_module.S_ISREG(st.st_mode):
        raise SourceChanged(full, "no longer a regular file" + when)
    if st.st_size != part.size:
        raise SourceChanged(full, f"size {st.st_size} != {part.size} at scan time" + when)
    if part.mtime is not None and abs(st.st_mtime - float(part.mtime)) > 1e-6:
        raise SourceChanged(full, "modified since scan" + when)


def _first_changed(root: str, files: list) -> tuple[str, Exception] | None:
    for path, size, mtime in files:
        full = os.path.join(root, path)
        try:
            st = os.stat(full, follow_symlinks=False)
        except FileNotFoundError as exc:
            error = SourceChanged(full, "vanished")
            error.__cause__ = exc
            return path, error
        except OSError as exc:
            return path, SourceUnreadable(full, f"cannot be read: {exc.strerror or exc}")
        if not stat_module.S_ISREG(st.st_mode):
            return path, SourceChanged(full, "no longer a regular file")
        if st.st_size != size:
            return path, SourceChanged(full, f"size {st.st_size} != {size} at scan time")
        if mtime is not None and abs(st.st_mtime - float(mtime)) > 1e-6:
            return path, SourceChanged(full, "modified since scan")
    return None


async def _send_file(request: web.Request, response: web.StreamResponse, f, offset: int, count: int,
                     name: str) -> None:
    """count bytes of the open file f from offset: sendfile, or reads where the transport cannot
    (e.g. TLS)."""
    loop = asyncio.get_running_loop()
    transport = request.transport
    if transport is None:
        raise ConnectionResetError("connection lost")
    try:
        await loop.sendfile(transport, f, offset, count)
        return
    except NotImplementedError:
        pass
    while count > 0:
        chunk = await loop.run_in_executor(None, os.pread, f.fileno(), min(READ, count), offset)
        if not chunk:
            raise ConnectionResetError(f"{name} ended early")
        await response.write(chunk)
        offset += len(chunk)
        count -= len(chunk)

