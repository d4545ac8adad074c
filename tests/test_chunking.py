"""Property: for any tree and any sizes, the walk + chunker covers every byte exactly once and
keeps every chunk but the last between minSize and maxSize."""
import os
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.worker.chunker import Chunker
from services.worker.walk import File, Problem, walk
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
    ranges = [(e.file.relative_path, e.start, e.end, closes) for e, closes in placed]
    assert ranges == [("a", 0, 30, False), ("b", 0, 60, True), ("b", 60, 150, True), ("b", 150, 240, True),
                      ("b", 240, 250, False)]
