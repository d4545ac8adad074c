"""Preparing a tree inline with the real worker, and what the tests compare it with."""
from __future__ import annotations

import os
from pathlib import Path

from shared import models
from shared.ipld.commp import CommP
from tests.pipeline import Prepared, chunks_of, run_worker_until_done


async def prepare_inline(db, config, root: Path, name: str, deal_size: int, min_size: int, max_size: int) -> Prepared:
    """What `POST /preparation` with "inline": true stores, then the real worker until done."""
    scan = models.scanning_request(name, str(root.resolve()), deal_size, min_size, max_size, inline=True)
    await db[models.SCANNING].insert_one(scan)
    await run_worker_until_done(db, config, [scan["_id"]])
    return Prepared(scan["_id"], name, await chunks_of(db, scan["_id"]))


def piece_bytes(car: bytes, piece_size: int) -> bytes:
    """A CAR and its zero padding: what /piece serves."""
    return car + bytes(piece_size // 128 * 127 - len(car))


def commp_of(body: bytes, piece_size: int) -> str:
    hasher = CommP()
    hasher.update(body)
    return hasher.digest(piece_size=piece_size).cid


def bytes_under(directory: str) -> int:
    total = 0
    for base, _, files in os.walk(directory):
        total += sum(os.lstat(os.path.join(base, f)).st_size for f in files)
    return total
