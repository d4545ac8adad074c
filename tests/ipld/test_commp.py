import hashlib
import os
import random
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from shared.ipld import cid as cidlib
from shared.ipld import commp, commp_ref
from shared.ipld.commp import CommP

import ipld_testdata as td

# Copied from ../shared/reference/vectors (see its README.md for where each file comes from).
VECTORS = Path(__file__).resolve().parents[1] / "fixtures" / "vectors"
FIXTURES = td.load_fixtures()
_native = pytest.mark.skipif(not commp.native_available(), reason="C extension not built")


def piece(data: bytes, pure: bool, **kw) -> commp.Piece:
    h = CommP(pure=pure)
    h.update(data)
    return h.digest(**kw)


def ref_cid(data: bytes, piece_size=None) -> tuple[str, int]:
    root, size = commp_ref.commp_of_bytes(data, piece_size)
    return cidlib.to_str(cidlib.piece_cid_v1(root)), size


@pytest.mark.parametrize("name,byte", [("hashhash_zero.txt", 0x00), ("hashhash_0xCC.txt", 0xCC)])
@pytest.mark.parametrize("pure", [False, True])
def test_hashhash_vectors(name, byte, pure):
    for line in (VECTORS / name).read_text().split():
        size, padded, want = line.split(",")
        got = piece(bytes([byte]) * int(size), pure)
        assert (got.cid, got.padded_size, got.payload_size) == (want, int(padded), int(size)), size


def derive_buffer(size: int) -> bytes:
    """storacha/data-segment's deriveBuffer, as replicated in shared/tools/ref/check-vectors.mjs."""
    buf = bytearray(size)
    off = 0
    while off < size:
        d = hashlib.sha512(bytes(buf[:off] if off < 64 else buf[off - 64:off])).digest()
        chunk = d[:size - off]
        buf[off:off + len(chunk)] = chunk
        off += len(d)
    return bytes(buf)


def test_datasegment_vectors():
    rows = (VECTORS / "datasegment_vector.csv").read_text().strip().split("\n")[1:]
    assert len(rows) > 50
    for row in rows:
        size, payload_cid, _, padded, want = [s.strip() for s in row.split(",")]
        data = derive_buffer(int(size))
        assert cidlib.to_str(cidlib.raw(data)) == payload_cid  # the derivation itself is right
        got = piece(data, pure=False)
        assert (got.cid, got.padded_size) == (want, int(padded)), size
        if int(size) < 20000:
            assert piece(data, pure=True).cid == want


def test_node_fixtures():
    for rec in FIXTURES["commp"]:
        data = td.det_bytes(rec["seed"], rec["size"])
        for pure in (False, True) if rec["size"] <= (1 << 20) else (False,):
            got = piece(data, pure)
            assert (got.cid, got.padded_size) == (rec["pieceCid"], rec["paddedPieceSize"]), rec["size"]


def test_empty_pieces_of_requested_size():
    # Zero commitments for empty 32 GiB / 64 GiB pieces (FRC-0069 examples, check-vectors.mjs v2spec).
    assert piece(b"", False, piece_size=32 << 30).cid == "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"
    assert piece(b"", True, piece_size=64 << 30).cid == "baga6ea4seaqomqafu276g53zko4k23xzh4h4uecjwicbmvhsuqi7o4bhthhm4aq"


def boundary_lengths() -> list[int]:
    out = {0, 1, 2, 31, 32, 33, 63, 64, 65}
    for k in range(0, 14):
        for base in (127 << k, 128 << k, 1 << (k + 7)):
            out.update((base - 1, base, base + 1))
    # around the C extension's 64-group batches
    for g in (64, 65, 127, 128, 129, 192, 256):
        out.update((g * 127 - 1, g * 127, g * 127 + 1))
    rnd = random.Random(7)
    out.update(rnd.randrange(1, 300_000) for _ in range(40))
    return sorted(out)


def test_reference_definition_matches_streaming_python():
    rnd = random.Random(1)
    for n in [0, 1, 126, 127, 128, 254, 255, 1000, 127 * 8, 127 * 8 + 1, 5000]:
        data = rnd.randbytes(n)
        want = ref_cid(data)
        got = piece(data, pure=True)
        assert (got.cid, got.padded_size) == want, n
        bigger = 4 * want[1]
        assert piece(data, pure=True, piece_size=bigger).cid == ref_cid(data, bigger)[0]


@_native
def test_native_matches_pure_over_many_lengths():
    rnd = random.Random(2)
    data = rnd.randbytes(400_000)
    for n in boundary_lengths():
        d = data[:n]
        a, b = piece(d, False), piece(d, True)
        assert a == b, n


def cpu_flags() -> set[str]:
    """The CPU's feature flags as the kernel reports them: a source independent of the extension."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        pytest.skip("no /proc/cpuinfo to tell whether this CPU has SHA-NI")
    return set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))


@_native
def test_native_portable_sha_matches_shani():
    from shared.ipld._commp import Hasher
    if "sha_ni" not in cpu_flags():
        pytest.skip("this CPU has no SHA-NI: only the portable path can run here")
    # Past several 64-group batches (the 4-lane path) plus a ragged tail (the 2-lane one).
    data = random.Random(3).randbytes(127 * 64 * 5 + 77)
    shani, portable, reference = Hasher(use_shani=True), Hasher(use_shani=False), commp_ref.Hasher()
    assert shani.uses_shani and not portable.uses_shani, "the two paths under test are not the ones in use"
    for h in (shani, portable, reference):
        h.update(data)
    assert shani.finish(0) == reference.finish(0)
    assert portable.finish(0) == reference.finish(0)


@_native
def test_odd_update_splits_and_buffer_types():
    rnd = random.Random(4)
    data = rnd.randbytes(127 * 200 + 13)
    want = piece(data, False)
    h = CommP()
    off = 0
    while off < len(data):
        n = rnd.choice([1, 3, 126, 127, 128, 5000, 127 * 64])
        h.update(memoryview(bytearray(data[off:off + n])))
        off += n
    assert h.digest() == want


@_native
def test_threads_hash_independently():
    rnd = random.Random(5)
    inputs = [rnd.randbytes(3_000_000 + i) for i in range(4)]
    want = [piece(d, False) for d in inputs]
    got = [None] * 4

    def run(i):
        h = CommP()
        for off in range(0, len(inputs[i]), 65536):
            h.update(inputs[i][off:off + 65536])
        got[i] = h.digest()

    ts = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert got == want


@pytest.mark.parametrize("pure", [False, True])
def test_replace_prefix(pure):
    rnd = random.Random(6)
    sizes = [0, 1, 50, 59, 60, 126, 127, 128, 200, 254, 1000, 127 * 64 + 3, 127 * 130, 300_000]
    if not pure:
        sizes += [127 * 64 * 64 + 5, 2_000_003]
    for body_len in sizes:
        body = rnd.randbytes(body_len)
        placeholder, real = rnd.randbytes(59), rnd.randbytes(59)
        h = CommP(pure=pure)
        h.update(placeholder)
        h.update(body)
        got = h.digest(replace_prefix=real)
        assert got == piece(real + body, pure), body_len
        assert h.digest() == piece(placeholder + body, pure)  # digest leaves the stream intact
        big = got.padded_size * 8
        assert h.digest(replace_prefix=real, piece_size=big) == piece(real + body, pure, piece_size=big)


def test_piece_size_checks():
    with pytest.raises(ValueError):
        piece(b"x" * 1017, False, piece_size=1024)  # 1024 holds 1016 payload bytes
    with pytest.raises(ValueError):
        piece(b"x", False, piece_size=1000)
    assert piece(b"x" * 1016, False, piece_size=1024).padded_size == 1024


def test_env_var_forces_pure_python():
    code = "from shared.ipld import commp; print(commp.native_available())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "SINGULARITY_PURE_COMMP": "1"}, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "False"


def test_extension_is_built():
    # The install (pip install -e .) must build it; the fallback is for other machines. By default it
    # uses SHA-NI exactly when the kernel says the CPU has it.
    import shared.ipld._commp as ext
    has_shani = "sha_ni" in cpu_flags()
    assert ext.cpu_has_shani() == has_shani
    assert ext.Hasher().uses_shani == has_shani
    assert ext.Hasher(use_shani=False).uses_shani is False


def test_native_extension_is_built():
    # The install builds it; without it every CAR falls back to the ~35 MB/s pure-Python hasher.
    assert commp.native_available(), "shared.ipld._commp did not build or load"
