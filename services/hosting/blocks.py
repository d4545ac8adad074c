"""Finding a block's bytes in the CARs under car_dir: data blocks through the worker's CarBlock
index, index blocks through IndexBlock (an inline chunk's blocks from its layout, see content.py).
/ipfs answers raw bytes and leaves verification to the (trustless) client; bundles read file data
in batches through services/hosting/filedata.py."""
from __future__ import annotations

import asyncio
import logging
import os

from services.hosting import catalog, content, paths
from shared.ipld import carfile
from shared import models

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
    """The bytes of block `cid` from any CAR under car_dir (or inline chunk) that the database
    places it in, of a preparation that exists. An inline chunk whose source changed is refused
    (content.Unservable) when no other copy has the block."""
    if paths.valid_cid(cid) is None:
        return None
    refused = None
    for collection, car_key in ((CAR_BLOCKS, "dataCid"), (models.INDEX_BLOCKS, "indexCid")):
        for doc in await catalog.block_locations(db, collection, cid):
            if collection == CAR_BLOCKS:
                body = await content.body_of(db, car_dir, doc.get(car_key, ""))
            else:
                path = paths.car_path(car_dir, doc.get(car_key, ""))
                body = None if path is None else content.CarFileBody(path)
            if body is None:
                continue
            try:
                return await body.read(int(doc["offset"]), int(doc["length"]))
            except content.Unservable as exc:
                refused = exc
            except (OSError, ValueError, LookupError) as exc:  # a truncated or vanished CAR: try another copy
                log.warning("block %s unreadable in %s: %s", cid, body.name, exc)
    if refused is not None:
        raise refused
    return None
