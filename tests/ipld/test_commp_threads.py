"""commP split across threads gives the one-thread piece for every size around segment and piece
boundaries, with and without a requested piece size, and on the published vectors."""
import os
import random
import tempfile
import threading
from pathlib import Path

import pytest

from shared.ipld import commp
from shared.ipld.commp import CommP
from shared.ipld.commp_threads import commp_of_file

import ipld_testdata as td

VECTORS = Path(__file__).resolve().parents[1] / "fixtures" / "vectors"
pytestmark = pytest.mark.skipif(not commp.native_available(), reason="C extension not built")
SEGMENT_LOG2 = 3  # segments of 8 groups (1,016 bytes): many segments from small inputs
SEGMENT = 127 << SEGMENT_LOG2


def one_thread(data: bytes, piece_size=None) -> commp.Piece:
    h = CommP()
    h.update(data)
    return h.digest(piece_size=piece_size)


def threaded(data: bytes, piece_size=None, threads=3, segment_log2=SEGMENT_LOG2) -> commp.Piece:
    with tempfile.TemporaryFile() as f:
        f.write(data)
        f.flush()
        return commp_of_file(f.fileno(), len(data), piece_size, threads=threads, segment_log2=segment_log2)


SIZES = sorted({0, 1, 126, 127, 128} | {k * SEGMENT + d for k in (1, 2, 3, 4, 5, 7, 8, 9, 16, 17) for d in (-1, 0, 1)}
               | {SEGMENT * 8 - 127, SEGMENT * 8 + 127})


@pytest.mark.parametrize("size", SIZES)
def test_every_boundary_size_matches_one_thread(size):
    data = random.Random(size).randbytes(size)
    want = one_thread(data)
    for threads in (2, 3, 4):
        assert threaded(data, threads=threads) == want, (size, threads)


@pytest.mark.parametrize("size", [1, SEGMENT + 1, 5 * SEGMENT, 9 * SEGMENT - 1])
def test_a_requested_piece_size_pads_the_same(size):
    data = random.Random(-size).randbytes(size)
    for piece_size in (1 << 15, 1 << 20):
        assert threaded(data, piece_size) == one_thread(data, piece_size)
    with pytest.raises(ValueError):
        threaded(data, 128 if size > 127 else 64)


def test_published_vectors_and_node_fixtures():
    for line in (VECTORS / "hashhash_0xCC.txt").read_text().split():
        size, padded, want = line.split(",")
        if int(size) <= 1 << 22:
            got = threaded(b"\xcc" * int(size))
            assert (got.cid, got.padded_size, got.payload_size) == (want, int(padded), int(size))
    for rec in td.load_fixtures()["commp"]:
        got = threaded(td.det_bytes(rec["seed"], rec["size"]), threads=2)
        assert (got.cid, got.padded_size) == (rec["pieceCid"], rec["paddedPieceSize"]), rec["size"]


def test_default_segments_on_a_multi_segment_file():
    data = random.Random(7).randbytes((127 << 17) * 2 + 12345)  # three default segments
    assert threaded(data, segment_log2=17, threads=2) == one_thread(data)


def test_a_file_shorter_than_announced_is_an_error(tmp_path):
    path = tmp_path / "short"
    path.write_bytes(b"x" * (3 * SEGMENT))
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(OSError):
            commp_of_file(fd, 5 * SEGMENT, threads=2, segment_log2=SEGMENT_LOG2)
    finally:
        os.close(fd)


def segmented(data: bytes, threads: int, piece_size=None, replace_prefix=None, seed=0) -> commp.Piece:
    """A stream fed in pieces of random sizes through one reused buffer, as the packer feeds it."""
    from shared.ipld.commp_threads import SegmentedCommP
    rng = random.Random(seed)
    hasher = SegmentedCommP(threads, SEGMENT_LOG2)
    buf = bytearray(700)
    free = threading.Semaphore(1)
    position = 0
    while position < len(data):
        free.acquire()
        n = min(rng.randint(1, len(buf)), len(data) - position)
        buf[:n] = data[position:position + n]
        hasher.update(memoryview(buf)[:n])
        hasher.release(free.release)  # buf is written again only once every thread is done with it
        position += n
    hasher.close()
    piece = hasher.digest(replace_prefix=replace_prefix, piece_size=piece_size)
    assert hasher.digest(replace_prefix=replace_prefix, piece_size=piece_size) == piece  # digest() repeats
    return piece


@pytest.mark.parametrize("size", SIZES)
def test_a_stream_on_several_threads_matches_one_thread(size):
    data = random.Random(size + 1).randbytes(size)
    assert segmented(data, 3, seed=size) == one_thread(data)
    prefix = b"H" * min(size, 60)
    h = CommP()
    h.update(data)
    assert segmented(data, 2, piece_size=1 << 16, replace_prefix=prefix) == h.digest(prefix, 1 << 16)
