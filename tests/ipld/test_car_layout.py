"""The CAR layout of an inline chunk (shared/ipld/layout.py): exact bytes, and compact enough that a
chunk of a million files fits in documents far below MongoDB's 16 MiB."""
from __future__ import annotations

import os
import random

import bson

from shared.ipld import cid as cidlib
from shared.ipld import layout, pack, varint
from tests.hosting.inline_helpers import bytes_under


def test_layout_assembles_the_car_byte_for_byte_in_any_range(tmp_path):
    rng = random.Random(3)
    root = tmp_path / "tree"
    sizes = [0, 1, 700, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 2 * (1 << 20) + 77]
    for i, size in enumerate(sizes * 3):
        path = root / f"d{i % 3}" / f"f{i}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size) if i % 4 else bytes(size))  # zeros: deduplicated leaves
    (root / "empty" / "dir").mkdir(parents=True)
    files, empty = pack.scan_dir(str(root))
    normal = pack.pack_chunk(files, str(tmp_path), collect_blocks=True, empty_dirs=empty)
    out = tmp_path / "inline-out"
    out.mkdir()
    recorder = layout.Recorder(files, segment_bytes=512)  # many segments: ranges across their edges
    inline = pack.pack_chunk(files, str(out), collect_blocks=True, empty_dirs=empty, layout=recorder)
    assert bytes_under(str(out)) == 0 and inline.car_path == ""
    fields = ("data_cid", "piece_cid", "car_size", "entry_cids", "entry_spans", "blocks")
    assert [getattr(inline, f) for f in fields] == [getattr(normal, f) for f in fields]
    car = open(normal.car_path, "rb").read()
    decoded = [layout.decode(s) for s in recorder.segments]
    assert len(decoded) > 3

    def read(part):
        with open(root / part.path, "rb") as f:
            return layout.read_full(f.fileno(), part.offset, part.length)

    def assemble(start, end):
        return layout.assemble([p for d in decoded for p in layout.pieces(d, start, end)], read)

    assert assemble(0, len(car)) == car
    for _ in range(300):
        start = rng.randrange(len(car))
        end = rng.randrange(start, len(car) + 1)
        assert assemble(start, end) == car[start:end]


def test_a_million_file_chunk_fits_in_small_documents():
    """The recorder fed the events of a million 2 KiB files with 40-byte paths, in folders of 1,000
    (each folder's dag-pb node recorded as literal bytes): no segment near 16 MiB."""
    class Entry:
        __slots__ = ("relative_path", "size", "mtime")

        def __init__(self, i):
            self.relative_path = f"folder-{i // 1000:06d}/some-file-name-{i:014d}.bin"
            self.size = 2048
            self.mtime = 1700000000.123456

    count = 1_000_000
    entries = [Entry(i) for i in range(count)]
    recorder = layout.Recorder(entries)
    recorder.literal(bytes(59))  # the header
    cid = cidlib.raw(b"x")
    data = memoryview(bytes(2048))
    folder_node = bytes(1000 * 70)
    node_cid = cidlib.of_block(cidlib.DAG_PB, b"folder")
    for i in range(count):
        recorder.block(recorder.size + len(varint.encode(len(cid) + 2048)) + len(cid), cid, data, (i, 0))
        if i % 1000 == 999:
            recorder.block(recorder.size + len(varint.encode(len(node_cid) + len(folder_node))) + len(node_cid),
                           node_cid, folder_node, None)
    segments = recorder.finish(bytes(59), recorder.size)
    stats = recorder.stats()
    biggest = max(len(bson.encode({"files": [list(f) for f in s.files], "records": s.records, "start": s.start,
                                   "end": s.end})) for s in segments)
    print(f"\n1M files: {stats['bytes']} B of layout in {stats['documents']} documents, largest {biggest} B")
    assert biggest < 4 << 20
    assert stats["bytes"] / count < 250  # bytes per file: its frame, its reference, its directory entry
    assert sum(s.end - s.start for s in segments) == recorder.size
