"""What a CAR adds to the data it holds, overestimated: the chunker closes a chunk before its CAR
would outgrow the piece (services/worker/chunker.py), and the preparation API refuses deal sizes
whose piece could not hold a chunk of even one file (services/preparation/validation.py)."""
from __future__ import annotations

MIB = 1 << 20
# Overestimates of what the CAR adds, in bytes (measured CARs stay below them: tests/test_chunking).
CAR_BASE = 256  # the CAR header and the chunk's root directory node
BLOCK = 48  # a block's length prefix and 36-byte CID
LINK = 64  # a dag-pb link without its name: CID, name and size fields, and HAMT shard share
PER_MIB = 128  # a leaf of a multi-block file: its link and blocksize in a file node
DIRECTORY = BLOCK + LINK + 16  # a directory node and its link in the parent, without the name
NAME_MAX = 255  # bytes of the longest file name Linux file systems allow


def smallest_deal_size() -> int:
    """The smallest power-of-two deal size whose piece holds a chunk of one byte of a file with
    the longest name at the dataset root, by the estimates above (1 KiB): below it, a piece would
    have to outgrow the deal size for ordinary files."""
    need = CAR_BASE + BLOCK + LINK + NAME_MAX + 1
    size = 1
    while size * 127 // 128 < need:
        size *= 2
    return size
