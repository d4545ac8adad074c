"""Streaming CARv1 writer whose root is only known at the end.

The header is `varint(len) + DAG-CBOR {"roots": [root], "version": 1}`. Every root we write is a
36-byte CIDv1 sha2-256, so the header has a fixed length: a placeholder of that length goes out
first and `finish(root)` overwrites it in place. Whoever hashes the stream (commP) sees the
placeholder and swaps it in afterwards (CommP.digest(replace_prefix=...)).

With `staged=True` the bytes are copied into a few large page-aligned buffers that a writer
thread writes while the caller goes on; the file gets O_DIRECT when its filesystem allows it, so
a multi-GiB CAR neither costs the kernel a page-cache copy nor evicts everything else. The
unaligned tail and the real header are written without O_DIRECT at finish().
"""
import errno
import fcntl
import mmap
import os
import queue
import threading
from typing import Callable

from . import cid as cidlib
from . import varint

PLACEHOLDER_ROOT = cidlib.from_str("bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi")

O_DIRECT = getattr(os, "O_DIRECT", 0)
ALIGN = 4096  # O_DIRECT offsets, lengths and memory: a multiple of any logical block size we meet
STAGE_SIZE = 1 << 20
STAGES = 8


def header(root: bytes) -> bytes:
    if len(root) != cidlib.CID_LEN:
        raise ValueError("CAR root must be a 36-byte CIDv1 sha2-256")
    # DAG-CBOR by hand: map(2) with keys in canonical order ("roots" is shorter than "version"),
    # the CID as tag 42 over bytes with the 0x00 multibase-identity prefix.
    body = (b"\xa2" + b"\x65roots" + b"\x81" + b"\xd8\x2a" + b"\x58" + bytes((len(root) + 1,)) + b"\x00" + root
            + b"\x67version" + b"\x01")
    return varint.encode(len(body)) + body


HEADER_LEN = len(header(PLACEHOLDER_ROOT))


def _set_direct(fd: int, on: bool) -> bool:
    """Turn O_DIRECT on or off for fd; False if the filesystem refuses it."""
    if not O_DIRECT:
        return False
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, (flags | O_DIRECT) if on else (flags & ~O_DIRECT))
    except OSError as exc:
        if on and exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
            return False
        raise
    return on


class _StagedWriter:
    """Appends to fd through `count` aligned buffers of `size` bytes, written by its own thread.

    Writes are sequential at the file position. O_DIRECT (if `direct`) stays on while every write
    is whole and aligned; an EINVAL on the first write or a short write turns it off for good.
    An error from the writer thread is raised by the next write() that needs a buffer, or by close().
    """

    def __init__(self, fd: int, size: int, count: int, direct: bool):
        if size % ALIGN or count < 1:
            raise ValueError("staging buffers must be a multiple of 4096 bytes")
        self._fd = fd
        self._size = size
        self.direct = _set_direct(fd, True) if direct else False
        self._wrote = False
        self.direct_bytes = 0  # bytes that went out with O_DIRECT
        self._error: BaseException | None = None
        self._abort = False
        self._maps = [mmap.mmap(-1, size) for _ in range(count)]
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        self._full: queue.SimpleQueue = queue.SimpleQueue()
        for m in self._maps[1:]:
            self._free.put(m)
        self._cur = self._maps[0]
        self._view = memoryview(self._cur)
        self._pos = 0
        self._thread = threading.Thread(target=self._run, name="car-writer", daemon=True)
        self._thread.start()

    # --- caller's thread ---

    def write(self, data) -> None:
        mv = memoryview(data)
        if mv.format != "B" or mv.ndim != 1:
            mv = mv.cast("B")
        n = len(mv)
        room = self._size - self._pos
        if n < room:
            self._view[self._pos:self._pos + n] = mv
            self._pos += n
            return
        done = 0
        while n - done >= room:
            self._view[self._pos:] = mv[done:done + room]
            done += room
            self._submit()
            room = self._size
        rest = n - done
        self._view[:rest] = mv[done:]
        self._pos = rest

    def _submit(self) -> None:
        self._view.release()
        self._full.put((self._cur, self._size, False))
        self._cur = self._free.get()
        self._view = memoryview(self._cur)
        self._pos = 0
        if self._error is not None:
            raise self._error

    def flush(self) -> None:
        """Write everything staged (the unaligned tail without O_DIRECT) and stop the thread."""
        if self._thread is None:
            raise RuntimeError("CAR writer already closed")
        self._view.release()
        self._full.put((self._cur, self._pos, True))
        self._full.put(None)
        self._join()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        """Stop the thread, dropping whatever is not written yet; never raises."""
        if self._thread is None:
            return
        self._abort = True
        self._view.release()
        self._full.put(None)
        self._join()

    def _join(self) -> None:
        self._thread.join()
        self._thread = None
        for m in self._maps:
            try:
                m.close()
            except BufferError:  # a view still alive somewhere; unmapped when it goes
                pass

    # --- writer thread ---

    def _run(self) -> None:
        while (item := self._full.get()) is not None:
            buf, n, last = item
            if self._error is None and not self._abort:
                try:
                    with memoryview(buf) as view:
                        if last:
                            aligned = n - n % ALIGN
                            self._write_all(view[:aligned])
                            if self.direct:
                                self.direct = _set_direct(self._fd, False)
                            self._write_all(view[aligned:n])
                        else:
                            self._write_all(view[:n])
                except BaseException as exc:  # surfaced to the caller by write()/flush()
                    # Without this thread's frames, which hold views of the buffer.
                    self._error = exc.with_traceback(None)
            if not last:
                self._free.put(buf)

    def _write_all(self, view: memoryview) -> None:
        while view:
            try:
                n = os.writev(self._fd, [view])
            except OSError as exc:
                if exc.errno == errno.EINVAL and self.direct and not self._wrote:
                    self.direct = _set_direct(self._fd, False)  # e.g. a filesystem that lied
                    continue
                raise
            self._wrote = True
            if self.direct:
                self.direct_bytes += n
            if n < len(view) and self.direct:
                self.direct = _set_direct(self._fd, False)  # the rest is no longer aligned
            view = view[n:]


class CarWriter:
    """Writes blocks to an open unbuffered binary file at its current start (offset 0).

    `sink`, if given, receives every byte written, in order, as a list of buffers per call:
    it is how the caller computes commP in the same pass. Blocks whose CID was already written
    are skipped.

    `staged=True` writes through aligned buffers on a writer thread, with O_DIRECT where the
    filesystem supports it (`direct_bytes` tells how much went out that way). Bytes reach the file only
    in whole buffers and at finish(); errors from the writer thread surface from a later put()
    or from finish(). A staged writer that is abandoned must be close()d before its fd is.

    With fd None nothing is written: the sink still sees every byte (an inline preparation, whose
    CAR is only ever assembled from its layout, computes the same CIDs and commP this way).
    """

    def __init__(self, fd: int | None, sink: Callable[[list], None] | None = None, *, staged: bool = False,
                 direct: bool = True, stage_size: int = STAGE_SIZE, stages: int = STAGES):
        self._fd = fd
        self._sink = sink
        self.seen: set[bytes] = set()  # CIDs of the blocks written (put_frames' caller adds its own)
        self._stage = _StagedWriter(fd, stage_size, stages, direct) if staged else None
        self._direct_bytes = 0
        self.placeholder = header(PLACEHOLDER_ROOT)
        self.size = 0
        self._write([self.placeholder])

    @property
    def direct_bytes(self) -> int:
        """How many bytes went out with O_DIRECT (complete once finish() returned)."""
        return self._direct_bytes if self._stage is None else self._stage.direct_bytes

    def _write(self, parts: list) -> None:
        if self._stage is not None:
            total = 0
            for p in parts:
                self._stage.write(p)
                total += len(p)
        elif self._fd is None:
            total = sum(len(p) for p in parts)
        else:
            total = sum(len(p) for p in parts)
            written = os.writev(self._fd, parts)
            if written < total:  # short writes are legal, if rare on regular files
                rest = memoryview(b"".join(parts))[written:]
                while rest:
                    rest = rest[os.write(self._fd, rest):]
        self.size += total
        if self._sink is not None:
            self._sink(parts)

    def put(self, cid: bytes, data) -> int | None:
        """Append a block; return the offset of its data in the CAR, or None if it was a duplicate."""
        if cid in self.seen:
            return None
        self.seen.add(cid)
        prefix = varint.encode(len(cid) + len(data)) + cid
        offset = self.size + len(prefix)
        self._write([prefix, data])
        return offset

    def put_frames(self, frames) -> int:
        """Append whole block frames laid out by the caller, whose CIDs it added to `seen`; return
        the CAR offset where they start."""
        start = self.size
        if frames:
            self._write([frames])
        return start

    def finish(self, root: bytes) -> bytes:
        """Overwrite the placeholder with the real header; return the real header bytes."""
        real = header(root)
        if self._stage is not None:
            stage, self._stage = self._stage, None
            try:
                stage.flush()
            finally:
                stage.abort()
                self._direct_bytes = stage.direct_bytes
        if self._fd is not None:
            os.pwrite(self._fd, real, 0)
        return real

    def close(self) -> None:
        """Abandon a staged writer (stops its thread); harmless after finish() or when not staged."""
        if self._stage is not None:
            stage, self._stage = self._stage, None
            stage.abort()
            self._direct_bytes = stage.direct_bytes
