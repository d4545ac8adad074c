"""commP on every core: the piece tree split into subtrees hashed by threads at once.

The payload is cut into segments of 127 * 2^k bytes. Each is a whole subtree of the piece tree
(2^k Fr32 groups, 4 leaves each), so a thread hashes it on its own (the C extension releases the
GIL, and so does os.pread) and the roots are combined above, the last segment and everything
after it padded with zero subtrees exactly as the one-thread hasher pads: the same root.
"""
from __future__ import annotations

import os
import queue as queue_module
import threading
from typing import Callable

from . import commp
from .commp_ref import GROUP_IN, GROUP_LEVEL, ZERO, group_node, node

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
                hasher = commp.bare_hasher()
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
                roots[index], got, _ = hasher.finish(level)
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
    return _combine(roots, level, size, piece_size)


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


class _Countdown:
    """Calls `done` once every hashing thread has passed it in its queue."""

    def __init__(self, count: int, done: Callable[[], None]):
        self.count = count
        self.done = done
        self.lock = threading.Lock()

    def passed(self) -> None:
        with self.lock:
            self.count -= 1
            last = self.count == 0
        if last:
            self.done()


class SegmentedCommP:
    """commP of a stream on `threads` threads, with CommP's interface (update, payload_size,
    digest(replace_prefix, piece_size)): segment k of the stream is hashed by thread k % threads.

    update() only queues views of the data: a caller that reuses a buffer calls release(done),
    and done() runs once every thread has hashed what was queued before. close() waits for the
    threads (and raises the first error) and must come before digest()."""

    def __init__(self, threads: int, segment_log2: int | None = None):
        segment_log2 = SEGMENT_LOG2 if segment_log2 is None else segment_log2
        self.segment = GROUP_IN << segment_log2
        self.level = segment_log2 + GROUP_LEVEL
        self.total = 0
        self._head = bytearray()
        self._roots: dict[int, bytes] = {}
        self._first_spine = b""
        self._last: tuple[int, object] | None = None  # the unfinished hasher of the last segment
        self._error: BaseException | None = None
        self._queues = [queue_module.SimpleQueue() for _ in range(threads)]
        self._threads = [threading.Thread(target=self._work, args=(q,), name=f"commp-{i}", daemon=True)
                         for i, q in enumerate(self._queues)]
        for t in self._threads:
            t.start()

    @property
    def payload_size(self) -> int:
        return self.total

    def update(self, data) -> None:
        view = memoryview(data).cast("B")
        if len(self._head) < GROUP_IN:
            self._head += view[:GROUP_IN - len(self._head)]
        position = 0
        while position < len(view):
            index, offset = divmod(self.total, self.segment)
            take = min(len(view) - position, self.segment - offset)
            self._queues[index % len(self._queues)].put((index, view[position:position + take]))
            position += take
            self.total += take

    def release(self, done: Callable[[], None]) -> None:
        marker = _Countdown(len(self._queues), done)
        for q in self._queues:
            q.put(marker)

    def _work(self, q) -> None:
        hasher, current = None, None
        while (item := q.get()) is not None:
            if isinstance(item, _Countdown):
                item.passed()
                continue
            if self._error is not None:
                continue
            try:
                index, view = item
                if index != current:
                    if hasher is not None:
                        self._finish_segment(current, hasher)
                    hasher, current = commp.bare_hasher(), index
                hasher.update(view)
            except BaseException as exc:  # raised by close()
                self._error = exc
        if hasher is not None and self._error is None:
            if (current + 1) * self.segment >= self.total:  # the last segment: digest() finishes it
                self._last = (current, hasher)
            else:
                self._finish_segment(current, hasher)

    def _finish_segment(self, index: int, hasher) -> None:
        root, level, spine = hasher.finish(self.level)
        assert level == self.level
        self._roots[index] = root
        if index == 0:
            self._first_spine = spine

    def close(self) -> None:
        for q in self._queues:
            q.put(None)
        for t in self._threads:
            t.join()
        if self._error is not None:
            raise self._error

    def digest(self, replace_prefix: bytes | None = None, piece_size: int | None = None) -> commp.Piece:
        count = max(1, -(-self.total // self.segment))
        if count == 1:  # the whole stream in one segment: its hasher is the one-thread hasher
            hasher = commp.bare_hasher() if self._last is None else self._last[1]
            return commp.CommP.over(hasher, self._head).digest(replace_prefix, piece_size)
        if self._last is not None:
            self._finish_segment(*self._last)
            self._last = None
        roots = [self._roots[i] for i in range(count)]
        if replace_prefix is not None:
            if len(replace_prefix) > len(self._head):
                raise ValueError("replace_prefix is longer than what was hashed (or than 127 bytes)")
            root = group_node(bytes(replace_prefix) + bytes(self._head[len(replace_prefix):]))
            for i in range(self.level - GROUP_LEVEL):
                root = node(root, self._first_spine[32 * i:32 * i + 32])
            roots[0] = root
        return _combine(roots, self.level, self.total, piece_size)


def _combine(layer: list[bytes], level: int, size: int, piece_size: int | None) -> commp.Piece:
    """The piece over whole subtrees of `level`, in order, padded with zero subtrees."""
    min_level = 0 if piece_size is None else commp.check_piece_size(piece_size).bit_length() - 1 - 5
    while len(layer) > 1 or level < min_level:
        if len(layer) % 2:
            layer.append(ZERO[level])
        layer = [node(layer[i], layer[i + 1]) for i in range(0, len(layer), 2)]
        level += 1
    padded = 32 << level
    if piece_size is not None and padded > piece_size:
        raise ValueError(f"payload of {size} bytes needs a {padded}-byte piece, more than {piece_size}")
    return commp.Piece(layer[0], padded, size)
