"""Reading CARv1 files on disk by frame, without loading block data.

A CAR is `varint(len) + DAG-CBOR header` then `varint(len(cid)+len(data)) + cid + data` per
block. Walking the frame prefixes with seeks costs one small read per block, so even a 32 GiB
CAR (about 32,000 blocks) is mapped in well under a second.
"""
from __future__ import annotations

import os
from typing import Iterator, NamedTuple

import libipld

from . import varint

# Enough for any frame prefix: a 10-byte varint plus a CID with a 64-byte digest.
_PREFIX_READ = 96


class Frame(NamedTuple):
    cid: bytes
    offset: int  # of the block data in the file
    length: int  # of the block data

    @property
    def start(self) -> int:
        """Offset of the frame itself (its length varint)."""
        return self.offset - len(self.cid) - len(varint.encode(len(self.cid) + self.length))

    @property
    def end(self) -> int:
        return self.offset + self.length


def cid_length(buf: bytes, off: int = 0) -> int:
    """Byte length of the binary CIDv1 at buf[off:]."""
    start = off
    version, off = varint.decode(buf, off)
    if version != 1:
        raise ValueError("only CIDv1 blocks are supported")
    _, off = varint.decode(buf, off)  # codec
    _, off = varint.decode(buf, off)  # multihash code
    size, off = varint.decode(buf, off)
    return off + size - start


def read_header(fd: int) -> tuple[list[bytes], int]:
    """(roots, offset of the first frame)."""
    head = os.pread(fd, 16, 0)
    length, off = varint.decode(head, 0)
    if length > 1 << 20:
        raise ValueError("CAR header too large")
    header = libipld.decode_dag_cbor(os.pread(fd, length, off))
    if not isinstance(header, dict) or header.get("version") != 1:
        raise ValueError("not a CARv1 file")
    return list(header.get("roots") or []), off + length


def iter_frames(fd: int, start: int, end: int) -> Iterator[Frame]:
    off = start
    while off < end:
        head = os.pread(fd, _PREFIX_READ, off)
        length, body = varint.decode(head, 0)
        size = cid_length(head, body)
        if body + size > len(head) or length < size:
            raise ValueError(f"malformed CAR frame at offset {off}")
        cid = head[body:body + size]
        data_offset = off + body + size
        frame = Frame(bytes(cid), data_offset, length - size)
        if frame.end > end:
            raise ValueError(f"CAR frame at offset {off} runs past the end of the file")
        yield frame
        off = frame.end


def frame_map(path: str) -> tuple[list[bytes], dict[bytes, Frame]]:
    """(roots, cid -> first frame holding it) of a CAR file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        roots, first = read_header(fd)
        frames: dict[bytes, Frame] = {}
        for frame in iter_frames(fd, first, os.fstat(fd).st_size):
            frames.setdefault(frame.cid, frame)
        return roots, frames
    finally:
        os.close(fd)


def read_exact(fd: int, offset: int, length: int) -> bytes:
    data = os.pread(fd, length, offset)
    if len(data) != length:
        raise ValueError(f"file ends before offset {offset + length}")
    return data
