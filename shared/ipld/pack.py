"""Pack files into one CARv1 and compute its commP in a single streaming pass.

The calling thread reads 1 MiB chunks, hashes them (hashlib releases the GIL) and writes the
CAR; a second thread runs commP over the same bytes (the C extension releases the GIL too), so
two cores are busy. Memory is bounded by a small pool of chunk buffers that go back to the
reader only once commP is done with them.
"""
import errno
import functools
import math
import os
import queue
import stat
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from . import cid as cidlib
from . import unixfs, varint
from .car import CarWriter
from .commp import CommP, check_piece_size, native_available
from .commp_threads import SegmentedCommP
from .commp_ref import GROUP_IN, padded_size
from .dagpb import Link

BUFFERS = 8
FEED_BATCH = 1 << 20  # bytes of small blocks handed to the commP thread at once
# Pieces are padded to 128/127 of the payload; a CAR also carries headers, so this is a floor.
_FR32 = 128 / GROUP_IN


class SourceChanged(Exception):
    """A source file vanished or no longer has the size/mtime recorded at scan time."""

    def __init__(self, path: str, reason: str = "changed since scan"):
        super().__init__(f"{path}: {reason}")
        self.path = path


class SourceUnreadable(Exception):
    """A source file the packer may not open or read (permissions, an I/O error): the chunk fails
    naming the file; once that is fixed, a retry packs the same bytes."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path


class PackCancelled(Exception):
    """should_stop() asked to abandon the pack."""


@dataclass(frozen=True)
class PackEntry:
    path: str  # absolute source file
    relative_path: str  # posix path inside the chunk's root directory
    start: int
    end: int
    size: int  # st_size at scan time
    mtime: float | None  # st_mtime at scan time; None skips the check
    # The directory relative_path lies in, when path is root + "/" + relative_path: then the file
    # is opened beneath it without following any symbolic link (see _open_source).
    root: str | None = None


@dataclass
class PackResult:
    data_cid: str
    piece_cid: str
    piece_size: int
    car_size: int
    car_path: str
    entry_cids: list[str]
    blocks: list[tuple[str, int, int]] | None = field(default=None, repr=False)
    direct_bytes: int = field(default=0, repr=False)  # CAR bytes written with O_DIRECT
    # (CAR offset, length) of each entry's blocks, with collect_blocks (pack_chunk only)
    entry_spans: list[tuple[int, int]] | None = field(default=None, repr=False)


def as_entry(e: Any) -> PackEntry:
    if isinstance(e, PackEntry):
        return e
    get = e.get if isinstance(e, dict) else (lambda k: getattr(e, k, None))
    size = int(get("size"))
    start = int(get("start") or 0)
    end = get("end")
    end = size if end is None else int(end)
    mtime = get("mtime")
    entry = PackEntry(str(get("path")), str(get("relative_path")), start, end, size,
                      None if mtime is None else float(mtime))
    if not 0 <= entry.start <= entry.end <= entry.size:
        raise ValueError(f"bad byte range {entry.start}-{entry.end} of {entry.size} for {entry.path}")
    return entry


class _CommPThread:
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
            elif self._error is None:
                try:
                    for part in item:
                        self.hasher.update(part)
                except BaseException as exc:  # surfaced to the packing thread by acquire/close
                    self._error = exc

    def feed(self, parts: list) -> None:
        # Small blocks are handed over a batch at a time: a queue hop (and a thread wake-up) per
        # block of a small file costs more than hashing it.
        self._pending += parts
        self._pending_bytes += sum(len(p) for p in parts)
        if self._pending_bytes >= FEED_BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._work.put(self._pending)
            self._pending, self._pending_bytes = [], 0

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


class _Packer:
    def __init__(self, fd: int | None, chunk_size: int, should_stop, collect_blocks: bool, progress=None,
                 commp_threads: int = 1, layout=None):
        self.chunk_size = chunk_size
        self.dirs: list[tuple[str, int]] = []  # open directory fds beneath an entry root, see open_source
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
        self.commp = _CommPThread(chunk_size, commp_threads)
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

    def open_source(self, e: PackEntry) -> int:
        """_source_fd(e), opening the directories beneath e.root once for all the files in them."""
        if e.root is None:
            return _source_fd(e)
        try:
            parts = e.relative_path.split("/")
            if not self.dirs or self.dirs[0][0] != e.root:
                self.close_dirs()
                self.dirs.append((e.root, os.open(e.root, os.O_RDONLY | os.O_DIRECTORY)))
            # dirs[i] holds the fd of parts[:i] (dirs[0]: the root): keep the shared prefix.
            keep = 1
            while keep < len(self.dirs) and keep <= len(parts) - 1 and self.dirs[keep][0] == parts[keep - 1]:
                keep += 1
            while len(self.dirs) > keep:
                os.close(self.dirs.pop()[1])
            for part in parts[len(self.dirs) - 1:-1]:
                self.dirs.append((part, _open_beneath(e, part, self.dirs[-1][1], last=False)))
            return _open_beneath(e, parts[-1], self.dirs[-1][1], last=True)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError, SourceChanged):
            raise
        except OSError as exc:
            raise SourceUnreadable(e.path, f"cannot be read: {exc.strerror or exc}") from exc

    def close_dirs(self) -> None:
        while self.dirs:
            os.close(self.dirs.pop()[1])

    def small_file(self, e: PackEntry) -> Link:
        """A range of one block at most: one read into a block of its own, no buffer from the pool."""
        try:
            fd = self.open_source(e)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise SourceChanged(e.path, exc.strerror or "vanished") from exc
        try:
            _check(e, os.fstat(fd))
            want = e.end - e.start
            try:
                data = os.pread(fd, want, e.start)
                while 0 < len(data) < want:  # a short read, rare on regular files
                    more = os.pread(fd, want - len(data), e.start + len(data))
                    if not more:
                        break
                    data += more
            except OSError as exc:
                raise SourceUnreadable(e.path, f"cannot be read: {exc.strerror or exc}") from exc
            if len(data) < want:
                raise SourceChanged(e.path, "shorter than at scan time")
            _check(e, os.fstat(fd))
        finally:
            os.close(fd)
        cid = cidlib.raw(data)
        self.leaf = (self.entry_index, e.start)
        self.emit(cid, data)
        if self.progress is not None:
            self.progress(want)
        return Link(cid, want, want)  # what FileBuilder makes of a file of one block

    def file(self, e: PackEntry) -> Link:
        if e.end - e.start <= self.chunk_size:
            return self.small_file(e)
        try:
            with open(self.open_source(e), "rb", buffering=0) as f:
                _check(e, os.fstat(f.fileno()))
                if hasattr(os, "posix_fadvise"):  # a larger readahead window; a hint only
                    os.posix_fadvise(f.fileno(), e.start, e.end - e.start, os.POSIX_FADV_SEQUENTIAL)
                f.seek(e.start)
                builder = unixfs.FileBuilder(self.emit)
                remaining = e.end - e.start
                while remaining:
                    buf = self.commp.acquire()
                    try:
                        want = min(self.chunk_size, remaining)
                        n = _read_full(e, f, memoryview(buf)[:want])
                        if n < want:
                            raise SourceChanged(e.path, "shorter than at scan time")
                        self.leaf = (self.entry_index, e.end - remaining)
                        builder.add_chunk(memoryview(buf)[:n])
                        if self.progress is not None:
                            self.progress(n)
                    finally:
                        self.commp.release(buf)
                    remaining -= n
                _check(e, os.fstat(f.fileno()))
                return builder.close()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise SourceChanged(e.path, exc.strerror or "vanished") from exc

    def directory(self, tree: dict, cids: dict, spans: dict | None = None) -> Link:
        links = []
        for name, child in tree.items():
            if isinstance(child, dict):
                link = self.directory(child, cids, spans)
            else:
                self.span = () if self.frames is not None else None
                self.entry_index = child[0]
                link = self.file(child[1])
                cids[child[0]] = link.cid
                if spans is not None and self.span is not None:
                    spans[child[0]] = (self.span[0], self.span[1] - self.span[0])
                self.span = None
            links.append((name.encode("utf-8", "surrogateescape"), link))
        return unixfs.directory(links, self.emit)


def _open_source(e: PackEntry) -> int:
    """A read-only fd of e.path. O_NONBLOCK: a file swapped for a FIFO after the scan would block
    open() forever (the fstat check then refuses it; reads of regular files ignore the flag).

    With e.root, each component of relative_path is opened beneath root with O_NOFOLLOW: a file or
    directory swapped for a symbolic link after the scan must not pull data from outside the
    dataset into a CAR, even when the link target has the size and mtime recorded at scan time."""
    if e.root is None:
        return os.open(e.path, os.O_RDONLY | os.O_NONBLOCK)
    fd = os.open(e.root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        parts = e.relative_path.split("/")
        for i, part in enumerate(parts):
            child = _open_beneath(e, part, fd, last=i == len(parts) - 1)
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


def _open_beneath(e: PackEntry, part: str, dir_fd: int, last: bool) -> int:
    """One component of e.relative_path in the directory dir_fd, never through a symbolic link."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | (os.O_NONBLOCK if last else os.O_DIRECTORY)
    try:
        return os.open(part, flags, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # a link (or a file) where we want none
            raise SourceChanged(e.path, "is now a symbolic link or not a directory (not followed)") from exc
        raise


def _source_fd(e: PackEntry) -> int:
    try:
        return _open_source(e)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise  # the file changed since the scan (see _Packer.file)
    except OSError as exc:  # EACCES, EPERM, EIO: reading, not writing, failed
        raise SourceUnreadable(e.path, f"cannot be read: {exc.strerror or exc}") from exc


def _read_full(e: PackEntry, f, view: memoryview) -> int:
    got = 0
    while got < len(view):
        try:
            n = f.readinto(view[got:])
        except OSError as exc:
            raise SourceUnreadable(e.path, f"cannot be read: {exc.strerror or exc}") from exc
        if not n:
            break
        got += n
    return got


def _check(e: PackEntry, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise SourceChanged(e.path, "no longer a regular file")
    if st.st_size != e.size:
        raise SourceChanged(e.path, f"size {st.st_size} != {e.size} at scan time")
    # st_mtime round-trips exactly through JSON and the database; the tolerance only absorbs
    # stores that keep microseconds.
    if e.mtime is not None and abs(st.st_mtime - e.mtime) > 1e-6:
        raise SourceChanged(e.path, "modified since scan")


def _tree(entries: list[PackEntry], empty_dirs: Iterable[str] = ()) -> dict:
    """Nested dicts of the relative paths, in sorted full-path order (ipfs-car's block order)."""
    tree: dict = {}
    items = [(e.relative_path, (i, e)) for i, e in enumerate(entries)] + [(d, None) for d in empty_dirs]
    for rel, item in sorted(items, key=lambda x: x[0]):
        parts = rel.split("/")
        if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"bad relative path {rel!r}")
        node = tree
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ValueError(f"{rel!r} is inside a file path")
        if parts[-1] in node:
            raise ValueError(f"duplicate path {rel!r}")
        node[parts[-1]] = {} if item is None else item
    return tree


def _run(out_dir: str, piece_size: int | None, should_stop, collect_blocks: bool, payload: int,
         build: Callable[[_Packer], Link], chunk_size: int, progress=None,
         min_piece_size: int | None = None, temp_prefix: str = ".pack-", commp_threads: int = 1,
         layout=None) -> tuple[Link, PackResult]:
    if piece_size is not None:
        check_piece_size(piece_size)
        if math.ceil(payload * _FR32) > piece_size:
            raise ValueError(f"{payload} bytes of data cannot fit a {piece_size}-byte piece")
    # Inline: nothing is written, the layout recorder is fed instead (see shared/ipld/layout.py).
    fd, tmp = (None, None) if layout is not None else tempfile.mkstemp(dir=out_dir, prefix=temp_prefix,
                                                                       suffix=".car.tmp")
    packer = None
    try:
        packer = _Packer(fd, chunk_size, should_stop, collect_blocks, progress, commp_threads, layout)
        try:
            root = build(packer)
        finally:
            packer.close_dirs()
        real_header = packer.car.finish(root.cid)
        packer.commp.close()
        if piece_size is None and min_piece_size and padded_size(packer.car.size) <= min_piece_size:
            piece_size = min_piece_size
        piece = packer.commp.hasher.digest(replace_prefix=real_header, piece_size=piece_size)
        data_cid = cidlib.to_str(root.cid)
        if layout is not None:
            layout.finish(real_header, packer.car.size)
            return root, PackResult(data_cid, piece.cid, piece.padded_size, packer.car.size, "", [], packer.blocks)
        os.fchmod(fd, 0o644)  # mkstemp makes it 0600; a CAR is published data, served by other users too
        os.fsync(fd)
        os.close(fd)
        fd = -1
        car_path = os.path.join(out_dir, data_cid + ".car")
        os.replace(tmp, car_path)
        _fsync_dir(out_dir)
        result = PackResult(data_cid, piece.cid, piece.padded_size, packer.car.size, car_path, [], packer.blocks,
                            packer.car.direct_bytes)
        return root, result
    except BaseException:
        if packer is not None:
            packer.car.close()  # stops the writer thread before fd goes
            try:
                packer.commp.close()
            except BaseException:
                pass  # the original error is the one worth reporting
        if fd is not None and fd >= 0:
            os.close(fd)
        try:
            if tmp is not None:
                os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _fsync_dir(path: str) -> None:
    dfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def pack_chunk(entries: Iterable[Any], out_dir: str, *, piece_size: int | None = None,
               should_stop: Callable[[], bool] | None = None, collect_blocks: bool = False,
               chunk_size: int = unixfs.CHUNK_SIZE, progress: Callable[[int], None] | None = None,
               min_piece_size: int | None = None, empty_dirs: Iterable[str] = (),
               temp_prefix: str = ".pack-", commp_threads: int = 1, layout=None) -> PackResult:
    """CAR of a directory holding every entry at its relative path, and the empty directories
    named in empty_dirs; see PackResult (entry_cids are those of the entries).

    With `layout` (a shared.ipld.layout.Recorder of the same entries) nothing is written: the
    results are those of the CAR, whose bytes the recorder describes (car_path is "").

    piece_size pads commP to that size (an error if the CAR needs more); min_piece_size pads to
    it when the CAR fits and otherwise keeps the CAR's own piece size.

    progress(n) is called from the packing thread with each count of source bytes read.
    commp_threads > 1 hashes commP on that many threads (for a host with cores to spare).
    The CAR is written as `<out_dir>/<temp_prefix>XXXXXXXX.car.tmp` until it is complete.

    Entries are dicts or objects with path, relative_path, start, end, size, mtime. The CAR is
    `<out_dir>/<dataCid>.car`, renamed into place only once complete and fsynced.
    """
    items = [as_entry(e) for e in entries]
    tree = _tree(items, empty_dirs)
    cids: dict[int, bytes] = {}
    spans: dict[int, tuple[int, int]] = {}
    payload = sum(e.end - e.start for e in items)
    _, result = _run(out_dir, piece_size, should_stop, collect_blocks, payload,
                     lambda p: p.directory(tree, cids, spans), chunk_size, progress, min_piece_size, temp_prefix,
                     commp_threads, layout)
    result.entry_cids = [cidlib.to_str(cids[i]) for i in range(len(items))]
    if collect_blocks:
        result.entry_spans = [spans[i] for i in range(len(items))]
    return result


def pack_path(path: str, out_dir: str, piece_size: int | None = None, *,
              should_stop: Callable[[], bool] | None = None, collect_blocks: bool = False,
              chunk_size: int = unixfs.CHUNK_SIZE, progress: Callable[[int], None] | None = None) -> PackResult:
    """CAR of one file (root = the file) or of a directory tree (root = the directory).

    Symlinks and special files inside a directory are skipped, not followed; hidden files and
    empty directories are kept.
    """
    st = os.stat(path)
    if stat.S_ISREG(st.st_mode):
        e = PackEntry(os.path.abspath(path), os.path.basename(path), 0, st.st_size, st.st_size, st.st_mtime)
        _, result = _run(out_dir, piece_size, should_stop, collect_blocks, e.size, lambda p: p.file(e), chunk_size,
                         progress)
        result.entry_cids = [result.data_cid]
        return result
    if not stat.S_ISDIR(st.st_mode):
        raise ValueError(f"{path}: not a regular file or directory")
    files, empty_dirs = scan_dir(path)
    tree = _tree(files, empty_dirs)
    cids: dict[int, bytes] = {}
    payload = sum(e.size for e in files)
    _, result = _run(out_dir, piece_size, should_stop, collect_blocks, payload,
                     lambda p: p.directory(tree, cids), chunk_size, progress)
    result.entry_cids = [cidlib.to_str(cids[i]) for i in range(len(files))]
    return result


def scan_dir(root: str) -> tuple[list[PackEntry], list[str]]:
    """Regular files (as whole-file entries) and empty directories under root, not following links."""
    files: list[PackEntry] = []
    empty: list[str] = []
    top = os.path.abspath(root)

    def walk(abs_dir: str, rel: str) -> None:
        with os.scandir(abs_dir) as it:
            children = list(it)
        kept = 0
        for d in children:
            child_rel = f"{rel}/{d.name}" if rel else d.name
            if d.is_dir(follow_symlinks=False):
                walk(d.path, child_rel)
                kept += 1
            elif d.is_file(follow_symlinks=False):
                st = d.stat(follow_symlinks=False)
                files.append(PackEntry(d.path, child_rel, 0, st.st_size, st.st_size, st.st_mtime, top))
                kept += 1
        if not kept and rel:
            empty.append(rel)

    walk(top, "")  # from the absolute root, so every DirEntry path is absolute too
    return files, empty

