import errno
import os

import pytest

from shared.ipld import cid as cidlib
from shared.ipld import pack as packmod
from shared.ipld.commp import CommP
from shared.ipld.pack import PackCancelled, PackEntry, SourceChanged, pack_chunk, pack_path

import ipld_testdata as td

MiB = 1 << 20


def entry(path, rel, start=0, end=None):
    st = os.stat(path)
    return {"path": str(path), "relative_path": rel, "start": start, "end": st.st_size if end is None else end,
            "size": st.st_size, "mtime": st.st_mtime}


@pytest.fixture
def src(tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    (d / "big.bin").write_bytes(td.det_bytes("pack/big", 3 * MiB + 100))
    (d / "small.txt").write_bytes(b"hello")
    (d / "empty").write_bytes(b"")
    return d


@pytest.fixture
def out(tmp_path):
    o = tmp_path / "out"
    o.mkdir()
    return o


def read_back(car_path):
    roots, blocks = td.read_car(open(car_path, "rb").read())
    files: dict = {}
    td.unpack(roots[0], dict(blocks), files)
    return roots, blocks, files


def test_chunk_with_split_file_and_nested_paths(src, out):
    big = (src / "big.bin").read_bytes()
    entries = [
        entry(src / "small.txt", "docs/small.txt"),
        entry(src / "big.bin", "data/big.bin.part1", MiB + 7, 3 * MiB + 9),
        entry(src / "empty", "empty"),
    ]
    res = pack_chunk(entries, str(out), collect_blocks=True)
    roots, blocks, files = read_back(res.car_path)
    assert cidlib.to_str(roots[0]) == res.data_cid
    assert files == {"docs/small.txt": b"hello", "data/big.bin.part1": big[MiB + 7:3 * MiB + 9], "empty": b""}
    # per-entry CIDs in input order: a range is chunked from its own start, like a standalone file
    part = out.parent / "part"
    part.write_bytes(big[MiB + 7:3 * MiB + 9])
    alone = pack_path(str(part), str(out))
    assert res.entry_cids == [cidlib.to_str(cidlib.raw(b"hello")), alone.data_cid, cidlib.to_str(cidlib.raw(b""))]
    # commP of the finished file, recomputed from scratch
    h = CommP()
    h.update(open(res.car_path, "rb").read())
    assert (res.piece_cid, res.piece_size, res.car_size) == (h.digest().cid, h.digest().padded_size, os.path.getsize(res.car_path))
    # the block index points at each block's data inside the CAR
    car = open(res.car_path, "rb").read()
    assert sorted(c for c, _, _ in res.blocks) == sorted(td.cid_str(c) for c, _ in blocks)
    for c, off, n in res.blocks:
        assert cidlib.to_str(cidlib.of_block(cidlib.parse(cidlib.from_str(c))[0], car[off:off + n])) == c


def test_entry_order_does_not_change_the_car(src, out, tmp_path):
    a = [entry(src / "small.txt", "x/s"), entry(src / "big.bin", "x/b"), entry(src / "empty", "e")]
    r1 = pack_chunk(a, str(out))
    other = tmp_path / "out2"
    other.mkdir()
    r2 = pack_chunk(list(reversed(a)), str(other), piece_size=8 * MiB)
    assert open(r1.car_path, "rb").read() == open(r2.car_path, "rb").read()
    assert r2.entry_cids == list(reversed(r1.entry_cids))
    assert r2.piece_size == 8 * MiB and r1.piece_size == 4 * MiB
    h = CommP()
    h.update(open(r1.car_path, "rb").read())
    assert r2.piece_cid == h.digest(piece_size=8 * MiB).cid


def test_piece_size_too_small(src, out):
    with pytest.raises(ValueError):
        pack_chunk([entry(src / "big.bin", "b")], str(out), piece_size=2 * MiB)
    with pytest.raises(ValueError):  # the CAR overhead pushes 1016 bytes of data past 1 KiB
        p = src / "k"
        p.write_bytes(b"z" * 1016)
        pack_chunk([entry(p, "k")], str(out), piece_size=1024)
    assert os.listdir(out) == []


@pytest.mark.parametrize("change", ["size", "mtime", "vanish", "shrink_during_read"])
def test_source_changed(src, out, change, monkeypatch):
    e = entry(src / "big.bin", "b")
    if change == "size":
        e["size"] += 1
        e["end"] += 1
    elif change == "mtime":
        e["mtime"] -= 10
    elif change == "vanish":
        os.unlink(src / "big.bin")
    else:
        real_add = packmod.unixfs.FileBuilder.add_chunk

        def add_then_truncate(self, data):
            real_add(self, data)
            os.truncate(src / "big.bin", MiB + 1)

        monkeypatch.setattr(packmod.unixfs.FileBuilder, "add_chunk", add_then_truncate)
    with pytest.raises(SourceChanged) as info:
        pack_chunk([entry(src / "small.txt", "s"), e], str(out))
    assert info.value.path == str(src / "big.bin")
    assert os.listdir(out) == []


def test_cancel_removes_temp_file(src, out):
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(PackCancelled):
        pack_chunk([entry(src / "big.bin", "b")], str(out), should_stop=stop)
    assert os.listdir(out) == []


def test_disk_full_removes_temp_file_and_reraises(src, out, monkeypatch):
    real = os.writev
    state = {"n": 0}

    def failing(fd, parts):
        state["n"] += 1
        if state["n"] > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, parts)

    monkeypatch.setattr(os, "writev", failing)
    with pytest.raises(OSError) as info:
        pack_chunk([entry(src / "big.bin", "b")], str(out))
    assert info.value.errno == errno.ENOSPC
    assert os.listdir(out) == []


def test_bad_entries(src, out):
    for rel in ("/abs", "a/../b", "a//b", ""):
        with pytest.raises(ValueError):
            pack_chunk([entry(src / "small.txt", rel)], str(out))
    with pytest.raises(ValueError):
        pack_chunk([entry(src / "small.txt", "a"), entry(src / "empty", "a")], str(out))
    with pytest.raises(ValueError):
        pack_chunk([entry(src / "small.txt", "a"), entry(src / "empty", "a/b")], str(out))
    with pytest.raises(ValueError):
        pack_chunk([entry(src / "small.txt", "a", 0, 99)], str(out))
    assert os.listdir(out) == []


def test_entries_as_objects_and_empty_chunk(src, out):
    st = os.stat(src / "small.txt")
    e = PackEntry(str(src / "small.txt"), "s", 0, 5, 5, st.st_mtime)
    res = pack_chunk([e], str(out))
    assert res.entry_cids == [cidlib.to_str(cidlib.raw(b"hello"))]
    empty = pack_chunk([], str(out))
    assert empty.data_cid == "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"  # the empty UnixFS directory


def test_pack_path_skips_symlinks(src, out):
    os.symlink(src / "big.bin", src / "link")
    res = pack_path(str(src), str(out))
    _, _, files = read_back(res.car_path)
    assert set(files) == {"big.bin", "small.txt", "empty"}


def test_memory_stays_bounded(tmp_path, out):
    # A 64 MiB file through the pipeline must not grow the heap by anything near its size.
    import tracemalloc
    p = tmp_path / "f"
    with open(p, "wb") as f:
        for i in range(64):
            f.write(td.det_bytes(f"mem/{i}", MiB))
    tracemalloc.start()
    pack_path(str(p), str(out))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 24 * MiB
