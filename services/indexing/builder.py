"""Building a preparation's index from its completed chunks, and writing it as a CAR.

Input: the GenerationRequest (one per chunk) and GenerationFile (one per file range) documents;
each range's blocks are located in its chunk's CAR, so the index can tell a client which byte span
of the piece to ask a storage provider for. Generation saves that span with the range's CID
(`carOffset`, `carLength`); for ranges saved without it (by an older version), a range of one
raw block is located through the block index (CarBlock, one query per chunk) and one of several
blocks by reading its file nodes from the CAR.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import libipld

from services.indexing import model
from shared.ipld import carfile, pbnode
from shared.ipld import car as carlib
from shared.ipld import cid as cidlib
from shared.ipld import varint


class IndexBuildError(Exception):
    """The chunks of a preparation are not consistent enough to index; the message says why."""


@dataclass
class FileEntry:
    size: int
    mtime: int | None
    sources: list[dict] = field(default_factory=list)


@dataclass
class DirEntry:
    dirs: dict[str, "DirEntry"] = field(default_factory=dict)
    files: dict[str, FileEntry] = field(default_factory=dict)

    def total(self) -> int:
        return sum(f.size for f in self.files.values()) + sum(d.total() for d in self.dirs.values())


def _seconds(mtime: float | None) -> int | None:
    return None if mtime is None else int(mtime)


def _components(relative_path: str) -> list[str]:
    parts = relative_path.split("/")
    for part in parts:
        try:
            model.check_name(part)
        except ValueError:
            raise IndexBuildError(f"unusable relativePath {relative_path!r}") from None
    return parts


class ChunkReader:
    """The frames of one chunk's CAR and reads of its dag-pb nodes."""

    def __init__(self, path: str, data_cid: str):
        self.path = path
        try:
            roots, self.frames = carfile.frame_map(path)
        except (OSError, ValueError) as exc:
            raise IndexBuildError(f"cannot read CAR {path}: {exc}") from None
        if [cidlib.to_str(r) for r in roots] != [data_cid]:
            raise IndexBuildError(f"CAR {path} has roots {[cidlib.to_str(r) for r in roots]}, expected {data_cid}")
        self.fd = os.open(path, os.O_RDONLY)

    def close(self) -> None:
        os.close(self.fd)

    def span(self, root: bytes) -> tuple[int, int]:
        """(offset, length) of the smallest CAR byte span holding every block of a file DAG."""
        low, high = None, 0
        stack = [root]
        while stack:
            cid = stack.pop()
            frame = self.frames.get(cid)
            if frame is None:
                raise IndexBuildError(f"block {cidlib.to_str(cid)} is missing from {self.path}")
            low = frame.start if low is None else min(low, frame.start)
            high = max(high, frame.end)
            if pbnode.codec_of(cid) == cidlib.DAG_PB:
                block = carfile.read_exact(self.fd, frame.offset, frame.length)
                pbnode.verify(cid, block, self.path)
                stack.extend(pbnode.file_layout(block).children)
        return low, high - low


class ChunkSpans:
    """Spans of a chunk's file DAGs: as generation saved them, else raw blocks from the saved block
    index (read at the first range that needs it) and DAGs of several blocks from the CAR (opened
    at the first one)."""

    def __init__(self, db, gen: dict, out_dir: str):
        self.db = db
        self.generation_id = gen["_id"]
        self.car_path = gen.get("carPath") or os.path.join(out_dir, f"{gen['dataCid']}.car")
        self.data_cid = gen["dataCid"]
        self.frames: dict[bytes, tuple[int, int]] | None = None  # raw block CID -> (frame start, end)
        self.reader: ChunkReader | None = None

    async def span(self, doc: dict) -> tuple[int, int]:
        if "carOffset" in doc and "carLength" in doc:
            return int(doc["carOffset"]), int(doc["carLength"])
        root = cidlib.from_str(doc["cid"])
        if self.frames is None:
            self.frames = await _raw_frames(self.db, self.generation_id)
        frame = self.frames.get(root) if pbnode.codec_of(root) == cidlib.RAW else None
        if frame is not None:
            return frame[0], frame[1] - frame[0]
        if self.reader is None:
            self.reader = ChunkReader(self.car_path, self.data_cid)
        return self.reader.span(root)

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()


async def _raw_frames(db, generation_id: str) -> dict[bytes, tuple[int, int]]:
    from shared import models

    frames = {}
    # {"$eq": ...}: a bare value would make the embedded server scan the collection.
    cursor = db[models.CAR_BLOCKS].find({"generationId": {"$eq": generation_id}},
                                        {"_id": 0, "cid": 1, "offset": 1, "length": 1}, batch_size=10_000)
    async for block in cursor:
        cid = cidlib.from_str(block["cid"])
        if pbnode.codec_of(cid) == cidlib.RAW:
            offset, length = int(block["offset"]), int(block["length"])
            frames[cid] = (offset - len(cid) - len(varint.encode(len(cid) + length)), offset + length)
    return frames


async def collect(db, preparation_id: str, generations: list[dict], out_dir: str) -> DirEntry:
    from shared import models
    from shared.models import fileversions

    root = DirEntry()
    # A path with several versions (shared/models/fileversions.py) is indexed at its newest one.
    newer = await fileversions.newer_versions(db, preparation_id)
    for gen in generations:
        reader = ChunkSpans(db, gen, out_dir)
        data_cid = cidlib.from_str(gen["dataCid"])  # once per chunk, not per file
        try:
            cursor = db[models.GENERATION_FILES].find({"generationId": {"$eq": gen["_id"]}},
                                                      batch_size=10_000).sort("order", 1)
            async for doc in cursor:
                if not fileversions.is_current(doc, newer):
                    continue
                parts = _components(doc["relativePath"])
                node = root
                for part in parts[:-1]:
                    if part in node.files:
                        raise IndexBuildError(f"{doc['relativePath']}: {part!r} is both a file and a directory")
                    node = node.dirs.setdefault(part, DirEntry())
                name = parts[-1]
                if doc.get("directory"):  # an empty directory: a node with no children
                    if name in node.files:
                        raise IndexBuildError(f"{doc['relativePath']} is both a file and a directory")
                    node.dirs.setdefault(name, DirEntry())
                    continue
                if name in node.dirs:
                    raise IndexBuildError(f"{doc['relativePath']} is both a file and a directory")
                entry = node.files.setdefault(name, FileEntry(int(doc["size"]), _seconds(doc.get("mtime"))))
                start, end = int(doc["start"]), int(doc["end"])
                car_offset, car_length = await reader.span(doc)
                entry.sources.append({
                    "cid": cidlib.from_str(doc["cid"]),  # a link: the index is one IPLD DAG
                    "selector": "/" + doc["relativePath"],
                    "offset": start,
                    "length": end - start,
                    "dataCid": data_cid,
                    "pieceCid": gen["pieceCid"],
                    "pieceSize": int(gen["pieceSize"]),
                    "carOffset": car_offset,
                    "carLength": car_length,
                })
        finally:
            reader.close()
    _check_files(root, "")
    return root


def _check_files(node: DirEntry, prefix: str) -> None:
    for name, entry in node.files.items():
        entry.sources.sort(key=lambda s: s["offset"])
        expected = 0
        for source in entry.sources:
            if source["offset"] != expected or source["length"] < 0:
                raise IndexBuildError(f"{prefix}{name}: ranges are not contiguous at byte {expected}")
            expected += source["length"]
        if expected != entry.size:
            raise IndexBuildError(f"{prefix}{name}: ranges cover {expected} of {entry.size} bytes")
    for name, child in node.dirs.items():
        _check_files(child, f"{prefix}{name}/")


Emit = Callable[[dict], bytes]


def _file_node(entry: FileEntry) -> dict:
    node = {"__type": "file", "__size": entry.size, "__source": entry.sources}
    if entry.mtime is not None:
        node["__mtime"] = entry.mtime
    return node


def _encoded_len(key: str, value) -> int:
    # A one-entry map costs one header byte more than the entry does inside a bigger map.
    return len(libipld.encode_dag_cbor({key: value})) - 1


def _pack(items: list[tuple[str, object]], budget: int) -> list[list[tuple[str, object]]]:
    groups: list[list] = [[]]
    used = 0
    for key, value in items:
        size = _encoded_len(key, value)
        if size > budget:
            raise IndexBuildError(f"index entry {model.unescape(key)!r} alone exceeds the block size limit")
        if groups[-1] and used + size > budget:
            groups.append([])
            used = 0
        groups[-1].append((key, value))
        used += size
    return groups


def encode_dir(items: list[tuple[str, object]], size: int, emit: Emit, max_block: int, extra: dict | None = None) -> bytes:
    """Emit a directory (split into parts if needed) and return its CID."""
    items = sorted(items, key=lambda kv: kv[0])
    node = {"__type": "dir", "__size": size, **(extra or {}), **dict(items)}
    if len(libipld.encode_dag_cbor(node)) <= max_block:
        return emit(node)
    # Headroom for the part's own keys ("__type": "dirpart", "__parts") and the map header.
    budget = max_block - 64
    links = [{"first": group[0][0], "link": emit({"__type": "dirpart", **dict(group)})}
             for group in _pack(items, budget)]
    while True:
        node = {"__type": "dir", "__size": size, **(extra or {}), "__parts": links}
        if len(libipld.encode_dag_cbor(node)) <= max_block:
            return emit(node)
        packed = _pack([(link["first"], link) for link in links], budget)
        links = [{"first": group[0][0], "link": emit({"__type": "dirpart", "__parts": [v for _, v in group]})}
                 for group in packed]


def encode_tree(node: DirEntry, emit: Emit, max_block: int, extra: dict | None = None) -> bytes:
    items: list[tuple[str, object]] = []
    for name, child in node.dirs.items():
        items.append((model.escape(name), encode_tree(child, emit, max_block)))
    for name, entry in node.files.items():
        items.append((model.escape(name), _file_node(entry)))
    return encode_dir(items, node.total(), emit, max_block, extra)


def write_index_car(tree: DirEntry, chunks: list[dict], out_dir: str, max_block: int = model.MAX_BLOCK - 1024
                    ) -> tuple[str, str, list[dict]]:
    """Write the index CAR as `<out_dir>/<indexCid>.car`; return (indexCid, path, block list)."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    tmp = os.path.join(out_dir, f".index-{os.getpid()}-{id(tree):x}.tmp")
    blocks: list[dict] = []
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        writer = carlib.CarWriter(fd)

        def emit(node: dict) -> bytes:
            cid, block = model.encode(node)
            if len(block) > model.MAX_BLOCK:
                raise IndexBuildError("an index block exceeds 1 MiB")
            offset = writer.put(cid, block)
            if offset is not None:
                blocks.append({"cid": cidlib.to_str(cid), "offset": offset, "length": len(block)})
            return cid

        root = encode_tree(tree, emit, max_block, {"__source": chunks})
        writer.finish(root)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    index_cid = cidlib.to_str(root)
    path = os.path.join(out_dir, f"{index_cid}.car")
    os.replace(tmp, path)
    return index_cid, path, blocks
