"""The bytes of many file ranges from chunk CARs, found with a few queries and read in long spans.

A bundle of thousands of small files must not cost a query and a read per file: the block
locations of a whole batch of ranges are looked up together (one `$in` query per CAR and DAG
level), then the leaves are read in CAR order, many per `pread`, since the worker writes a
chunk's files in the order a bundle lists them. Every block is verified against its CID before
its bytes are used; a chunk without CarBlock documents is located by walking its CAR's frames.
A chunk's bytes come from its body (shared/chunkdata.py): the CAR file, or for an inline
chunk the source files its layout points into.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Iterable, Union

from shared import chunkdata, models
from shared.ipld import carfile, pbnode
from shared.ipld import cid as cidlib

QUERY_BATCH = 1000  # CIDs per `$in` query
SPAN = 8 << 20  # most bytes one read covers
GAP = 64 << 10  # bytes of other blocks (directory nodes) a read may skip over rather than split


@dataclass(frozen=True)
class Leaf:
    """A raw block of file data, still to be read."""
    car: "Car"
    cid: bytes
    offset: int
    length: int


Part = Union[bytes, Leaf]


class Car:
    """One chunk's CAR: where its blocks lie, from CarBlock or, lacking those, from its frames."""

    def __init__(self, db, body: chunkdata.CarFileBody | chunkdata.LayoutBody, data_cid: str):
        self.db = db
        self.body = body
        self.path = body.name
        self.data_cid = data_cid
        self.frames: dict[bytes, carfile.Frame] | None = None

    async def locate(self, cids: list[bytes]) -> dict[bytes, tuple[int, int]]:
        names = {cidlib.to_str(c): c for c in cids}
        found: dict[bytes, tuple[int, int]] = {}
        if self.frames is None:
            listed = list(names)
            for i in range(0, len(listed), QUERY_BATCH):
                query = {"cid": {"$in": listed[i:i + QUERY_BATCH]}, "dataCid": self.data_cid}
                async for doc in self.db[models.CAR_BLOCKS].find(query, {"cid": 1, "offset": 1, "length": 1}):
                    found[names[doc["cid"]]] = (int(doc["offset"]), int(doc["length"]))
        missing = [c for c in names.values() if c not in found]
        if missing:
            if not isinstance(self.body, chunkdata.CarFileBody):
                raise LookupError(f"blocks {[cidlib.to_str(c) for c in missing[:3]]} are not in {self.path}")
            if self.frames is None:
                _, self.frames = await asyncio.to_thread(carfile.frame_map, self.path)
            for cid in missing:
                frame = self.frames.get(cid)
                if frame is None:
                    raise LookupError(f"block {cidlib.to_str(cid)} is not in {self.path}")
                found[cid] = (frame.offset, frame.length)
        return found


@dataclass(frozen=True)
class _Node:
    """A block of the DAG whose location is not known yet."""
    cid: bytes


async def resolve(roots: list[tuple[Car, bytes]]) -> list[list[Part]]:
    """For each (CAR, root CID) of a UnixFS file DAG, its content in order: inline bytes and the
    raw leaves to read. File nodes are read and verified here, a whole DAG level at a time."""
    contents: list[list] = [[_Node(cid)] for _, cid in roots]
    cars = [car for car, _ in roots]
    while True:
        pending: dict[Car, set[bytes]] = {}
        for car, parts in zip(cars, contents):
            for part in parts:
                if isinstance(part, _Node):
                    pending.setdefault(car, set()).add(part.cid)
        if not pending:
            return contents
        located = {car: await car.locate(list(cids)) for car, cids in pending.items()}
        expansions: dict[tuple[Car, bytes], list] = {}
        for car, cids in pending.items():
            inner = [(cid, located[car][cid]) for cid in cids if pbnode.codec_of(cid) != cidlib.RAW]
            blocks = await read_blocks(car, inner)
            for (cid, _), data in zip(inner, blocks):
                layout = pbnode.file_layout(data)
                expansions[(car, cid)] = ([layout.inline] if layout.inline else []) + [_Node(c) for c in layout.children]
        for index, (car, parts) in enumerate(zip(cars, contents)):
            expanded: list = []
            for part in parts:
                if not isinstance(part, _Node):
                    expanded.append(part)
                elif pbnode.codec_of(part.cid) == cidlib.RAW:
                    expanded.append(Leaf(car, part.cid, *located[car][part.cid]))
                else:
                    expanded.extend(expansions[(car, part.cid)])
            contents[index] = expanded


async def read_blocks(car: Car, blocks: list[tuple[bytes, tuple[int, int]]]) -> list[bytes]:
    """The verified bytes of a few blocks of one CAR (the file nodes of a DAG level)."""
    out = []
    for cid, (offset, length) in blocks:
        data = await car.body.read(offset, length)
        pbnode.verify(cid, data, car.path)
        out.append(data)
    return out


def spans(parts: Iterable[Part]) -> Iterable[list[Part]]:
    """Consecutive parts cut into groups whose leaves one read of one CAR can cover: same CAR,
    ascending offsets with small gaps, at most SPAN bytes from the first leaf to the last."""
    group: list[Part] = []
    first: Leaf | None = None
    last: Leaf | None = None
    for part in parts:
        if isinstance(part, Leaf):
            if first is not None and last is not None and (
                    part.car is not first.car or part.offset < last.offset + last.length
                    or part.offset - (last.offset + last.length) > GAP
                    or part.offset + part.length - first.offset > SPAN):
                yield group
                group, first = [], None
            if first is None:
                first = part
            last = part
        group.append(part)
    if group:
        yield group


async def read_span(group: list[Part]) -> bytes:
    """The bytes of one group: its leaves read with one read and verified, its inline bytes."""
    leaves = [p for p in group if isinstance(p, Leaf)]
    if not leaves:
        return b"".join(group)  # type: ignore[arg-type]
    start = leaves[0].offset
    end = leaves[-1].offset + leaves[-1].length
    data = memoryview(await leaves[0].car.body.read(start, end - start))
    return await asyncio.to_thread(_verified, group, data, start)


def _verified(group: list[Part], data: memoryview, start: int) -> bytes:
    out = []
    for part in group:
        if isinstance(part, Leaf):
            block = data[part.offset - start:part.offset - start + part.length]
            pbnode.verify(part.cid, block, part.car.path)
            out.append(block)
        else:
            out.append(part)
    return b"".join(out)


def length(parts: list[Part]) -> int:
    return sum(p.length if isinstance(p, Leaf) else len(p) for p in parts)
