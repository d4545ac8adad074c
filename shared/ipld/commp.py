"""Streaming Filecoin piece commitment (commP) with a one-pass header fix-up.

Uses the C extension `_commp` when it loads, else the pure-Python `commp_ref.Hasher`;
SINGULARITY_PURE_COMMP=1 forces the latter.
"""
import os
from typing import NamedTuple

from . import cid as cidlib
from . import commp_ref
from .commp_ref import GROUP_IN, GROUP_LEVEL, group_node, node

try:
    if os.environ.get("SINGULARITY_PURE_COMMP") == "1":
        raise ImportError("pure commP forced by SINGULARITY_PURE_COMMP")
    from ._commp import Hasher as _NativeHasher
except ImportError:
    _NativeHasher = None

MIN_PIECE = 128


class Piece(NamedTuple):
    root: bytes
    padded_size: int
    payload_size: int

    @property
    def cid(self) -> str:
        return cidlib.to_str(cidlib.piece_cid_v1(self.root))


def bare_hasher():
    """The streaming tree alone: update(data), total, finish(min_level) -> (root, level, spine)."""
    return commp_ref.Hasher() if _NativeHasher is None else _NativeHasher()


def native_available() -> bool:
    return _NativeHasher is not None


def check_piece_size(piece_size: int) -> int:
    if piece_size < MIN_PIECE or piece_size & (piece_size - 1):
        raise ValueError(f"piece size must be a power of two >= {MIN_PIECE}: {piece_size}")
    return piece_size


class CommP:
    """Feed bytes with update(); digest() any number of times.

    The first group (127 bytes) is also kept raw so that digest(replace_prefix=...) can
    recompute commP as if the stream had started with other bytes: a CAR writer streams a
    placeholder header and learns the real one only at the end.
    """

    def __init__(self, pure: bool = False):
        self._h = commp_ref.Hasher() if pure or _NativeHasher is None else _NativeHasher()
        self._head = bytearray()

    @classmethod
    def over(cls, hasher, head: bytes) -> "CommP":
        """A CommP around a bare hasher (see bare_hasher) that was fed a stream starting with head."""
        c = cls.__new__(cls)
        c._h, c._head = hasher, bytearray(head[:GROUP_IN])
        return c

    @property
    def payload_size(self) -> int:
        return self._h.total

    def update(self, data) -> None:
        if len(self._head) < GROUP_IN:
            self._head += memoryview(data).cast("B")[:GROUP_IN - len(self._head)]
        self._h.update(data)

    def digest(self, replace_prefix: bytes | None = None, piece_size: int | None = None) -> Piece:
        min_level = 0
        if piece_size is not None:
            min_level = check_piece_size(piece_size).bit_length() - 1 - 5  # 32-byte leaves
        root, level, spine = self._h.finish(min_level)
        padded = 32 << level
        if piece_size is not None and padded > piece_size:
            raise ValueError(f"payload of {self.payload_size} bytes needs a {padded}-byte piece, more than {piece_size}")
        if replace_prefix is not None:
            if len(replace_prefix) > len(self._head):
                raise ValueError("replace_prefix is longer than what was hashed (or than 127 bytes)")
            root = group_node(bytes(replace_prefix) + bytes(self._head[len(replace_prefix):]))
            for i in range(level - GROUP_LEVEL):
                root = node(root, spine[32 * i:32 * i + 32])
        return Piece(root, padded, self.payload_size)
