"""UnixFS DAG builders for the profile ipfs-car uses (see shared/reference/ipld.md).

Builders never hold file data: every block goes to `emit(cid, data)` as soon as it exists, so
the caller decides where blocks go (a CAR, a test list). Emission order is post-order, leaves
before their parents, matching ipfs-car so that our CARs can be compared byte for byte.
"""
from typing import Callable

from . import cid as cidlib
from . import dagpb, murmur3
from .dagpb import Link

CHUNK_SIZE = 1 << 20
WIDTH = 1024
SHARD_THRESHOLD = 1000
HAMT_FANOUT = 256

Emit = Callable[[bytes, bytes], None]


def _emit_node(emit: Emit, links: list[tuple[bytes, Link]], data: bytes, size: int = 0) -> Link:
    block = dagpb.encode_node(links, data)
    cid = cidlib.of_block(cidlib.DAG_PB, block)
    emit(cid, block)
    return Link(cid, len(block) + sum(link.tsize for _, link in links), size)


class FileBuilder:
    """Balanced file DAG, fed one chunk at a time.

    Mirrors @ipld/unixfs's balanced layout: a row is folded into a parent only once it holds
    more than `width` items (or at close), so a row of exactly `width` links stays flat until
    the end. That is the same tree as building layer by layer, and the same block order.
    """

    def __init__(self, emit: Emit, width: int = WIDTH):
        self._emit = emit
        self._width = width
        self._rows: list[list[Link]] = [[]]

    def add_chunk(self, data) -> None:
        cid = cidlib.raw(data)
        self._emit(cid, data)
        self.add_leaf(Link(cid, len(data), len(data)))

    def add_leaf(self, leaf: Link) -> None:
        self._rows[0].append(leaf)
        self._fold(close=False)

    def _fold(self, close: bool) -> None:
        depth = 0
        while depth < len(self._rows):
            row = self._rows[depth]
            # Leaves always fold at close (a lone leaf of a multi-chunk file still gets a parent);
            # upper rows fold at close unless they are the top row.
            while len(row) > self._width or (close and row and (depth == 0 or depth < len(self._rows) - 1)):
                group, row[:] = row[:self._width], row[self._width:]
                if depth + 1 == len(self._rows):
                    self._rows.append([])
                self._rows[depth + 1].append(self._node(group))
            depth += 1

    def _node(self, children: list[Link]) -> Link:
        size = sum(c.size for c in children)
        data = dagpb.unixfs_file(size, [c.size for c in children])
        return _emit_node(self._emit, [(b"", c) for c in children], data, size)

    def close(self) -> Link:
        leaves = self._rows[0]
        if len(self._rows) == 1 and len(leaves) <= 1:
            if not leaves:  # the empty file is the empty raw block
                self.add_chunk(b"")
            return self._rows[0][0]
        self._fold(close=True)
        top = self._rows[-1]
        return top[0] if len(top) == 1 else self._node(top)


def directory(entries: list[tuple[bytes, Link]], emit: Emit, shard_threshold: int = SHARD_THRESHOLD) -> Link:
    """Directory node over (name bytes, child link); sharded as a HAMT above the threshold."""
    if len(entries) > shard_threshold:
        return hamt_directory(entries, emit)
    names = [n for n, _ in entries]
    if len(set(names)) != len(names):
        raise ValueError("duplicate name in directory")
    return _emit_node(emit, sorted(entries, key=lambda e: e[0]), dagpb.unixfs_directory())


def _hash_bits(name: bytes, depth: int) -> int:
    # One byte of hash per level (fanout 256). Past 8 levels the key is rehashed with a frame
    # counter appended, as @perma/map's InfiniteUint8Array path does; real names never get there.
    frame, offset = divmod(depth, 8)
    digest = murmur3.x64_64(name if frame == 0 else name + bytes((frame,)))
    return digest[offset]


def hamt_slot(name: bytes, depth: int) -> int:
    """The bucket of `name` at `depth` of a HAMT shard: what a lookup follows."""
    return _hash_bits(name, depth)


def hamt_directory(entries: list[tuple[bytes, Link]], emit: Emit) -> Link:
    root: dict = {}
    for name, link in entries:
        _hamt_insert(root, name, link, 0)
    return _hamt_encode(root, emit)


def _hamt_insert(node: dict, name: bytes, link: Link, depth: int) -> None:
    slot = _hash_bits(name, depth)
    held = node.get(slot)
    if held is None:
        node[slot] = (name, link)
    elif isinstance(held, dict):
        _hamt_insert(held, name, link, depth + 1)
    elif held[0] == name:
        raise ValueError("duplicate name in directory")
    else:
        child: dict = {}
        _hamt_insert(child, held[0], held[1], depth + 1)
        _hamt_insert(child, name, link, depth + 1)
        node[slot] = child


def _hamt_encode(node: dict, emit: Emit) -> Link:
    links = []
    bits = 0
    for slot in sorted(node):
        bits |= 1 << slot
        prefix = b"%02X" % slot
        held = node[slot]
        if isinstance(held, dict):
            links.append((prefix, _hamt_encode(held, emit)))
        else:
            links.append((prefix + held[0], held[1]))
    bitfield = bits.to_bytes(HAMT_FANOUT // 8, "big").lstrip(b"\x00")
    return _emit_node(emit, links, dagpb.unixfs_hamt_shard(bitfield, HAMT_FANOUT))
