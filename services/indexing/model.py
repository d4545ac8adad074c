"""The dataset index: DAG-CBOR nodes in the design's DataModel form.

    dir:  {"__type": "dir", "__size": bytes below, <name>: <link to a dir> | <file>, ...}
          or, when its entries would not fit one block,
          {"__type": "dir", "__size": n, "__parts": [{"first": key, "link": <cid>}, ...]}
          where each part is {"__type": "dirpart", <name>: ...} or, for very large
          directories, itself {"__type": "dirpart", "__parts": [...]} (a sorted B-tree).
    file: {"__type": "file", "__size": n, "__mtime": seconds?, "__source": [SourceInfo, ...]}
    SourceInfo: {"cid", "selector", "offset", "length", "dataCid", "pieceCid", "pieceSize",
                 "carOffset", "carLength"}: the UnixFS DAG of the file's bytes
                 [offset, offset+length), found at `selector` under the chunk root `dataCid`, whose
                 blocks all lie in the CAR (= the start of the piece) at [carOffset, +carLength).

The root dir also carries "__source": one entry per chunk (cid = dataCid, selector "/").
Files sit inline in their directory (one block per directory, not per file); directories are
links. `cid` and `dataCid` of a SourceInfo are CID links (DAG-CBOR tag 42) too, so the index is
one IPLD DAG over the dataset: `/ipfs/<indexCid>/path/to/file` resolves through a gateway and a
pin of the index reaches every block. (`pieceCid` stays a string: a piece is no IPLD block.)
Indexes built before schema version 2 held strings there; `link` reads both.

Names that start with "__" are stored with one more "_" so they can never collide with the
reserved keys; `escape`/`unescape` are that bijection.
"""
from __future__ import annotations

import bisect
from typing import Callable, Iterator

import libipld

from shared.ipld import cid as cidlib

DAG_CBOR = 0x71
# Every index block stays below this; the builder splits directories to keep to it.
MAX_BLOCK = 1 << 20


def escape(name: str) -> str:
    return "_" + name if name.startswith("__") else name


def unescape(key: str) -> str:
    return key[1:] if key.startswith("___") else key


def is_entry(key: str) -> bool:
    return not key.startswith("__") or key.startswith("___")


def check_name(name: str) -> str:
    """A path component that is safe to create on disk: index data is not trusted. (A backslash
    is an ordinary character in a POSIX name, and datasets have them.)"""
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise ValueError(f"unsafe name in index: {name!r}")
    return name


def encode(node: dict) -> tuple[bytes, bytes]:
    """(cid, block) of a node."""
    block = libipld.encode_dag_cbor(node)
    return cidlib.of_block(DAG_CBOR, block), block


def decode(block: bytes) -> dict:
    node = libipld.decode_dag_cbor(block)
    if not isinstance(node, dict) or node.get("__type") not in ("dir", "dirpart", "file"):
        raise ValueError("not an index node")
    return node


GetNode = Callable[[bytes], dict]


def _as_cid(value) -> bytes:
    if not isinstance(value, bytes):
        raise ValueError("index link is not a CID")
    return value


def link(value) -> bytes:
    """The binary CID of a SourceInfo `cid`/`dataCid`: a link, or a string in an old index."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return cidlib.from_str(value)
    raise ValueError("index link is not a CID")


def link_text(value) -> str:
    return cidlib.to_str(link(value))


def lookup(node: dict, name: str, get: GetNode):
    """The entry `name` in a dir node: a file dict, a dir node (fetched), or None."""
    key = escape(name)
    while "__parts" in node:
        parts = node["__parts"]
        firsts = [p["first"] for p in parts]
        i = bisect.bisect_right(firsts, key) - 1
        if i < 0:
            return None
        node = get(_as_cid(parts[i]["link"]))
    value = node.get(key)
    return resolve(value, get)


def resolve(value, get: GetNode):
    if isinstance(value, bytes):
        return get(value)
    return value


def entries(node: dict, get: GetNode) -> Iterator[tuple[str, object]]:
    """(name, raw value: a link or an inline file) of a dir node, in key order."""
    if "__parts" in node:
        for part in node["__parts"]:
            yield from entries(get(_as_cid(part["link"])), get)
        return
    for key in sorted(node):
        if is_entry(key):
            yield unescape(key), node[key]
