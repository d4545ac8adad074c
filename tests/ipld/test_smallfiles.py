"""The C batch path of small files (shared/ipld/_smallfiles.c) against the Python path it replaces."""
import base64
import hashlib
import os
import random

import pytest

from shared.ipld import cid as cidlib
from shared.ipld import packer
from shared.ipld.pack import PackEntry, SourceChanged, pack_chunk, pack_path

smallfiles = pytest.importorskip("shared.ipld._smallfiles")


@pytest.mark.parametrize("use_shani", [True, False])
def test_sha256_matches_hashlib_at_every_padding_boundary(use_shani):
    rng = random.Random(7)
    for n in [*range(0, 200), 1000, 8191, 8192, 8193, (1 << 20) + 17]:
        data = rng.randbytes(n)
        assert smallfiles.sha256(data, use_shani=use_shani) == hashlib.sha256(data).digest(), n


def test_cid_text_is_multibase_base32():
    rng = random.Random(8)
    for n in range(0, 41):
        raw = rng.randbytes(n)
        assert smallfiles.cid_text(raw) == "b" + base64.b32encode(raw).decode().lower().rstrip("="), n
    assert cidlib.to_str(cidlib.raw(b"")) == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def entries_of(directory, names):
    out = []
    for name in names:
        st = os.stat(directory / name)
        out.append(PackEntry(str(directory / name), name, 0, st.st_size, st.st_size, st.st_mtime, str(directory)))
    return out


def test_read_blocks_frames_dedupes_and_stops_at_the_first_bad_file(tmp_path):
    (tmp_path / "a").write_bytes(b"alpha")
    (tmp_path / "b").write_bytes(b"")
    (tmp_path / "c").write_bytes(b"alpha")  # the same block as a: no second frame
    (tmp_path / "d").write_bytes(b"delta")
    os.symlink(tmp_path / "d", tmp_path / "link")
    names = ["a", "b", "c", "d"]
    entries = entries_of(tmp_path, names)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        seen: set = set()
        frames, cids, positions, done = smallfiles.read_blocks(fd, names, entries, True, seen)
        assert done == 4 and cids == [cidlib.raw(b"alpha"), cidlib.raw(b""), cidlib.raw(b"alpha"), cidlib.raw(b"delta")]
        assert positions[2] == -1 and seen == set(cids)
        expect = b"".join(bytes((36 + len(d),)) + cidlib.raw(d) + d for d in (b"alpha", b"", b"delta"))
        assert frames == expect and positions == [0, 42, -1, 42 + 37]
        # a symbolic link is not followed; a size or mtime other than the scan's stops the batch there
        link = entries_of(tmp_path, ["d"])[0]._replace(path=str(tmp_path / "link"), relative_path="link")
        wrong_size = entries[0]._replace(size=6, end=6)
        wrong_mtime = entries[3]._replace(mtime=entries[3].mtime - 5)
        for bad, name in ((link, "link"), (wrong_size, "a"), (wrong_mtime, "d")):
            frames, cids, positions, done = smallfiles.read_blocks(fd, ["b", name, "a"], [entries[1], bad, entries[0]],
                                                                   True, set())
            assert done == 1 and len(cids) == 1, name
        # the scan's mtime may be left out
        assert smallfiles.read_blocks(fd, ["a"], [entries[0]._replace(mtime=None)], True, set())[3] == 1
    finally:
        os.close(fd)


def make_tree(root, rng, files=300):
    for i in range(files):
        d = root / f"d{i % 7}" / ("deep" if i % 3 == 0 else "")
        d.mkdir(parents=True, exist_ok=True)
        size = rng.choice([0, 1, 100, 4096, 5000, (1 << 20) + 1]) if i % 50 == 0 else rng.randrange(0, 3000)
        (d / f"f{i:04d}").write_bytes(rng.randbytes(size) if i % 11 else b"same")


def test_the_batch_path_writes_the_same_car_as_the_python_path(tmp_path, monkeypatch):
    make_tree(tmp_path / "tree", random.Random(9))
    root = tmp_path / "tree"
    entries = [{"path": str(p), "relative_path": str(p.relative_to(root)), "start": 0, "end": p.stat().st_size,
                "size": p.stat().st_size, "mtime": p.stat().st_mtime, "root": str(root)}
               for p in sorted(root.rglob("*")) if p.is_file()]
    results = []
    for native in (True, False):
        if not native:
            monkeypatch.setattr(packer, "read_blocks", None)
        monkeypatch.setattr(packer, "RUN_FILES", 16)  # many batches, some cut short by RUN_BYTES
        monkeypatch.setattr(packer, "RUN_BYTES", 20_000)
        for as_path in (True, False):
            out = tmp_path / f"out-{native}-{as_path}"
            out.mkdir()
            if as_path:
                r = pack_path(str(root), str(out))
            else:
                r = pack_chunk([PackEntry(e["path"], e["relative_path"], 0, e["end"], e["size"], e["mtime"],
                                          None if native else e["root"]) for e in entries],
                               str(out), collect_blocks=True)
            results.append((r.data_cid, r.piece_cid, r.car_size, r.entry_cids, r.blocks, r.entry_spans,
                            open(r.car_path, "rb").read()))
    assert results[0] == results[2] and results[1] == results[3]


def test_a_file_changed_in_the_middle_of_a_batch_is_named(tmp_path):
    root = tmp_path / "tree"
    root.mkdir()
    for i in range(20):
        (root / f"f{i:02d}").write_bytes(b"x" * i)
    entries = entries_of(root, [f"f{i:02d}" for i in range(20)])
    (root / "f07").write_bytes(b"longer than before")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(SourceChanged) as info:
        pack_chunk(entries, str(out))
    assert info.value.path == str(root / "f07") and "size" in str(info.value)
    assert os.listdir(out) == []


def test_cid_text_reads_back_as_base64_does():
    rng = random.Random(10)
    for n in range(0, 41):
        raw = rng.randbytes(n)
        text = cidlib.to_str(raw)
        assert smallfiles.cid_bytes(text) == raw and smallfiles.cid_bytes("b" + text[1:].upper()) == raw
        assert cidlib.from_str(text) == raw
    for bad in ("", "x", "bafy!", "bé", "b1"):
        assert smallfiles.cid_bytes(bad) is None, bad
    with pytest.raises(ValueError):
        cidlib.from_str("zQm")
    with pytest.raises(ValueError):  # binascii.Error is one
        cidlib.from_str("b1")


def test_small_files_wait_for_commp_beyond_the_backlog(tmp_path, monkeypatch):
    make_tree(tmp_path / "tree", random.Random(11), files=200)
    reference = tmp_path / "ref"
    reference.mkdir()
    expect = pack_path(str(tmp_path / "tree"), str(reference))
    seen = []
    real_wait = packer.CommPThread.wait_room

    def wait_room(self, limit):
        real_wait(self, limit)
        seen.append(self._queued)

    monkeypatch.setattr(packer.CommPThread, "wait_room", wait_room)
    monkeypatch.setattr(packer, "BACKLOG", 0)
    monkeypatch.setattr(packer, "RUN_FILES", 8)
    out = tmp_path / "out"
    out.mkdir()
    got = pack_path(str(tmp_path / "tree"), str(out))
    assert (got.data_cid, got.piece_cid) == (expect.data_cid, expect.piece_cid)
    assert len(seen) > 10 and max(seen) == 0  # every batch read only once commP had caught up
