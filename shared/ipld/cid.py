"""CIDv1 with sha2-256 multihashes, the only kind this suite writes.

A CID is handled as its binary form (bytes); `to_str` gives the base32 multibase text.
"""
import base64
import hashlib

from . import varint

RAW = 0x55
DAG_PB = 0x70
FIL_COMMITMENT_UNSEALED = 0xF101
SHA2_256 = 0x12
SHA2_256_TRUNC254_PADDED = 0x1012

# Every sha2-256 CIDv1 we write with a one-byte codec is this long; the CAR header relies on it.
CID_LEN = 36


def make(codec: int, mh_code: int, digest: bytes) -> bytes:
    return b"\x01" + varint.encode(codec) + varint.encode(mh_code) + varint.encode(len(digest)) + digest


_PREFIXES: dict[int, bytes] = {}  # codec -> the CID's bytes before a sha2-256 digest


def of_block(codec: int, data) -> bytes:
    prefix = _PREFIXES.get(codec)
    if prefix is None:
        prefix = _PREFIXES[codec] = make(codec, SHA2_256, bytes(32))[:-32]
    return prefix + hashlib.sha256(data).digest()


def raw(data) -> bytes:
    return of_block(RAW, data)


def piece_cid_v1(commp_root: bytes) -> bytes:
    return make(FIL_COMMITMENT_UNSEALED, SHA2_256_TRUNC254_PADDED, commp_root)


def _to_str(cid: bytes) -> str:
    # Multibase 'b' is RFC 4648 base32, lower case, without padding.
    return "b" + base64.b32encode(cid).decode("ascii").lower().rstrip("=")


try:  # the same text (and back) from the C extension, a twentieth of the time: every stored block needs one
    from ._smallfiles import cid_bytes as _cid_bytes
    from ._smallfiles import cid_text as to_str
except ImportError:
    to_str, _cid_bytes = _to_str, None


def from_str(text: str) -> bytes:
    if _cid_bytes is not None and isinstance(text, str):
        cid = _cid_bytes(text)
        if cid is not None:
            return cid
    if not text.startswith("b"):
        raise ValueError(f"only base32 CIDv1 strings are supported: {text!r}")
    body = text[1:].upper()
    return base64.b32decode(body + "=" * (-len(body) % 8))


def parse(cid: bytes) -> tuple[int, int, bytes]:
    """Return (codec, multihash code, digest) of a binary CIDv1."""
    version, off = varint.decode(cid, 0)
    if version != 1:
        raise ValueError("not a CIDv1")
    codec, off = varint.decode(cid, off)
    mh, off = varint.decode(cid, off)
    size, off = varint.decode(cid, off)
    digest = bytes(cid[off:off + size])
    if len(digest) != size or off + size != len(cid):
        raise ValueError("malformed CID")
    return codec, mh, digest
