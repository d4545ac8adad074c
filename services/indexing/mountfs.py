"""A read-only file system over a dataset index: what `singularity mount` exposes through FUSE.

The operations (getattr, readdir, read) are plain methods over paths, so they can be tested
without FUSE and wrapped by any binding (cli/mount.py uses mfusepy). Index nodes are fetched
once and kept; a read fetches only the blocks of the byte range asked for (trustless-gateway
`entity-bytes` CARs, or single blocks walked by their UnixFS blocksizes), each verified against
its CID, from the sources of the retriever (`--from`, or those discovery finds per piece).
"""
from __future__ import annotations

import errno
import stat
import time
from collections import OrderedDict

from services.indexing import model, sources
from services.indexing.retrieval import RetrievalError, Retriever
from shared.ipld import cid as cidlib

CACHE_BYTES = 64 << 20  # verified blocks kept for the next reads (sequential reads hit the same leaf)


class FsError(OSError):
    def __init__(self, code: int, path: str):
        super().__init__(code, f"{path}: {errno.errorcode.get(code, code)}")


class IndexFS:
    def __init__(self, retriever: Retriever, index_cid: str, methods: tuple[str, ...] = ("car", "block")):
        self.retriever = retriever
        self.root = retriever.node(cidlib.from_str(index_cid))
        self.methods = methods
        self.mounted_at = int(time.time())
        self._blocks: OrderedDict[bytes, bytes] = OrderedDict()
        self._cached = 0

    # --- the tree ---

    def _node(self, path: str) -> dict:
        node = self.root
        for part in [p for p in path.split("/") if p]:
            if node.get("__type") != "dir":
                raise FsError(errno.ENOTDIR, path)
            try:
                child = model.lookup(node, part, self.retriever.node)
            except (RetrievalError, ValueError):
                raise FsError(errno.EIO, path) from None
            if not isinstance(child, dict):
                raise FsError(errno.ENOENT, path)
            node = child
        return node

    def getattr(self, path: str) -> dict:
        node = self._node(path)
        mtime = int(node.get("__mtime", self.mounted_at))
        if node.get("__type") == "dir":
            return {"st_mode": stat.S_IFDIR | 0o555, "st_nlink": 2, "st_size": 0,
                    "st_mtime": mtime, "st_atime": mtime, "st_ctime": mtime}
        size = int(node.get("__size", 0))
        return {"st_mode": stat.S_IFREG | 0o444, "st_nlink": 1, "st_size": size, "st_blocks": (size + 511) // 512,
                "st_mtime": mtime, "st_atime": mtime, "st_ctime": mtime}

    def readdir(self, path: str) -> list[str]:
        node = self._node(path)
        if node.get("__type") != "dir":
            raise FsError(errno.ENOTDIR, path)
        names = []
        for name, _ in model.entries(node, self.retriever.node):
            try:
                names.append(model.check_name(name))
            except ValueError:
                continue  # a name no file system can hold ('..', '/'): not shown
        return [".", ".."] + names

    # --- file data ---

    def read(self, path: str, size: int, offset: int) -> bytes:
        node = self._node(path)
        if node.get("__type") != "file":
            raise FsError(errno.EISDIR, path)
        total = int(node.get("__size", 0))
        start, end = max(offset, 0), min(offset + max(size, 0), total)
        if start >= end:
            return b""
        out = bytearray(end - start)
        for info in node.get("__source") or []:
            low, length = int(info["offset"]), int(info["length"])
            a, b = max(start, low), min(end, low + length)
            if a >= b:
                continue
            data = self._range(path, info, a - low, b - low)
            out[a - start:b - start] = data
        return bytes(out)

    def _range(self, path: str, info: dict, start: int, end: int) -> bytes:
        """Bytes [start, end) of one source range's DAG, every block verified."""
        failures = []
        for source in self.retriever._range_sources(info):
            for method in self.methods:
                buffer = bytearray(end - start)
                got = 0

                def sink(position: int, data: bytes) -> None:
                    nonlocal got
                    lo, hi = max(position, start), min(position + len(data), end)
                    if lo < hi:
                        buffer[lo - start:hi - start] = data[lo - position:hi - position]
                        got += hi - lo

                try:
                    if method == "car":
                        sources.fetch_by_car(source, info, sink, None, span=(start, end))
                    else:
                        sources.walk_range(model.link(info["cid"]), lambda c: self._block(source, c), sink, start, end)
                    if got != end - start:
                        raise sources.FetchError(f"{got} of {end - start} bytes arrived")
                    self.retriever._credit(source, f"mount-{method}", end - start)
                    return bytes(buffer)
                except (sources.FetchError, ValueError, OSError) as exc:
                    self.retriever._failed(source, exc)
                    failures.append(f"{source.url} ({method}): {exc}")
                    if source.url in self.retriever.skipped:
                        break
        raise FsError(errno.EIO, f"{path} [{start}, {end}): " + "; ".join(failures or ["no source"]))

    def _block(self, source: sources.Source, cid: bytes) -> bytes:
        if cid in self._blocks:
            self._blocks.move_to_end(cid)
            return self._blocks[cid]
        data = source.block(cid)  # verified there
        self._blocks[cid] = data
        self._cached += len(data)
        while self._cached > CACHE_BYTES and self._blocks:
            _, old = self._blocks.popitem(last=False)
            self._cached -= len(old)
        return data
