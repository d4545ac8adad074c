"""Our own copy of a piece: the completed chunk's CAR file, then zeros to the unpadded size.

The same bytes the hosting service serves at /piece/{pieceCid}, read here to check what a
provider returns.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from shared import models
from shared.cars import car_path, unpadded

_BATCH = 500


@dataclass(frozen=True)
class LocalPiece:
    piece_cid: str
    path: Path
    car_size: int
    size: int  # unpadded piece size: what /piece/{pieceCid} serves


async def locate_many(db, car_dir: str, piece_cids: set[str]) -> dict[str, LocalPiece]:
    """The pieces among `piece_cids` whose CAR file we still hold (one query per 500 pieces)."""
    found: dict[str, LocalPiece] = {}
    wanted = sorted(piece_cids)
    for i in range(0, len(wanted), _BATCH):
        cursor = db[models.GENERATION].find(
            {"pieceCid": {"$in": wanted[i:i + _BATCH]}, "status": models.Status.COMPLETED.value},
            {"pieceCid": 1, "dataCid": 1, "carSize": 1, "pieceSize": 1})
        async for gen in cursor:
            piece = gen.get("pieceCid")
            if piece in found or not gen.get("pieceSize") or gen.get("carSize") is None:
                continue
            path = car_path(car_dir, gen.get("dataCid") or "")
            if path is not None and path.stat().st_size >= int(gen["carSize"]):
                found[piece] = LocalPiece(piece, path, int(gen["carSize"]), unpadded(int(gen["pieceSize"])))
    return found


def read(piece: LocalPiece, start: int, end: int) -> bytes:
    """Bytes [start, end) of the piece."""
    data = b""
    if start < piece.car_size:
        with open(piece.path, "rb") as f:
            data = os.pread(f.fileno(), min(end, piece.car_size) - start, start)
    return data + bytes(max(0, end - max(start, piece.car_size)))
