"""Turning a CID from a URL or the database into a file inside car_dir, or nothing; and the size
of the piece a CAR is served as (the hosting service serves them, the ranking's retrieval probe
reads the same bytes to check what providers return).

Only canonical base32 CIDv1 strings are accepted, the name is built from the CID alone, and the
resolved path (symlinks followed) must still lie inside car_dir: a request can never name, or be
redirected to, a file elsewhere.
"""
from __future__ import annotations

import re
from pathlib import Path

from shared.ipld import cid as cidlib

_CID_RE = re.compile(r"^b[a-z2-7]{10,200}$")


def valid_cid(text: str) -> bytes | None:
    if not isinstance(text, str) or not _CID_RE.match(text):
        return None
    try:
        binary = cidlib.from_str(text)
        cidlib.parse(binary)
    except ValueError:
        return None
    return binary if cidlib.to_str(binary) == text else None


def car_path(car_dir: str, data_cid: str) -> Path | None:
    """The existing regular file `<car_dir>/<data_cid>.car`, or None."""
    if valid_cid(data_cid) is None:
        return None
    root = Path(car_dir).resolve()
    path = (root / f"{data_cid}.car").resolve()
    if not path.is_relative_to(root) or path.parent != root or not path.is_file():
        return None
    return path


def unpadded(piece_size: int) -> int:
    """The bytes a piece of `piece_size` (padded) holds: Fr32 padding keeps 127 of every 128."""
    return piece_size // 128 * 127
