"""Unsigned LEB128 varints, as used by multiformats, protobuf and CAR framing."""


_SMALL = [bytes((n,)) for n in range(0x80)]


def encode(n: int) -> bytes:
    if 0 <= n < 0x80:  # most codes and lengths: one byte, without building it
        return _SMALL[n]
    if n < 0:
        raise ValueError("varint must be non-negative")
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def decode(buf, offset: int = 0) -> tuple[int, int]:
    """Return (value, offset just past the varint)."""
    value = shift = 0
    while True:
        if offset >= len(buf):
            raise ValueError("truncated varint")
        b = buf[offset]
        offset += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, offset
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")
