"""Pure-Python commP: the reference the C extension is tested against, and its fallback.

`commp_of_bytes` is the textbook definition over a whole buffer (slow, obvious). `Hasher` is the
streaming form with the same interface as `shared.ipld._commp.Hasher`.
"""
import hashlib

GROUP_IN = 127  # Fr32 turns 127 payload bytes into 128 bytes: four 32-byte leaves
GROUP_OUT = 128
GROUP_LEVEL = 2  # a group's four leaves make a subtree of height 2
MAX_LEVEL = 64
_MASK254 = (1 << 254) - 1


def node(left: bytes, right: bytes) -> bytes:
    d = bytearray(hashlib.sha256(left + right).digest())
    d[31] &= 0x3F
    return bytes(d)


ZERO = [bytes(32)]
for _ in range(MAX_LEVEL):
    ZERO.append(node(ZERO[-1], ZERO[-1]))


def fr32_expand(group: bytes) -> bytes:
    """127 bytes -> 128: every 254 bits (little-endian bit order) get two zero bits on top."""
    v = int.from_bytes(group, "little")
    return b"".join(((v >> (254 * q)) & _MASK254).to_bytes(32, "little") for q in range(4))


def group_node(group: bytes) -> bytes:
    leaves = fr32_expand(group.ljust(GROUP_IN, b"\x00"))
    return node(node(leaves[:32], leaves[32:64]), node(leaves[64:96], leaves[96:]))


def padded_size(payload_size: int) -> int:
    groups = max(1, -(-payload_size // GROUP_IN))
    return GROUP_OUT << (groups - 1).bit_length()


def commp_of_bytes(data: bytes, piece_size: int | None = None) -> tuple[bytes, int]:
    size = max(padded_size(len(data)), piece_size or 0)
    padded = data.ljust(size // GROUP_OUT * GROUP_IN, b"\x00")
    layer = [fr32_expand(padded[i:i + GROUP_IN]) for i in range(0, len(padded), GROUP_IN)]
    layer = [g[i:i + 32] for g in layer for i in range(0, GROUP_OUT, 32)]
    while len(layer) > 1:
        layer = [node(layer[i], layer[i + 1]) for i in range(0, len(layer), 2)]
    return layer[0], size


class Hasher:
    """Streaming commP tree: one pending node per level, like a binary counter.

    It also keeps, per level, the first right-hand node ever seen there (`spine`): those are the
    siblings along the tree's left edge, which lets a caller swap the first group afterwards
    (see commp.CommP.digest(replace_prefix=...)).
    """

    def __init__(self):
        self._buf = bytearray()
        self._stack: list[bytes | None] = [None] * (MAX_LEVEL + 1)
        self._count = [0] * (MAX_LEVEL + 1)
        self._spine: list[bytes | None] = [None] * (MAX_LEVEL + 1)
        self.total = 0

    def update(self, data) -> None:
        data = memoryview(data).cast("B")
        self.total += len(data)
        buf = self._buf
        buf += data
        full = len(buf) - len(buf) % GROUP_IN
        for i in range(0, full, GROUP_IN):
            self._push(GROUP_LEVEL, group_node(bytes(buf[i:i + GROUP_IN])))
        del buf[:full]

    def _push(self, level: int, n: bytes) -> None:
        while True:
            self._count[level] += 1
            if self._count[level] == 2:
                self._spine[level] = n
            left = self._stack[level]
            if left is None:
                self._stack[level] = n
                return
            self._stack[level] = None
            n = node(left, n)
            level += 1

    def finish(self, min_level: int = 0) -> tuple[bytes, int, bytes]:
        """(root, level, spine) of the zero-padded tree; the hasher itself is left unchanged.

        level is log2 of the number of 32-byte leaves; spine concatenates the left-edge siblings
        for levels GROUP_LEVEL .. level-1.
        """
        saved = (bytes(self._buf), list(self._stack), list(self._count), list(self._spine))
        try:
            if self._buf or self.total == 0:
                self._push(GROUP_LEVEL, group_node(bytes(self._buf)))
            while True:
                levels = [i for i, n in enumerate(self._stack) if n is not None]
                if len(levels) == 1 and levels[0] >= min_level:
                    top = levels[0]
                    spine = b"".join(self._spine[i] for i in range(GROUP_LEVEL, top))
                    return self._stack[top], top, spine
                self._push(levels[0], ZERO[levels[0]])
        finally:
            self._buf[:] = saved[0]
            self._stack, self._count, self._spine = saved[1], saved[2], saved[3]
