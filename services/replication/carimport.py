"""A CAR file the user already has, registered as an imported one-chunk preparation.

The file must lie inside deal_preparation_service.dataset_roots (the check POST /preparation
makes). Its data CID comes from the CAR header and its piece CID and size from the native commP
over the file, unless given, in which case they must match the file. The chunk records the CAR's
path (`importedCar`), from which the hosting service serves it (re-checked against the roots there).
"""
from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from shared import deal_params as deal
from shared import models
from shared.api import InvalidParameter
from shared.ipld import carfile
from shared.ipld import cid as cidlib
from shared.ipld.commp import CommP
from shared.roots import resolve_inside

_READ = 4 << 20


@dataclass(frozen=True)
class ImportedCar:
    path: str
    size: int
    data_cid: str
    piece_cid: str
    piece_size: int


def car_path(raw: str, roots: list[str]) -> str:
    path = resolve_inside(raw, roots)
    if not os.path.isfile(path):
        raise InvalidParameter("path must be an existing CAR file", raw[:300])
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidParameter("path must be valid UTF-8 (rename the file)") from None
    if not os.access(path, os.R_OK):
        raise InvalidParameter("path is not readable", raw[:300])
    return path


def _read(path: str) -> tuple[str, int, str, int]:
    """(root CID, file size, piece CID, piece size): the header, then commP over every byte."""
    with open(path, "rb", buffering=0) as f:
        try:
            roots, _ = carfile.read_header(f.fileno())
            root = cidlib.to_str(roots[0]) if roots else None
        except Exception as exc:  # a file that is not a CAR: whatever the decoder says
            raise InvalidParameter("path is not a CARv1 file", str(exc)[:200]) from None
        if root is None:
            raise InvalidParameter("the CAR header names no root: give dataCid")
        h, size, buf = CommP(), 0, bytearray(_READ)
        while n := f.readinto(buf):
            h.update(memoryview(buf)[:n])
            size += n
    piece = h.digest()
    return root, size, piece.cid, piece.padded_size


async def inspect(body: dict, roots: list[str]) -> ImportedCar:
    """body: the declared POST /replication body, with its path (types already checked)."""
    path = car_path(body["path"], roots)
    given_data, given_piece, given_size = body.get("dataCid"), body.get("pieceCid"), body.get("pieceSize")
    if given_data is not None:
        deal.data_cid("dataCid", given_data)
    if given_piece is not None:
        deal.piece_cid("pieceCid", given_piece)
    if given_size is not None:
        deal.piece_size("pieceSize", given_size)
    root, size, piece_cid, piece_size = await asyncio.to_thread(_read, path)
    if size == 0:
        raise InvalidParameter("the CAR file is empty", body["path"][:300])
    if given_size is not None:
        if given_size < piece_size:
            raise InvalidParameter("pieceSize is smaller than the file's piece", {"given": given_size, "file": piece_size})
        if given_size > piece_size:
            # A larger padded piece is a different commitment: recompute it at that size.
            piece_cid, piece_size = await asyncio.to_thread(_padded, path, given_size)
    if given_piece is not None and given_piece != piece_cid:
        raise InvalidParameter("pieceCid does not match the file", {"given": given_piece, "file": piece_cid})
    if given_data is not None and given_data != root:
        raise InvalidParameter("dataCid does not match the CAR header's root", {"given": given_data, "file": root})
    deal.piece_size("pieceSize", piece_size)  # within what a deal can hold
    return ImportedCar(path, size, root, piece_cid, piece_size)


def _padded(path: str, piece_size: int) -> tuple[str, int]:
    h, buf = CommP(), bytearray(_READ)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(memoryview(buf)[:n])
    piece = h.digest(piece_size=piece_size)
    return piece.cid, piece.padded_size


def records(car: ImportedCar) -> tuple[dict, dict]:
    """The ScanningRequest and the GenerationRequest of the imported preparation."""
    name = f"car-{car.data_cid[-16:]}-{models.new_id()[-8:]}"
    scan = models.scanning_request(name, car.path, car.piece_size, car.size, car.size)
    scan.update({"status": models.Status.COMPLETED.value, "imported": True,
                 "checkpoint": {"index": 1, "after": None, "offset": 0, "open": None},
                 "scannedFiles": 1, "scannedBytes": car.size,
                 # Nothing to index (no files were scanned); the indexer skips it for good.
                 "indexError": "an imported CAR file has no dataset index", "indexRetryAt": None})
    chunk = models.generation_request(scan, 0, 0, car.size)
    chunk.update({"status": models.Status.COMPLETED.value, "dataCid": car.data_cid, "pieceCid": car.piece_cid,
                  "pieceSize": car.piece_size, "carSize": car.size, "importedCar": car.path,
                  "completedAt": chunk["createdAt"]})
    return scan, chunk
