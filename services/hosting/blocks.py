"""Finding a block's bytes in the CARs under car_dir: data blocks through the worker's CarBlock
index, index blocks through IndexBlock (an inline chunk's blocks from its layout, see shared/chunkdata.py).
/ipfs answers raw bytes and leaves verification to the (trustless) client; bundles read file data
in batches through services/hosting/filedata.py."""
from __future__ import annotations

import logging

from services.hosting import catalog
from shared import cars, chunkdata, models

log = logging.getLogger(__name__)

CAR_BLOCKS = models.CAR_BLOCKS  # written by the preparation worker, one document per block


async def find_block(db, car_dir: str, cid: str) -> bytes | None:
    """The bytes of block `cid` from any CAR under car_dir (or inline chunk) that the database
    places it in, of a preparation that exists. An inline chunk whose source changed is refused
    (chunkdata.Unservable) when no other copy has the block."""
    if cars.valid_cid(cid) is None:
        return None
    refused = None
    for collection, car_key in ((CAR_BLOCKS, "dataCid"), (models.INDEX_BLOCKS, "indexCid")):
        for doc in await catalog.block_locations(db, collection, cid):
            if collection == CAR_BLOCKS:
                body = await catalog.body_of(db, car_dir, doc.get(car_key, ""))
            else:
                path = cars.car_path(car_dir, doc.get(car_key, ""))
                body = None if path is None else chunkdata.CarFileBody(path)
            if body is None:
                continue
            try:
                return await body.read(int(doc["offset"]), int(doc["length"]))
            except chunkdata.Unservable as exc:
                refused = exc
            except (OSError, ValueError, LookupError) as exc:  # a truncated or vanished CAR: try another copy
                log.warning("block %s unreadable in %s: %s", cid, body.name, exc)
    if refused is not None:
        raise refused
    return None
