"""Finding a block's bytes in the CARs under car_dir: data blocks through the worker's CarBlock
index, index blocks through IndexBlock. Reads are verified against the CID before use by the
bundle streamer; /ipfs answers raw bytes and leaves verification to the (trustless) client."""
from __future__ import annotations

import asyncio
import logging
import os

from services.hosting import catalog, paths
from shared.ipld import carfile, pbnode
from shared import models
from shared.ipld import cid as cidlib

log = logging.getLogger(__name__)

CAR_BLOCKS = models.CAR_BLOCKS  # written by the preparation worker, one document per block


async def read_at(path, offset: int, length: int) -> bytes:
    def read() -> bytes:
        fd = os.open(path, os.O_RDONLY)
        try:
            return carfile.read_exact(fd, offset, length)
        finally:
            os.close(fd)
    return await asyncio.to_thread(read)


async def find_block(db, car_dir: str, cid: str) -> bytes | None:
    """The bytes of block `cid` from any CAR under car_dir that the database places it in, of a
    preparation that exists."""
    if paths.valid_cid(cid) is None:
        return None
    for collection, car_key in ((CAR_BLOCKS, "dataCid"), (models.INDEX_BLOCKS, "indexCid")):
        for doc in await catalog.block_locations(db, collection, cid):
            path = paths.car_path(car_dir, doc.get(car_key, ""))
            if path is None:
                continue
            try:
                return await read_at(path, int(doc["offset"]), int(doc["length"]))
            except (OSError, ValueError) as exc:  # a truncated or vanished CAR: try another copy
                log.warning("block %s unreadable in %s: %s", cid, path, exc)
    return None


class ChunkBlocks:
    """Verified block reads from one chunk's CAR, located through CarBlock, or by walking the
    CAR's frames when the chunk has no CarBlock documents."""

    def __init__(self, db, path, data_cid: str):
        self.db = db
        self.path = path
        self.data_cid = data_cid
        self._frames: dict[bytes, carfile.Frame] | None = None

    async def locate(self, cids: list[bytes]) -> dict[bytes, tuple[int, int]]:
        names = {cidlib.to_str(c): c for c in cids}
        found: dict[bytes, tuple[int, int]] = {}
        if self._frames is None:
            query = {"cid": {"$in": list(names)}, "dataCid": self.data_cid}
            async for doc in self.db[CAR_BLOCKS].find(query):
                found[names[doc["cid"]]] = (int(doc["offset"]), int(doc["length"]))
        missing = [c for c in cids if c not in found]
        if missing:
            if self._frames is None:
                _, self._frames = await asyncio.to_thread(carfile.frame_map, str(self.path))
            for cid in missing:
                frame = self._frames.get(cid)
                if frame is None:
                    raise LookupError(f"block {cidlib.to_str(cid)} is not in {self.path}")
                found[cid] = (frame.offset, frame.length)
        return found

    async def read(self, cid: bytes, where: tuple[int, int]) -> bytes:
        data = await read_at(self.path, *where)
        pbnode.verify(cid, data, str(self.path))
        return data

    async def file_chunks(self, root: bytes):
        """The bytes of the UnixFS file DAG at `root`, leaf by leaf, every block verified."""
        stack = [(root, (await self.locate([root]))[root])]
        while stack:
            cid, where = stack.pop()
            data = await self.read(cid, where)
            if pbnode.codec_of(cid) == cidlib.RAW:
                yield data
                continue
            layout = pbnode.file_layout(data)
            if layout.inline:
                yield layout.inline
            located = await self.locate(layout.children)
            stack.extend(reversed([(c, located[c]) for c in layout.children]))
