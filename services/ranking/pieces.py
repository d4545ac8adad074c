"""Our own copy of a piece: the completed chunk's CAR (its file, or for an inline chunk its layout
and the source files), then zeros to the unpadded size.

The same bytes the hosting service serves at /piece/{pieceCid}, read here to check what a
provider returns.
"""
from __future__ import annotations

from dataclasses import dataclass

from shared import chunkdata, models
from shared.cars import car_path, unpadded

_BATCH = 500


@dataclass(frozen=True)
class LocalPiece:
    piece_cid: str
    body: chunkdata.CarFileBody | chunkdata.LayoutBody
    car_size: int
    size: int  # unpadded piece size: what /piece/{pieceCid} serves


async def locate_many(db, car_dir: str, piece_cids: set[str]) -> dict[str, LocalPiece]:
    """The pieces among `piece_cids` whose CAR file we still hold (one query per 500 pieces)."""
    found: dict[str, LocalPiece] = {}
    wanted = sorted(piece_cids)
    for i in range(0, len(wanted), _BATCH):
        cursor = db[models.GENERATION].find(
            {"pieceCid": {"$in": wanted[i:i + _BATCH]}, "status": models.Status.COMPLETED.value},
            {"pieceCid": 1, "dataCid": 1, "carSize": 1, "pieceSize": 1, "inline": 1, "unservable": 1, "path": 1,
             "index": 1, "completedAt": 1})
        async for gen in cursor:
            piece = gen.get("pieceCid")
            if piece in found or not gen.get("pieceSize") or gen.get("carSize") is None:
                continue
            path = car_path(car_dir, gen.get("dataCid") or "")
            body: chunkdata.CarFileBody | chunkdata.LayoutBody | None = None
            if path is not None:
                body = chunkdata.CarFileBody(path)
            elif gen.get("inline") and not gen.get("unservable"):
                body = chunkdata.LayoutBody(db, gen)
            if body is not None and body.size >= int(gen["carSize"]):
                found[piece] = LocalPiece(piece, body, int(gen["carSize"]), unpadded(int(gen["pieceSize"])))
    return found


async def read(piece: LocalPiece, start: int, end: int) -> bytes:
    """Bytes [start, end) of the piece; chunkdata.Unservable when an inline chunk's source changed."""
    data = b""
    if start < piece.car_size:
        data = await piece.body.read(start, min(end, piece.car_size) - start)
    return data + bytes(max(0, end - max(start, piece.car_size)))
