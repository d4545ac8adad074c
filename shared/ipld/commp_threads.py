"""commP of a file on every core: the piece tree split into subtrees hashed by threads at once.

The payload is cut into segments of 127 * 2^k bytes. Each is a whole subtree of the piece tree
(2^k Fr32 groups, 4 leaves each), so a thread hashes it on its own (the C extension releases the
GIL, and so does os.pread) and the roots are combined above, the last segment and everything
after it padded with zero subtrees exactly as the one-thread hasher pads: the same root.
"""
from __future__ import annotations

import os
import threading
from typing import Callable

from . import commp
from .commp_ref import GROUP_IN, GROUP_LEVEL, ZERO, node

SEGMENT_LOG2 = 17  # 2^17 groups: segments of 15.9 MiB, subtrees of level 19
READ = 4 << 20


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def commp_of_file(fd: int, size: int, piece_size: int | None = None, threads: int | None = None,
                  progress: Callable[[int], None] | None = None, segment_log2: int = SEGMENT_LOG2) -> commp.Piece:
    """Piece of the first `size` bytes of fd (read with pread: the file position is not used)."""
    threads = cores() if threads is None else threads
    segment = GROUP_IN << segment_log2
    count = -(-size // segment)
    if threads < 2 or count < 2 or not commp.native_available():
        return _one_thread(fd, size, piece_size, progress)
    level = segment_log2 + GROUP_LEVEL
    roots: list[bytes | None] = [None] * count
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(first: int) -> None:
        buf = bytearray(READ)
        try:
            for index in range(first, count, threads):
                hasher = commp.CommP()
                position, end = index * segment, min(size, (index + 1) * segment)
                while position < end and not errors:
                    n = os.preadv(fd, [memoryview(buf)[:min(READ, end - position)]], position)
                    if n == 0:
                        raise OSError(f"file shorter than {size} bytes")
                    hasher.update(memoryview(buf)[:n])
                    position += n
                    if progress is not None:
                        with lock:
                            progress(n)
                # A short last segment is padded with zero subtrees up to the segment's level.
                roots[index], got, _ = hasher._h.finish(level)
                assert got == level
        except BaseException as exc:  # raised by the caller once every thread stopped
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(t,), name=f"commp-{t}", daemon=True)
            for t in range(min(threads, count))]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
    min_level = 0 if piece_size is None else commp.check_piece_size(piece_size).bit_length() - 1 - 5
    layer = roots
    while len(layer) > 1 or level < min_level:
        if len(layer) % 2:
            layer.append(ZERO[level])
        layer = [node(layer[i], layer[i + 1]) for i in range(0, len(layer), 2)]
        level += 1
    padded = 32 << level
    if piece_size is not None and padded > piece_size:
        raise ValueError(f"payload of {size} bytes needs a {padded}-byte piece, more than {piece_size}")
    return commp.Piece(layer[0], padded, size)


def _one_thread(fd: int, size: int, piece_size: int | None, progress) -> commp.Piece:
    hasher = commp.CommP()
    buf = bytearray(READ)
    position = 0
    while position < size:
        n = os.preadv(fd, [memoryview(buf)[:min(READ, size - position)]], position)
        if n == 0:
            raise OSError(f"file shorter than {size} bytes")
        hasher.update(memoryview(buf)[:n])
        position += n
        if progress is not None:
            progress(n)
    return hasher.digest(piece_size=piece_size)
