"""Shared by the IPLD tests and tests/fixtures/ipld/generate.py: deterministic inputs and an
independent CAR + dag-pb reader (it shares no code with shared/ipld)."""
import hashlib
import os


def det_bytes(seed: str, n: int) -> bytes:
    """sha256(f"{seed}/{i}") for i = 0, 1, ... concatenated, cut to n bytes."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}/{i}".encode()).digest()
        i += 1
    return bytes(out[:n])


# The nested fixture tree: relative path -> content (None = empty directory).
TREE = {
    "a.txt": det_bytes("tree/a", 300),
    "empty.bin": b"",
    ".hidden": b"dot file\n",
    "a-b.txt": b"sorts before a/ in full-path order\n",
    "dup1.bin": det_bytes("tree/dup", 5000),
    "dup2.bin": det_bytes("tree/dup", 5000),
    "sub/b.bin": det_bytes("tree/b", (1 << 20) + 5),
    "sub/.cache/x": b"x",
    "sub/deeper/ñandú € 日本.txt": "unicode name".encode(),
    "sub/deeper/zero": b"",
    "sub/empty_dir": None,
    "Zed/upper.txt": b"upper case sorts first in bytes\n",
}


def write_tree(root: str, tree: dict = TREE) -> None:
    for rel, content in tree.items():
        p = os.path.join(root, *rel.split("/"))
        if content is None:
            os.makedirs(p, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(content)


def write_many(root: str, n: int) -> None:
    """A flat directory of n small files, f00000.txt ... with their own name as content."""
    os.makedirs(root, exist_ok=True)
    for i in range(n):
        name = f"f{i:05d}.txt"
        with open(os.path.join(root, name), "w") as f:
            f.write(name)


# ---- independent reader -------------------------------------------------------------------

def uvarint(buf: bytes, off: int) -> tuple[int, int]:
    v = s = 0
    while True:
        b = buf[off]
        off += 1
        v |= (b & 0x7F) << s
        s += 7
        if b < 0x80:
            return v, off


def proto_fields(buf: bytes) -> list[tuple[int, object]]:
    """Protobuf fields (number, int or bytes) in wire order."""
    out, off = [], 0
    while off < len(buf):
        key, off = uvarint(buf, off)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, off = uvarint(buf, off)
        elif wt == 2:
            n, off = uvarint(buf, off)
            v, off = buf[off:off + n], off + n
        else:
            raise ValueError(f"unexpected wire type {wt}")
        out.append((num, v))
    return out


def read_car(data: bytes) -> tuple[list[bytes], list[tuple[bytes, bytes]]]:
    """(roots, [(cid, block)]) of a CARv1; every block's sha2-256 CID is checked."""
    import libipld
    hlen, off = uvarint(data, 0)
    header = libipld.decode_dag_cbor(data[off:off + hlen])
    assert header["version"] == 1
    off += hlen
    blocks = []
    while off < len(data):
        n, off = uvarint(data, off)
        sec = data[off:off + n]
        off += n
        assert sec[0] == 1, "CIDv1"
        _, p = uvarint(sec, 1)  # codec
        mh, p = uvarint(sec, p)
        ln, p = uvarint(sec, p)
        assert mh == 0x12 and ln == 32
        cid, block = sec[:p + 32], sec[p + 32:]
        assert hashlib.sha256(block).digest() == cid[p:], "block does not match its CID"
        blocks.append((cid, block))
    return header["roots"], blocks


def cid_str(cid: bytes) -> str:
    import base64
    return "b" + base64.b32encode(cid).decode().lower().rstrip("=")


def codec_of(cid: bytes) -> int:
    return uvarint(cid, 1)[0]


def unpack(cid: bytes, blocks: dict, out: dict, path: str = "") -> None:
    """Rebuild files as out[path] = bytes and empty dirs as out[path] = None."""
    if codec_of(cid) == 0x55:
        out[path] = blocks[cid]
        return
    fields = proto_fields(blocks[cid])
    links = []
    data = b""
    for num, v in fields:
        if num == 2:
            lf = dict(proto_fields(v))
            links.append((lf[1], lf.get(2, b"").decode(), lf.get(3)))
        elif num == 1:
            data = v
    ufs = proto_fields(data)
    typ = dict(ufs)[1]
    if typ == 2:  # File
        out[path] = b"".join(_file_bytes(c, blocks) for c, _, _ in links)
    elif typ == 1:  # Directory
        if not links and path:
            out[path] = None
        for c, name, _ in links:
            unpack(c, blocks, out, f"{path}/{name}" if path else name)
    elif typ == 5:  # HAMT shard: names are 2 hex chars + entry name, or just 2 hex chars
        for c, name, _ in links:
            if len(name) == 2:
                unpack(c, blocks, out, path)
            else:
                unpack(c, blocks, out, f"{path}/{name[2:]}" if path else name[2:])
    else:
        raise ValueError(f"unexpected UnixFS type {typ}")


def _file_bytes(cid: bytes, blocks: dict) -> bytes:
    out: dict = {}
    unpack(cid, blocks, out)
    return out[""]


def load_fixtures() -> dict:
    import json
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "fixtures", "ipld", "fixtures.json"), encoding="utf-8") as f:
        return json.load(f)
