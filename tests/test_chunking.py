"""Property: for any tree and any sizes, the walk + chunker covers every byte exactly once and
keeps every chunk but the last between minSize and maxSize."""
import os
import tempfile

import pytest

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.worker.chunker import CLOSE, Chunker
from services.worker.walk import File, Problem, walk
from shared.ipld.pack import pack_chunk
from tests.scan_helpers import assert_layout, make_tree, reference_chunks

names = st.text(alphabet="abcXYZ.-_é0", min_size=1, max_size=6).filter(lambda n: n not in (".", ".."))
trees = st.dictionaries(st.lists(names, min_size=1, max_size=3).map("/".join), st.integers(0, 5000), max_size=25)


def consistent(tree: dict) -> dict:
    """Drop paths that would need a file to also be a directory."""
    files = {}
    for path in sorted(tree, key=len):
        parts = path.split("/")
        if any("/".join(parts[:i]) in files for i in range(1, len(parts))):
            continue
        if any(other.startswith(path + "/") for other in files):
            continue
        files[path] = tree[path]
    return files


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees, min_size=st.integers(1, 4000), spread=st.integers(0, 4000))
def test_every_byte_in_exactly_one_chunk(tree, min_size, spread):
    files = consistent(tree)
    max_size = min_size + spread
    with tempfile.TemporaryDirectory() as root:
        make_tree(root, files)
        chunks = reference_chunks(root, min_size, max_size)
        assert_layout(chunks, files, min_size, max_size)


def test_walk_is_sorted_and_resumable(tmp_path):
    files = {f"d{i}/{j}.bin": 1 for i in range(3) for j in range(3)} | {"a": 1, "d1-x": 1, ".hidden": 1}
    make_tree(tmp_path, files)
    order = [f.relative_path for f in walk(str(tmp_path)) if isinstance(f, File)]
    # Directory entries sort by name, so "d1/..." precedes "d1-x" although "/" > "-" in a plain string sort.
    assert order == [".hidden", "a"] + [f"d0/{j}.bin" for j in range(3)] + [f"d1/{j}.bin" for j in range(3)] \
        + ["d1-x"] + [f"d2/{j}.bin" for j in range(3)]
    for k, after in enumerate(order):
        resumed = [f.relative_path for f in walk(str(tmp_path), tuple(after.split("/"))) if isinstance(f, File)]
        assert resumed == order[k:]


def test_symlinks_are_skipped_and_unreadable_entries_named(tmp_path, monkeypatch):
    make_tree(tmp_path, {"ok.txt": 3, "secret.txt": 3, "locked/inner.txt": 3})
    os.symlink("/etc/hostname", tmp_path / "link")
    real_access, real_scandir = os.access, os.scandir
    # Tests run as root, which reads everything: simulate what an ordinary user meets.
    monkeypatch.setattr(os, "access", lambda p, m: False if str(p).endswith("secret.txt") else real_access(p, m))

    def scandir(path):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    items = list(walk(str(tmp_path)))
    files = [i.relative_path for i in items if isinstance(i, File)]
    problems = {(p.kind, os.path.basename(p.path)) for p in items if isinstance(p, Problem)}
    assert files == ["ok.txt"]
    assert problems == {("skipped", "link"), ("error", "secret.txt"), ("error", "locked")}


def test_a_large_file_is_split_to_fill_chunks():
    chunker = Chunker(min_size=60, max_size=90)
    small = File(("a",), "/a", 30, 0.0)
    big = File(("b",), "/b", 250, 0.0)
    placed = list(chunker.add(small)) + list(chunker.add(big))
    layout = ["|" if p is CLOSE else (p.file.relative_path, p.start, p.end) for p in placed]
    assert layout == [("a", 0, 30), ("b", 0, 60), "|", ("b", 60, 150), "|", ("b", 150, 240), "|", ("b", 240, 250)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees, limit=st.integers(1500, 40_000))
def test_chunks_close_before_their_car_outgrows_the_piece(tree, limit):
    """The chunker's overestimate of CAR overhead holds against real CARs: with many small files,
    chunks close early (below minSize if they must) so every CAR fits its piece."""
    files = consistent(tree)
    with tempfile.TemporaryDirectory() as root:
        make_tree(root, files)
        chunks = reference_chunks(root, limit, limit, car_limit=limit)
        assert_layout(chunks, files, 0, limit)  # chunks may close below minSize to fit the piece
        with tempfile.TemporaryDirectory() as out:
            for chunk in chunks:
                result = pack_chunk([{"path": os.path.join(root, rel), "relative_path": rel, "start": start,
                                      "end": end, "size": files[rel], "mtime": None} for rel, start, end in chunk], out)
                assert result.car_size <= limit, (chunk, result.car_size)
                os.unlink(result.car_path)


def test_many_tiny_files_fill_pieces_without_overflowing_them(tmp_path):
    deal = 64 * 1024
    files = {f"d{i // 300}/file-{i:05d}.txt": 20 for i in range(3000)}
    make_tree(tmp_path / "ds", files)
    (tmp_path / "out").mkdir()
    chunks = reference_chunks(tmp_path / "ds", int(deal * 0.6), int(deal * 0.9), car_limit=deal * 127 // 128)
    assert len(chunks) > 1
    for chunk in chunks:
        result = pack_chunk([{"path": str(tmp_path / "ds" / rel), "relative_path": rel, "start": start, "end": end,
                              "size": 20, "mtime": None} for rel, start, end in chunk], str(tmp_path / "out"))
        assert deal * 0.5 < result.car_size <= deal * 127 // 128  # full, yet within the piece


@pytest.mark.parametrize("limit", [1 << 20, (1 << 20) + 5000, 3 << 20, 5 << 20])
def test_multi_block_files_split_within_the_piece(tmp_path, limit):
    files = {"a/big.bin": (7 << 20) + 17, "a/small.txt": 3000, "b/mid.bin": (2 << 20) + 1}
    make_tree(tmp_path / "ds", files)
    (tmp_path / "out").mkdir()
    chunks = reference_chunks(tmp_path / "ds", limit // 2, limit, car_limit=limit)
    assert_layout(chunks, files, 0, limit)
    for chunk in chunks:
        result = pack_chunk([{"path": str(tmp_path / "ds" / rel), "relative_path": rel, "start": start, "end": end,
                              "size": files[rel], "mtime": None} for rel, start, end in chunk], str(tmp_path / "out"))
        assert result.car_size <= limit
