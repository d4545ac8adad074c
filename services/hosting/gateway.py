"""The trustless gateway's CAR responses: `/ipfs/{cid}[/path]?format=car` with dag-scope and entity-bytes.

A path is resolved block by block through UnixFS directories (HAMT shards included) and through
the dataset index (DAG-CBOR, its `__parts` and inline file entries). The blocks go out in the
spec's order, depth-first pre-order with no duplicates: first those that prove the path, then
the terminal entity's. A UnixFS file is read a DAG level at a time (one `$in` query per level,
services/hosting/filedata.py) and its leaves in long spans, so a large file costs a few queries,
not one per block. The nodes the gateway itself decodes to walk a path or a DAG are verified
against their CIDs; leaves go out as read, since a trustless client verifies every block anyway
(and hashing them here too would halve the rate). Only blocks of existing preparations are
found (catalog.py), and only files inside car_dir are read (cars.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import AsyncIterator

import libipld

from services.hosting import catalog, filedata
from services.indexing import model
from shared import cars, chunkdata, models
from shared.api import InvalidParameter, NotFound
from shared.ipld import pbnode, unixfs
from shared.ipld import cid as cidlib

SCOPES = ("block", "entity", "all")
_BYTES = re.compile(r"^(-?\d{1,19}):(\*|-?\d{1,19})$")


@dataclass
class Request:
    root: bytes
    path: list[str]
    scope: str
    byte_range: tuple[int, str | int] | None  # (from, to) as given; resolved against the entity size


def parse(cid: str, path: str, query) -> Request:
    root = cars.valid_cid(cid)
    if root is None:
        raise InvalidParameter("not a CID (canonical base32 CIDv1)", cid)
    parts = [p for p in path.split("/") if p]
    scope = query.get("dag-scope", "all")
    if scope not in SCOPES:
        raise InvalidParameter("dag-scope must be block, entity or all", scope)
    byte_range = None
    if "entity-bytes" in query:
        match = _BYTES.match(query["entity-bytes"])
        if match is None:
            raise InvalidParameter("entity-bytes must be from:to (integers, to may be *)", query["entity-bytes"][:100])
        byte_range = (int(match[1]), match[2] if match[2] == "*" else int(match[2]))
        if "dag-scope" not in query:
            scope = "entity"  # entity-bytes implies it
    return Request(root, parts, scope, byte_range)


def resolve_range(byte_range, size: int) -> tuple[int, int] | None:
    """[start, end) of the entity for entity-bytes, None for an empty range (block scope)."""
    if byte_range is None:
        return 0, size
    first, last = byte_range
    start = size + first if first < 0 else first
    end = size if last == "*" else (size + last + 1 if last < 0 else last + 1)
    start, end = max(start, 0), min(end, size)
    return (start, end) if start < end else None


@dataclass
class Located:
    """A block found in the CARs: its bytes (verified), and the chunk CAR it came from, if any."""
    cid: bytes
    data: bytes
    car: filedata.Car | None


class Store:
    def __init__(self, db, car_dir: str):
        self.db = db
        self.car_dir = car_dir
        self._cars: dict[str, filedata.Car | None] = {}

    async def car(self, data_cid: str) -> filedata.Car | None:
        """A chunk's CAR: its file in car_dir, or an inline chunk's layout (shared/chunkdata.py)."""
        if data_cid not in self._cars:
            body = await catalog.body_of(self.db, self.car_dir, data_cid)
            self._cars[data_cid] = None if body is None else filedata.Car(self.db, body, data_cid)
        return self._cars[data_cid]

    async def get(self, cid: bytes) -> Located | None:
        name = cidlib.to_str(cid)
        for collection, key in ((models.CAR_BLOCKS, "dataCid"), (models.INDEX_BLOCKS, "indexCid")):
            for doc in await catalog.block_locations(self.db, collection, name):
                if collection == models.CAR_BLOCKS:
                    car = await self.car(doc.get(key, ""))
                    body = None if car is None else car.body
                else:
                    car, path = None, cars.car_path(self.car_dir, doc.get(key, ""))
                    body = None if path is None else chunkdata.CarFileBody(path)
                if body is None:
                    continue
                try:
                    data = await body.read(int(doc["offset"]), int(doc["length"]))
                    pbnode.verify(cid, data, body.name)
                except (OSError, ValueError, LookupError):
                    continue  # a damaged copy: try another
                return Located(cid, data, car)
        return None

    async def need(self, cid: bytes) -> Located:
        found = await self.get(cid)
        if found is None:
            raise NotFound("no such block", cidlib.to_str(cid))
        return found


@dataclass
class IndexFile:
    """A file entry of the dataset index: inline in its directory's block, its bytes in chunk DAGs."""
    node: dict


@dataclass
class Resolved:
    path_blocks: list[Located] = field(default_factory=list)
    terminal: Located | IndexFile | None = None


def unixfs_node(data: bytes):
    node = pbnode.decode_node(data)
    return node, pbnode.decode_unixfs(node.data)


async def _hamt_lookup(store: Store, shard: Located, name: str, out: list[Located]) -> bytes | None:
    key = name.encode("utf-8", "surrogateescape")
    node, _ = unixfs_node(shard.data)
    depth = 0
    while True:
        prefix = b"%02X" % unixfs.hamt_slot(key, depth)
        for link in node.links:
            if link.name == prefix + key:
                return link.cid
            if link.name == prefix:  # a sub-shard: one level deeper
                child = await store.need(link.cid)
                out.append(child)
                node, _ = unixfs_node(child.data)
                depth += 1
                break
        else:
            return None


async def resolve(store: Store, request: Request) -> Resolved:
    current = await store.need(request.root)
    out = Resolved()
    walked: list[str] = []
    for depth, part in enumerate(request.path):
        where = "/" + "/".join(walked)
        out.path_blocks.append(current)
        codec = pbnode.codec_of(current.cid)
        child: bytes | None = None
        if codec == cidlib.DAG_PB:
            node, fs = unixfs_node(current.data)
            if fs.type == pbnode.TYPE_DIRECTORY:
                child = next((l.cid for l in node.links if l.name == part.encode("utf-8", "surrogateescape")), None)
            elif fs.type == pbnode.TYPE_HAMT_SHARD:
                child = await _hamt_lookup(store, current, part, out.path_blocks)
            else:
                raise NotFound(f"{where} is a file, not a folder", part)
        elif codec == model.DAG_CBOR:
            node = _index_node(current)
            if node.get("__type") != "dir":
                raise NotFound(f"{where} is not a folder of the dataset index", part)
            value = await _index_lookup(store, node, part, out.path_blocks)
            if isinstance(value, dict):  # an inline file: the end of any path
                if depth != len(request.path) - 1:
                    raise NotFound(f"{where}/{part} is a file, not a folder", part)
                out.terminal = IndexFile(value)
                return out
            child = value
        else:
            raise NotFound(f"{where} is a raw block, it has no path", part)
        if child is None:
            raise NotFound("no such path", where.rstrip("/") + "/" + part)
        current = await store.need(child)
        walked.append(part)
    out.terminal = current
    return out


def _index_node(block: Located) -> dict:
    try:
        return model.decode(block.data)
    except ValueError:
        raise NotFound("not a dataset index node", cidlib.to_str(block.cid)) from None


async def _index_lookup(store: Store, node: dict, name: str, path_blocks: list[Located]):
    """The entry of an index dir: a link (bytes) or an inline file (dict) or None; the `__parts`
    blocks walked on the way are path blocks too."""
    key = model.escape(name)
    while "__parts" in node:
        firsts = [p["first"] for p in node["__parts"]]
        i = sum(1 for f in firsts if f <= key) - 1
        if i < 0:
            return None
        part = await store.need(model.link(node["__parts"][i]["link"]))
        path_blocks.append(part)
        node = _index_node(part)
    value = node.get(key)
    return value if isinstance(value, (bytes, dict)) else None


# --- the blocks of the terminal entity ---

Block = tuple[bytes, bytes]  # (cid, data)


async def file_blocks(car: filedata.Car, root: bytes, start: int, end: int) -> AsyncIterator[Block]:
    """The blocks of a UnixFS file DAG in one chunk CAR needed for its bytes [start, end), in
    depth-first pre-order. Nodes are located a level at a time; leaves read in spans."""
    # Each entry: (cid, byte offset of its content, location), children filled in per level.
    order: list[tuple[bytes, tuple[int, int]]] = []
    children: dict[bytes, list[tuple[bytes, int]]] = {}
    datas: dict[bytes, bytes] = {}
    level = [(root, 0)]
    located: dict[bytes, tuple[int, int]] = {}
    while level:
        where = await car.locate(list({cid for cid, _ in level}))
        located.update(where)
        inner = [cid for cid, _ in level if pbnode.codec_of(cid) != cidlib.RAW and cid not in datas]
        read = await filedata.read_blocks(car, [(c, where[c]) for c in dict.fromkeys(inner)])
        datas.update(zip(dict.fromkeys(inner), read))
        following = []
        for cid, offset in level:
            if pbnode.codec_of(cid) == cidlib.RAW or cid in children:
                continue
            node, fs = unixfs_node(datas[cid])
            if fs.type not in (pbnode.TYPE_FILE, pbnode.TYPE_RAW):
                raise ValueError(f"block {cidlib.to_str(cid)} is not a UnixFS file node")
            position = offset + len(fs.data)
            picked = []
            for link, size in zip(node.links, fs.blocksizes or [None] * len(node.links)):
                if size is None:
                    raise ValueError(f"UnixFS node {cidlib.to_str(cid)} has no blocksizes")
                if position < end and position + size > start or (size == 0 and start <= position < end):
                    picked.append((link.cid, position))
                position += size
            children[cid] = picked
            following.extend(picked)
        level = following

    seen: set[bytes] = set()
    stack = [root]
    while stack:
        cid = stack.pop()
        if cid in seen:
            continue
        seen.add(cid)
        order.append((cid, located[cid]))
        stack.extend(reversed([c for c, _ in children.get(cid, [])]))
    # Consecutive leaves close together in the CAR go out of one read.
    group: list[tuple[bytes, tuple[int, int]]] = []
    for cid, loc in order + [(b"", (-1, 0))]:
        if group and (not cid or cid in datas or loc[0] < group[-1][1][0] + group[-1][1][1]
                      or loc[0] - (group[-1][1][0] + group[-1][1][1]) > filedata.GAP
                      or loc[0] + loc[1] - group[0][1][0] > filedata.SPAN):
            for block in await _read_span(car, group):
                yield block
            group = []
        if not cid:
            break
        if cid in datas:
            yield cid, datas[cid]
        else:
            group.append((cid, loc))


async def _read_span(car: filedata.Car, group: list[tuple[bytes, tuple[int, int]]]) -> list[Block]:
    first = group[0][1][0]
    last = group[-1][1][0] + group[-1][1][1]
    data = memoryview(await car.body.read(first, last - first))
    return [(cid, data[offset - first:offset - first + length]) for cid, (offset, length) in group]  # views


def _links(cid: bytes, data: bytes) -> list[bytes]:
    codec = pbnode.codec_of(cid)
    if codec == cidlib.DAG_PB:
        return [link.cid for link in pbnode.decode_node(data).links]
    if codec == model.DAG_CBOR:
        out: list[bytes] = []
        _cbor_links(libipld.decode_dag_cbor(data), out)
        return out
    return []


def _cbor_links(value, out: list[bytes]) -> None:
    # The decoder gives links (tag 42) as bytes; the index holds no other byte strings.
    if isinstance(value, bytes):
        try:
            cidlib.parse(value)
            out.append(value)
        except ValueError:
            pass
    elif isinstance(value, dict):
        for item in value.values():
            _cbor_links(item, out)
    elif isinstance(value, list):
        for item in value:
            _cbor_links(item, out)


def unixfs_file_size(data: bytes) -> int:
    node, fs = unixfs_node(data)
    return fs.filesize if fs.filesize is not None else len(fs.data) + sum(fs.blocksizes)


async def entity_blocks(store: Store, request: Request, resolved: Resolved, seen: set[bytes]) -> AsyncIterator[Block]:
    terminal = resolved.terminal
    if isinstance(terminal, IndexFile):
        async for block in _index_file_blocks(store, request, terminal.node, seen):
            yield block
        return
    assert terminal is not None
    cid, codec = terminal.cid, pbnode.codec_of(terminal.cid)
    if request.scope == "block" or codec == cidlib.RAW:
        yield cid, terminal.data
        return
    if codec == cidlib.DAG_PB:
        node, fs = unixfs_node(terminal.data)
        if fs.type in (pbnode.TYPE_FILE, pbnode.TYPE_RAW) and terminal.car is not None:
            span = resolve_range(request.byte_range if request.scope == "entity" else None,
                                 unixfs_file_size(terminal.data))
            if span is None:
                yield cid, terminal.data
                return
            async for block in file_blocks(terminal.car, cid, *span):
                if block[0] not in seen:
                    seen.add(block[0])
                    yield block
            return
        if request.scope == "entity":  # a directory: its block, and a HAMT's shard blocks
            async for block in _walk(store, terminal, seen, shards_only=fs.type == pbnode.TYPE_HAMT_SHARD,
                                     stop=fs.type != pbnode.TYPE_HAMT_SHARD):
                yield block
            return
    elif request.scope == "entity":  # DAG-CBOR: entity is block (for an index dir too)
        yield cid, terminal.data
        return
    async for block in _walk(store, terminal, seen):
        yield block


async def _walk(store: Store, start: Located, seen: set[bytes], shards_only: bool = False,
                stop: bool = False) -> AsyncIterator[Block]:
    """Depth-first pre-order over every block reachable from `start`; UnixFS files on the way
    are read a level at a time from their CAR."""
    stack: list[bytes | Located] = [start]
    while stack:
        item = stack.pop()
        cid = item.cid if isinstance(item, Located) else item
        if cid in seen:
            continue
        found = item if isinstance(item, Located) else await store.need(cid)
        if pbnode.codec_of(cid) == cidlib.DAG_PB and found.car is not None and not stop:
            node, fs = unixfs_node(found.data)
            if fs.type in (pbnode.TYPE_FILE, pbnode.TYPE_RAW):
                async for block in file_blocks(found.car, cid, 0, unixfs_file_size(found.data)):
                    if block[0] not in seen:
                        seen.add(block[0])
                        yield block
                continue
        seen.add(cid)
        yield cid, found.data
        if stop:
            continue
        links = _links(cid, found.data)
        if shards_only:
            node = pbnode.decode_node(found.data)
            links = [l.cid for l in node.links if len(l.name) == 2]  # sub-shards, not entries
        stack.extend(reversed(links))


async def _index_file_blocks(store: Store, request: Request, node: dict, seen: set[bytes]) -> AsyncIterator[Block]:
    """An index file's bytes come from the UnixFS DAGs of its sources, one per chunk it spans."""
    size = int(node.get("__size", 0))
    span = (0, size) if request.scope == "all" else resolve_range(request.byte_range, size)
    if request.scope == "block" or span is None:
        return  # the file node is inline in the directory block already sent
    start, end = span
    for info in sorted(node.get("__source") or [], key=lambda s: int(s["offset"])):
        offset, length = int(info["offset"]), int(info["length"])
        if offset >= end or offset + length <= start:
            continue
        data_cid = model.link_text(info["dataCid"])
        car = await store.car(data_cid) if await catalog.chunks(store.db, "dataCid", data_cid) else None
        if car is None:
            raise LookupError(f"chunk {data_cid} is not served here")
        async for block in file_blocks(car, model.link(info["cid"]), max(start - offset, 0), min(end - offset, length)):
            if block[0] not in seen:
                seen.add(block[0])
                yield block


def roots_header(resolved: Resolved) -> str:
    cids = [cidlib.to_str(b.cid) for b in resolved.path_blocks]
    if isinstance(resolved.terminal, Located):
        cids.append(cidlib.to_str(resolved.terminal.cid))
    elif isinstance(resolved.terminal, IndexFile):
        cids += [model.link_text(s["cid"]) for s in resolved.terminal.node.get("__source") or []]
    return ",".join(dict.fromkeys(cids))
