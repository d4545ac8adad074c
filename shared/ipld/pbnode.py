"""Decoding the dag-pb / UnixFS nodes that shared.ipld writes, and verifying blocks by CID.

Data arriving from a server is untrusted: every block is checked against its CID before it is
decoded, and malformed protobuf raises ValueError instead of being guessed at.
"""
from __future__ import annotations

import hashlib
from typing import NamedTuple

from . import cid as cidlib
from . import varint

TYPE_RAW = 0
TYPE_DIRECTORY = 1
TYPE_FILE = 2
TYPE_HAMT_SHARD = 5


class CidMismatch(ValueError):
    """A block whose bytes do not hash to the CID it was asked for or framed with."""

    def __init__(self, cid: str, where: str = ""):
        super().__init__(f"CID mismatch for block {cid}{' from ' + where if where else ''}: "
                         "the bytes received do not hash to this CID")
        self.cid = cid


class PBLink(NamedTuple):
    cid: bytes
    name: bytes
    tsize: int


class PBNode(NamedTuple):
    links: list[PBLink]
    data: bytes


class UnixFSData(NamedTuple):
    type: int
    data: bytes
    filesize: int | None
    blocksizes: list[int]


def verify(cid: bytes, data, where: str = "") -> None:
    codec, mh, digest = cidlib.parse(cid)
    if mh != cidlib.SHA2_256:
        raise ValueError(f"unsupported multihash 0x{mh:x} in {cidlib.to_str(cid)}")
    if hashlib.sha256(data).digest() != digest:
        raise CidMismatch(cidlib.to_str(cid), where)


def codec_of(cid: bytes) -> int:
    return cidlib.parse(cid)[0]


def _fields(buf: bytes):
    """Yield (field number, wire type, value) of a protobuf message."""
    off = 0
    while off < len(buf):
        key, off = varint.decode(buf, off)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, off = varint.decode(buf, off)
        elif wire == 2:
            size, off = varint.decode(buf, off)
            if off + size > len(buf):
                raise ValueError("truncated protobuf field")
            value, off = bytes(buf[off:off + size]), off + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, wire, value


def decode_node(block: bytes) -> PBNode:
    links: list[PBLink] = []
    data = b""
    for field, wire, value in _fields(block):
        if field == 2 and wire == 2:
            cid = b""
            name = b""
            tsize = 0
            for f, w, v in _fields(value):
                if f == 1 and w == 2:
                    cid = v
                elif f == 2 and w == 2:
                    name = v
                elif f == 3 and w == 0:
                    tsize = v
            if not cid:
                raise ValueError("dag-pb link without a hash")
            links.append(PBLink(cid, name, tsize))
        elif field == 1 and wire == 2:
            data = value
        else:
            raise ValueError(f"unexpected dag-pb field {field}")
    return PBNode(links, data)


def decode_unixfs(data: bytes) -> UnixFSData:
    kind, content, filesize, sizes = None, b"", None, []
    for field, wire, value in _fields(data):
        if field == 1 and wire == 0:
            kind = value
        elif field == 2 and wire == 2:
            content = value
        elif field == 3 and wire == 0:
            filesize = value
        elif field == 4 and wire == 0:
            sizes.append(value)
        elif field == 4 and wire == 2:  # packed blocksizes, written by some other tools
            off = 0
            while off < len(value):
                size, off = varint.decode(value, off)
                sizes.append(size)
    if kind is None:
        raise ValueError("UnixFS data without a type")
    return UnixFSData(kind, content, filesize, sizes)


class FileLayout(NamedTuple):
    """One dag-pb file node, as the walkers need it: inline bytes, then children in order."""
    inline: bytes
    children: list[bytes]


def file_layout(block: bytes) -> FileLayout:
    node = decode_node(block)
    unixfs = decode_unixfs(node.data)
    if unixfs.type not in (TYPE_FILE, TYPE_RAW):
        raise ValueError(f"expected a UnixFS file node, found type {unixfs.type}")
    return FileLayout(unixfs.data, [link.cid for link in node.links])
