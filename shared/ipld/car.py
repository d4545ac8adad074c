"""Streaming CARv1 writer whose root is only known at the end.

The header is `varint(len) + DAG-CBOR {"roots": [root], "version": 1}`. Every root we write is a
36-byte CIDv1 sha2-256, so the header has a fixed length: a placeholder of that length goes out
first and `finish(root)` overwrites it in place. Whoever hashes the stream (commP) sees the
placeholder and swaps it in afterwards (CommP.digest(replace_prefix=...)).
"""
import os
from typing import Callable

from . import cid as cidlib
from . import varint

PLACEHOLDER_ROOT = cidlib.from_str("bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi")


def header(root: bytes) -> bytes:
    if len(root) != cidlib.CID_LEN:
        raise ValueError("CAR root must be a 36-byte CIDv1 sha2-256")
    # DAG-CBOR by hand: map(2) with keys in canonical order ("roots" is shorter than "version"),
    # the CID as tag 42 over bytes with the 0x00 multibase-identity prefix.
    body = (b"\xa2" + b"\x65roots" + b"\x81" + b"\xd8\x2a" + b"\x58" + bytes((len(root) + 1,)) + b"\x00" + root
            + b"\x67version" + b"\x01")
    return varint.encode(len(body)) + body


HEADER_LEN = len(header(PLACEHOLDER_ROOT))


class CarWriter:
    """Writes blocks to an open unbuffered binary file at its current start (offset 0).

    `sink`, if given, receives every byte written, in order, as a list of buffers per call:
    it is how the caller computes commP in the same pass. Blocks whose CID was already written
    are skipped.
    """

    def __init__(self, fd: int, sink: Callable[[list], None] | None = None):
        self._fd = fd
        self._sink = sink
        self._seen: set[bytes] = set()
        self.placeholder = header(PLACEHOLDER_ROOT)
        self.size = 0
        self._write([self.placeholder])

    def _write(self, parts: list) -> None:
        total = sum(len(p) for p in parts)
        written = os.writev(self._fd, parts)
        if written < total:  # short writes are legal, if rare on regular files
            rest = memoryview(b"".join(parts))[written:]
            while rest:
                rest = rest[os.write(self._fd, rest):]
        self.size += total
        if self._sink is not None:
            self._sink(parts)

    def put(self, cid: bytes, data) -> int | None:
        """Append a block; return the offset of its data in the CAR, or None if it was a duplicate."""
        if cid in self._seen:
            return None
        self._seen.add(cid)
        prefix = varint.encode(len(cid) + len(data)) + cid
        offset = self.size + len(prefix)
        self._write([prefix, data])
        return offset

    def finish(self, root: bytes) -> bytes:
        """Overwrite the placeholder with the real header; return the real header bytes."""
        real = header(root)
        os.pwrite(self._fd, real, 0)
        return real
