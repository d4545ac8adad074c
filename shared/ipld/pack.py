"""Pack files into one CARv1 and compute its commP in a single streaming pass: the entry points
(a scanned chunk, a path), the directory tree of a chunk's entries, and the temporary file that
becomes `<dataCid>.car` only once complete. The CAR itself is written by packer.Packer from the
sources described in sources.py.
"""
import math
import os
import stat
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from . import cid as cidlib
from . import unixfs
from .commp import check_piece_size
from .commp_ref import GROUP_IN, padded_size
from .dagpb import Link
from .packer import PackCancelled, Packer
from .sources import PackEntry, SourceChanged, SourceUnreadable, as_entry, scan_dir

__all__ = ["PackCancelled", "PackEntry", "PackResult", "SourceChanged", "SourceUnreadable", "pack_chunk",
           "pack_path", "scan_dir"]

# Pieces are padded to 128/127 of the payload; a CAR also carries headers, so this is a floor.
_FR32 = 128 / GROUP_IN


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
         build: Callable[[Packer], Link], chunk_size: int, progress=None,
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
        packer = Packer(fd, chunk_size, should_stop, collect_blocks, progress, commp_threads, layout)
        try:
            root = build(packer)
        finally:
            packer.dirs.close()
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
