"""The source files a CAR is packed from: what was recorded of each at scan time, how it is opened
without following symbolic links, and the checks that it is still the file that was scanned."""
import errno
import os
import stat
from typing import Any, NamedTuple


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


class PackEntry(NamedTuple):
    # A tuple, not a dataclass: a chunk holds up to millions of them, and they are made in a loop.
    path: str  # absolute source file
    relative_path: str  # posix path inside the chunk's root directory
    start: int
    end: int
    size: int  # st_size at scan time
    mtime: float | None  # st_mtime at scan time; None skips the check
    # The directory relative_path lies in, when path is root + "/" + relative_path: then the file
    # is opened beneath it without following any symbolic link (see open_source).
    root: str | None = None


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


class SourceDirs:
    """The open directory fds beneath an entry root, kept from one file to the next: files come in
    sorted path order, so each directory is opened once for all the files in it."""

    def __init__(self) -> None:
        self.dirs: list[tuple[str, int]] = []  # dirs[i]: the fd of parts[:i] (dirs[0]: the root)

    def parent(self, e: PackEntry) -> int:
        """The fd of the directory holding e (which has a root), opened component by component."""
        parts = e.relative_path.split("/")
        if not self.dirs or self.dirs[0][0] != e.root:
            self.close()
            self.dirs.append((e.root, os.open(e.root, os.O_RDONLY | os.O_DIRECTORY)))
        keep = 1  # the shared prefix stays open
        while keep < len(self.dirs) and keep <= len(parts) - 1 and self.dirs[keep][0] == parts[keep - 1]:
            keep += 1
        while len(self.dirs) > keep:
            os.close(self.dirs.pop()[1])
        for part in parts[len(self.dirs) - 1:-1]:
            self.dirs.append((part, open_beneath(e, part, self.dirs[-1][1], last=False)))
        return self.dirs[-1][1]

    def open(self, e: PackEntry) -> int:
        """source_fd(e), through the directories kept open."""
        if e.root is None:
            return source_fd(e)
        try:
            return open_beneath(e, e.relative_path.rpartition("/")[2], self.parent(e), last=True)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError, SourceChanged):
            raise
        except OSError as exc:
            raise SourceUnreadable(e.path, f"cannot be read: {exc.strerror or exc}") from exc

    def close(self) -> None:
        while self.dirs:
            os.close(self.dirs.pop()[1])


def open_source(e: PackEntry) -> int:
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
            child = open_beneath(e, part, fd, last=i == len(parts) - 1)
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


def open_beneath(e: PackEntry, part: str, dir_fd: int, last: bool) -> int:
    """One component of e.relative_path in the directory dir_fd, never through a symbolic link."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | (os.O_NONBLOCK if last else os.O_DIRECTORY)
    try:
        return os.open(part, flags, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # a link (or a file) where we want none
            raise SourceChanged(e.path, "is now a symbolic link or not a directory (not followed)") from exc
        raise


def source_fd(e: PackEntry) -> int:
    try:
        return open_source(e)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise  # the file changed since the scan (see the packer)
    except OSError as exc:  # EACCES, EPERM, EIO: reading, not writing, failed
        raise SourceUnreadable(e.path, f"cannot be read: {exc.strerror or exc}") from exc


def read_full(e: PackEntry, f, view: memoryview) -> int:
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


def read_range(e: PackEntry, fd: int) -> bytes:
    """e's byte range (one block at most) of the open fd, checked against the scan before and after."""
    check(e, os.fstat(fd))
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
    check(e, os.fstat(fd))
    return data


def check(e: PackEntry, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise SourceChanged(e.path, "no longer a regular file")
    if st.st_size != e.size:
        raise SourceChanged(e.path, f"size {st.st_size} != {e.size} at scan time")
    # st_mtime round-trips exactly through JSON and the database; the tolerance only absorbs
    # stores that keep microseconds. (_smallfiles.c makes the same comparison.)
    if e.mtime is not None and abs(st.st_mtime - e.mtime) > 1e-6:
        raise SourceChanged(e.path, "modified since scan")


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
