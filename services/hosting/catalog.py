"""What the hosting service may serve: the CARs, pieces and blocks of preparations that exist.

A file in car_dir is not enough: after a preparation is removed its CARs stay on disk (and a
removal interrupted half-way can leave its chunk records behind), yet none of it may be served.
Each lookup goes by an indexed field (GenerationRequest.dataCid / pieceCid, CarBlock.cid,
IndexBlock.cid), then checks the owning preparations by _id in one query: never a scan.
"""
from __future__ import annotations

import os
from pathlib import Path

from shared import cars, chunkdata, models
from shared.roots import inside_roots

# Copies of one CID looked at per request: the same bytes prepared in a few datasets.
MAX_COPIES = 8


async def live(db, docs: list[dict]) -> list[dict]:
    """The documents among `docs` whose preparation (`preparationId`) still exists."""
    ids = list({doc.get("preparationId") for doc in docs if doc.get("preparationId")})
    if not ids:
        return []
    found = {scan["_id"] async for scan in db[models.SCANNING].find({"_id": {"$in": ids}}, {"_id": 1})}
    return [doc for doc in docs if doc.get("preparationId") in found]


async def chunks(db, field: str, cid: str) -> list[dict]:
    """Completed chunks of existing preparations whose `field` (dataCid or pieceCid) is `cid`."""
    docs = await db[models.GENERATION].find(
        {field: cid, "status": models.Status.COMPLETED.value}).limit(MAX_COPIES).to_list(None)
    return await live(db, docs)


def chunk_car(car_dir: str, roots: list[str], chunk: dict) -> Path | None:
    """Where a completed chunk's CAR is: `<car_dir>/<dataCid>.car`, or for a CAR file imported by a
    replication request the path it was registered with, served only while that path is still a
    regular file inside deal_preparation_service.dataset_roots and no symlink leads elsewhere."""
    imported = chunk.get("importedCar")
    if not imported:
        return cars.car_path(car_dir, chunk.get("dataCid") or "")
    if not isinstance(imported, str) or os.path.realpath(imported) != imported or not inside_roots(imported, roots):
        return None
    return Path(imported) if os.path.isfile(imported) else None


def chunk_body(db, car_dir: str, roots: list[str], chunk: dict
               ) -> chunkdata.CarFileBody | chunkdata.LayoutBody | None:
    """A completed chunk's CAR: its file (chunk_car), else for an inline chunk its layout."""
    path = chunk_car(car_dir, roots, chunk)
    if path is not None:
        return chunkdata.CarFileBody(path)
    if chunk.get("inline") and chunk.get("carSize") is not None and not chunk.get("importedCar"):
        return chunkdata.LayoutBody(db, chunk)
    return None


async def car_file(db, car_dir: str, cid: str, roots: list[str] = ()
                   ) -> chunkdata.CarFileBody | chunkdata.LayoutBody | None:
    """`<car_dir>/<cid>.car` when it is a completed chunk's CAR or the current index CAR of an
    existing preparation (an imported CAR: its own path, see chunk_car; an inline chunk: its layout)."""
    if cars.valid_cid(cid) is None:
        return None
    found = await chunks(db, "dataCid", cid)
    for chunk in found:
        if chunk.get("importedCar") or chunk.get("inline"):
            body = chunk_body(db, car_dir, list(roots), chunk)
            if body is not None:
                return body
    if not found:
        # An index CAR's root block is the index CID itself.
        roots = await db[models.INDEX_BLOCKS].find({"cid": cid, "indexCid": cid}).limit(MAX_COPIES).to_list(None)
        if not await live(db, roots):
            return None
    path = cars.car_path(car_dir, cid)
    return None if path is None else chunkdata.CarFileBody(path)


async def block_locations(db, collection: str, cid: str) -> list[dict]:
    """Where block `cid` lies in CARs of existing preparations, by `collection` (CarBlock or IndexBlock)."""
    docs = await db[collection].find({"cid": cid}).limit(MAX_COPIES).to_list(None)
    return await live(db, docs)


async def body_of(db, car_dir: str, data_cid: str) -> chunkdata.CarFileBody | chunkdata.LayoutBody | None:
    """A chunk's CAR by its dataCid: `<car_dir>/<dataCid>.car`, else the layout of the completed
    inline chunk of an existing preparation with that dataCid."""
    path = cars.car_path(car_dir, data_cid)
    if path is not None:
        return chunkdata.CarFileBody(path)
    for chunk in await chunks(db, "dataCid", data_cid):
        if chunk.get("inline") and chunk.get("carSize") is not None:
            return chunkdata.LayoutBody(db, chunk)
    return None
