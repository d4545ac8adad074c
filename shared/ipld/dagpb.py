"""DAG-PB and UnixFS protobuf encoding, byte-exact with @ipld/dag-pb and ipfs-unixfs.

Only the messages this suite writes are covered. Field order matters for the CID: a PBNode puts
its Links (field 2) before Data (field 1), as the dag-pb spec requires, and UnixFS blocksizes are
written one tag per value, never packed.
"""
from typing import NamedTuple

from .varint import encode as _v

TYPE_DIRECTORY = 1
TYPE_FILE = 2
TYPE_HAMT_SHARD = 5
HASH_MURMUR3_X64_64 = 0x22


class Link(NamedTuple):
    cid: bytes
    tsize: int  # bytes of the whole sub-DAG (blocks only), as dag-pb's Tsize
    size: int = 0  # file content bytes under this link, for UnixFS blocksizes


def _field_bytes(tag: int, data: bytes) -> bytes:
    return bytes((tag,)) + _v(len(data)) + data


def encode_node(links: list[tuple[bytes, Link]], data: bytes) -> bytes:
    """PBNode from (name, link) pairs, kept in the order given, and the UnixFS Data bytes."""
    parts = []
    for name, link in links:
        # Name is written even when empty: go-ipfs and ipfs-car do, and it changes the CID.
        # (_field_bytes inlined: a directory of small files has a link per file.)
        cid = link.cid
        body = b"".join((b"\x0a", _v(len(cid)), cid, b"\x12", _v(len(name)), name, b"\x18", _v(link.tsize)))
        parts += (b"\x12", _v(len(body)), body)
    parts.append(_field_bytes(0x0A, data))
    return b"".join(parts)


def unixfs_file(filesize: int, blocksizes: list[int]) -> bytes:
    return b"\x08" + _v(TYPE_FILE) + b"\x18" + _v(filesize) + b"".join(b"\x20" + _v(s) for s in blocksizes)


def unixfs_directory() -> bytes:
    return b"\x08" + _v(TYPE_DIRECTORY)


def unixfs_hamt_shard(bitfield: bytes, fanout: int) -> bytes:
    out = b"\x08" + _v(TYPE_HAMT_SHARD)
    if bitfield:
        out += _field_bytes(0x12, bitfield)
    return out + b"\x28" + _v(HASH_MURMUR3_X64_64) + b"\x30" + _v(fanout)
