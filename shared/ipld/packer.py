"""Writing one CAR: the UnixFS DAG of the entries' tree, block by block, with commP fed the same
bytes on a thread of its own.

The calling thread reads 1 MiB chunks, hashes them (hashlib releases the GIL) and writes the
CAR; a second thread runs commP over the same bytes (the C extension releases the GIL too), so
two cores are busy. Memory is bounded by a small pool of chunk buffers that go back to the
reader only once commP is done with them (and, for small files, by BACKLOG). Runs of small files in a directory go through the C
extension `_smallfiles` a batch at a time (open, checks, read, CID, CAR frame), when it loads.
"""
import functools
import os
import queue
import threading

from . import cid as cidlib
from . import unixfs, varint
from .car import CarWriter
from .commp import CommP, native_available
from .commp_threads import SegmentedCommP
from .dagpb import Link
from .sources import PackEntry, SourceChanged, SourceDirs, read_full, read_range, check

try:
    from ._smallfiles import AT_FDCWD, read_blocks
except ImportError:
    read_blocks = None

BUFFERS = 8
FEED_BATCH = 1 << 20  # bytes of small blocks handed to the commP thread at once
# Small files read by one call of the extension: enough to make the call's own cost vanish, few
# enough that cancellation and progress stay prompt and the batch's buffer small.
RUN_FILES = 1024
RUN_BYTES = 8 << 20
SMALL_MAX = 1 << 30  # the extension's limit on one block (chunk_size can be set larger)
BACKLOG = 64 << 20  # bytes of small blocks read ahead of commP at most


class PackCancelled(Exception):
    """should_stop() asked to abandon the pack."""


class CommPThread:
    """commP over everything the CAR writer writes, on its own thread, in write order."""

    def __init__(self, chunk_size: int, threads: int = 1):
        # With cores to spare, this thread only hands segments of the stream to `threads` hashers.
        self.segmented = threads > 1 and native_available()
        self.hasher = SegmentedCommP(threads) if self.segmented else CommP()
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        self._work: queue.SimpleQueue = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._pending: list = []
        self._pending_bytes = 0
        self._queued = 0  # bytes handed to the thread and not hashed yet
        self._hashed = threading.Condition()
        for _ in range(BUFFERS):
            self._free.put(bytearray(chunk_size))
        self._thread = threading.Thread(target=self._run, name="commp", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._work.get()) is not None:
            if isinstance(item, bytearray):  # a buffer whose bytes are all queued before it
                if self.segmented:
                    self.hasher.release(functools.partial(self._free.put, item))
                else:
                    self._free.put(item)
            else:
                if self._error is None:
                    try:
                        for part in item:
                            self.hasher.update(part)
                    except BaseException as exc:  # surfaced to the packing thread by acquire/close
                        self._error = exc
                with self._hashed:
                    self._queued -= sum(len(p) for p in item)
                    self._hashed.notify()

    def feed(self, parts: list) -> None:
        # Small blocks are handed over a batch at a time: a queue hop (and a thread wake-up) per
        # block of a small file costs more than hashing it.
        self._pending += parts
        self._pending_bytes += sum(len(p) for p in parts)
        if self._pending_bytes >= FEED_BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            with self._hashed:
                self._queued += self._pending_bytes
            self._work.put(self._pending)
            self._pending, self._pending_bytes = [], 0

    def wait_room(self, limit: int) -> None:
        """Block while more than limit bytes wait for commP: small files are read into blocks of
        their own, not the buffer pool, so this is what bounds their memory."""
        with self._hashed:
            while self._queued > limit and self._error is None and self._thread.is_alive():
                self._hashed.wait(0.5)

    def acquire(self) -> bytearray:
        if self._error is not None:
            raise self._error
        return self._free.get()

    def release(self, buf: bytearray) -> None:
        self._flush()  # every part that views buf is queued before buf goes back
        self._work.put(buf)

    def close(self) -> None:
        self._flush()
        self._work.put(None)
        self._thread.join()
        if self.segmented:
            self.segmented = False  # closed once, even when close() is called again after an error
            self.hasher.close()
        if self._error is not None:
            raise self._error


class Packer:
    def __init__(self, fd: int | None, chunk_size: int, should_stop, collect_blocks: bool, progress=None,
                 commp_threads: int = 1, layout=None):
        self.chunk_size = chunk_size
        self.dirs = SourceDirs()
        self.should_stop = should_stop
        self.progress = progress
        self.blocks: list[tuple[str, int, int]] | None = [] if collect_blocks else None
        # With the block index, each entry's CAR span too (the frames of its DAG's blocks, from the
        # first frame's start to the last one's end), so the dataset index needs no CAR read.
        self.frames: dict[bytes, tuple[int, int]] | None = {} if collect_blocks else None
        self.span: tuple | None = None  # of the entry being packed: () until its first block
        # Inline (a layout recorder, no fd): the CAR's bytes are described, not written. The
        # entry being packed and, just before a raw leaf read from it is emitted, where it was read.
        self.layout = layout
        self.entry_index = 0
        self.leaf: tuple[int, int] | None = None
        self.commp = CommPThread(chunk_size, commp_threads)
        try:
            self.car = CarWriter(fd, sink=self.commp.feed, staged=fd is not None)
        except BaseException:
            self.commp.close()
            raise
        if layout is not None:
            layout.literal(self.car.placeholder)

    def emit(self, cid: bytes, data) -> None:
        if self.should_stop is not None and self.should_stop():
            raise PackCancelled()
        offset = self.car.put(cid, data)
        if self.frames is not None:
            if offset is not None:
                frame = self.frames[cid] = (offset - len(cid) - len(varint.encode(len(cid) + len(data))),
                                            offset + len(data))
            else:  # a block written before: the file's span reaches back to it
                frame = self.frames[cid]
            if self.span is not None:
                self.span = frame if not self.span else (min(self.span[0], frame[0]), max(self.span[1], frame[1]))
        if offset is not None and self.blocks is not None:
            self.blocks.append((cidlib.to_str(cid), offset, len(data)))
        if self.layout is not None:
            if offset is not None:
                self.layout.block(offset, cid, data, self.leaf)
            self.leaf = None

    def small_file(self, e: PackEntry) -> Link:
        """A range of one block at most: one read into a block of its own, no buffer from the pool."""
        try:
            fd = self.dirs.open(e)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise SourceChanged(e.path, exc.strerror or "vanished") from exc
        try:
            data = read_range(e, fd)
        finally:
            os.close(fd)
        cid = cidlib.raw(data)
        self.leaf = (self.entry_index, e.start)
        self.emit(cid, data)
        if self.progress is not None:
            self.progress(len(data))
        return Link(cid, len(data), len(data))  # what FileBuilder makes of a file of one block

    def file(self, e: PackEntry) -> Link:
        if e.end - e.start <= self.chunk_size:
            return self.small_file(e)
        try:
            with open(self.dirs.open(e), "rb", buffering=0) as f:
                check(e, os.fstat(f.fileno()))
                if hasattr(os, "posix_fadvise"):  # a larger readahead window; a hint only
                    os.posix_fadvise(f.fileno(), e.start, e.end - e.start, os.POSIX_FADV_SEQUENTIAL)
                f.seek(e.start)
                builder = unixfs.FileBuilder(self.emit)
                remaining = e.end - e.start
                while remaining:
                    buf = self.commp.acquire()
                    try:
                        want = min(self.chunk_size, remaining)
                        n = read_full(e, f, memoryview(buf)[:want])
                        if n < want:
                            raise SourceChanged(e.path, "shorter than at scan time")
                        self.leaf = (self.entry_index, e.end - remaining)
                        builder.add_chunk(memoryview(buf)[:n])
                        if self.progress is not None:
                            self.progress(n)
                    finally:
                        self.commp.release(buf)
                    remaining -= n
                check(e, os.fstat(f.fileno()))
                return builder.close()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise SourceChanged(e.path, exc.strerror or "vanished") from exc

    def directory(self, tree: dict, cids: dict, spans: dict | None = None) -> Link:
        links: list[tuple[bytes, Link]] = []
        run: list[tuple[str, int, PackEntry]] = []  # small files in a row, for small_files()
        for name, child in tree.items():
            if not isinstance(child, dict):
                index, e = child
                if read_blocks is not None and e.end - e.start <= min(self.chunk_size, SMALL_MAX) and \
                        (not run or run[0][2].root == e.root):
                    run.append((name, index, e))
                    if len(run) >= RUN_FILES:
                        self.small_files(run, links, cids, spans)
                        run = []
                    continue
            if run:
                self.small_files(run, links, cids, spans)
                run = []
            if isinstance(child, dict):
                link = self.directory(child, cids, spans)
            else:
                link = self.one_file(child, cids, spans)
            links.append((name.encode("utf-8", "surrogateescape"), link))
        if run:
            self.small_files(run, links, cids, spans)
        return unixfs.directory(links, self.emit)

    def one_file(self, child: tuple[int, PackEntry], cids: dict, spans: dict | None) -> Link:
        self.span = () if self.frames is not None else None
        self.entry_index = child[0]
        link = self.file(child[1])
        cids[child[0]] = link.cid
        if spans is not None and self.span is not None:
            spans[child[0]] = (self.span[0], self.span[1] - self.span[0])
        self.span = None
        return link

    def small_files(self, run: list[tuple[str, int, PackEntry]], links: list, cids: dict,
                    spans: dict | None) -> None:
        """The files of run (one directory's, one block each) through the extension, in order; a
        file it could not take goes through small_file(), which raises what is wrong with it."""
        while run:
            if self.should_stop is not None and self.should_stop():
                raise PackCancelled()
            count, data = 1, run[0][2].end - run[0][2].start  # at most RUN_BYTES per call, one file at least
            while count < len(run) and data + run[count][2].end - run[count][2].start <= RUN_BYTES:
                data += run[count][2].end - run[count][2].start
                count += 1
            first = run[0][2]
            try:
                if first.root is None:
                    dir_fd, names, nofollow = AT_FDCWD, [e.path for _, _, e in run[:count]], False
                else:
                    dir_fd, names, nofollow = self.dirs.parent(first), [name for name, _, _ in run[:count]], True
            except (OSError, SourceChanged):
                done = 0  # a parent directory gone or swapped: small_file() names the problem
            else:
                done = self.frames_of(run[:count], names, dir_fd, nofollow, links, cids, spans)
            if done < count:
                name, index, e = run[done]
                links.append((name.encode("utf-8", "surrogateescape"), self.one_file((index, e), cids, spans)))
                done += 1
            run = run[done:]

    def frames_of(self, run, names, dir_fd: int, nofollow: bool, links: list, cids: dict,
                  spans: dict | None) -> int:
        self.commp.wait_room(BACKLOG)
        entries = [e for _, _, e in run]
        frames, block_cids, positions, done = read_blocks(dir_fd, names, entries, nofollow, self.car.seen)
        base = self.car.put_frames(frames)
        data = 0
        for (name, index, e), cid, pos in zip(run[:done], block_cids, positions):
            want = e.end - e.start
            if self.layout is not None and pos >= 0:  # written by this call: its frame ends at the data
                data_end = base + pos + ((cidlib.CID_LEN + want).bit_length() + 6) // 7 + cidlib.CID_LEN + want
                if want:
                    self.layout.reference(data_end - want, cid, want, (index, e.start))
                else:
                    self.layout.block(data_end, cid, b"", None)
            if self.frames is not None:
                if pos >= 0:
                    end = base + pos + ((cidlib.CID_LEN + want).bit_length() + 6) // 7 + cidlib.CID_LEN + want
                    frame = self.frames[cid] = (base + pos, end)
                    self.blocks.append((cidlib.to_str(cid), end - want, want))
                else:
                    frame = self.frames[cid]
                if spans is not None:
                    spans[index] = (frame[0], frame[1] - frame[0])
            cids[index] = cid
            links.append((name.encode("utf-8", "surrogateescape"), Link(cid, want, want)))
            data += want
        if self.progress is not None and data:
            self.progress(data)
        return done
