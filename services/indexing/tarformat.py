"""Tar member headers written by hand, so a bundle's exact length is known before streaming it
(the hosting service sends Content-Length) and members can be streamed from any source.
PAX format: long names and large sizes need no special casing."""
from __future__ import annotations

import tarfile

BLOCK = 512
END = bytes(2 * BLOCK)


def header(name: str, size: int, mtime: int = 0, directory: bool = False) -> bytes:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.size = 0 if directory else size
    info.mode = 0o755 if directory else 0o644
    info.mtime = max(0, int(mtime))
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")


def padding(size: int) -> bytes:
    return bytes(-size % BLOCK)


def member_length(name: str, size: int, mtime: int = 0, directory: bool = False) -> int:
    return len(header(name, size, mtime, directory)) + (0 if directory else size + len(padding(size)))
