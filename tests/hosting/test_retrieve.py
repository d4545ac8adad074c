"""Retrieval through the index: every file, folder and the whole dataset, byte for byte, over
both /ipfs blocks and /piece ranges, with fallback, resume and tar output."""
from __future__ import annotations

import asyncio
import io
import os
import tarfile
from pathlib import Path

import pytest

from cli import retrieve as cli_retrieve
from services.indexing import retrieval
from services.indexing.sources import Source
from shared import models
from shared.ipld import cid as cidlib
from tests.hosting.conftest import EMPTY_DIRS, dataset_files
from tests.ipld import ipld_testdata
from tests.pipeline import snapshot

FILES = dataset_files()
FOLDERS = sorted({"/".join(p.split("/")[:i]) for p in [*FILES, *(d + "/" for d in EMPTY_DIRS)]
                  for i in range(1, p.count("/") + 1)})


def tree_of(root: Path) -> dict[str, bytes]:
    """The files under root with their bytes (snapshot() adds the directories)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


async def run(target, urls, methods, output=None, tar=None):
    return await asyncio.to_thread(cli_retrieve.run, target, [Source(u) for u in urls], methods,
                                   None if output is None else str(output), tar)


async def test_files_split_across_chunks(indexed, db):
    """The shape the real scanner gave the dataset, which the tests below rely on."""
    prepared, _ = indexed
    assert len(prepared.chunks) >= 5
    ranges = await db[models.GENERATION_FILES].count_documents({"relativePath": "a/big.bin"})
    assert ranges == 3
    firsts = []
    for chunk in prepared.chunks:
        entries = await db[models.GENERATION_FILES].find({"generationId": chunk["_id"]}).sort("order", 1).to_list(None)
        firsts.append([(e["relativePath"], e.get("directory", False)) for e in entries[:2]])
    # A chunk that opens with an empty directory and an empty file, and one that ends with one.
    assert [("c/empty-dir", True), ("c/empty.txt", False)] in firsts
    last = await db[models.GENERATION_FILES].find({"generationId": prepared.chunks[-1]["_id"]}).sort("order", -1).to_list(1)
    assert (last[0]["relativePath"], last[0]["directory"]) == ("zz/deeper/empty", True)


async def test_each_car_holds_exactly_its_chunk(indexed, db, source_dir):
    """Read back with an independent CAR reader, every chunk's DAG is its ranges of the source files
    and its empty directories, nothing more: what a provider's copy of one piece gives back."""
    prepared, _ = indexed
    for chunk in prepared.chunks:
        with open(chunk["carPath"], "rb") as f:
            roots, blocks = ipld_testdata.read_car(f.read())
        assert roots == [cidlib.from_str(chunk["dataCid"])]
        unpacked: dict = {}
        ipld_testdata.unpack(roots[0], dict(blocks), unpacked)
        entries = await db[models.GENERATION_FILES].find({"generationId": chunk["_id"]}).to_list(None)
        assert unpacked == {
            e["relativePath"]: None if e.get("directory") else
            (source_dir / e["relativePath"]).read_bytes()[e["start"]:e["end"]] for e in entries}, chunk["index"]


@pytest.mark.parametrize("methods", [("block",), ("piece",), ("car",)])
async def test_every_file_byte_identical(indexed, hosting, tmp_path, methods):
    prepared, index_cid = indexed
    for rel, data in FILES.items():
        out = tmp_path / f"out-{methods[0]}" / rel.replace("/", "_")
        summary = await run(f"{index_cid}/{rel}", [hosting], methods, output=out)
        assert summary["type"] == "file" and summary["fetched"] == 1
        assert (out / rel.rsplit("/", 1)[-1]).read_bytes() == data, rel
        assert os.listdir(out) == [rel.rsplit("/", 1)[-1]]  # no temporary file left behind


@pytest.mark.parametrize("methods", [("block",), ("piece",)])
async def test_every_folder_and_whole_dataset(indexed, hosting, tmp_path, methods, source_dir):
    prepared, index_cid = indexed
    for folder in FOLDERS:
        out = tmp_path / methods[0] / folder.replace("/", "_")
        await run(f"demo/{folder}", [hosting], methods, output=out)
        name = folder.rsplit("/", 1)[-1]
        assert snapshot(out / name) == snapshot(source_dir / folder), folder
    out = tmp_path / methods[0] / "all"
    summary = await run("demo", [hosting], methods, output=out)
    assert summary["files"] == len(FILES) and summary["indexCid"] == index_cid
    # Byte for byte the tree that was prepared: every file, empty ones, and empty directories.
    assert snapshot(out / "demo") == snapshot(source_dir)
    assert snapshot(source_dir)[0] == FILES and set(EMPTY_DIRS) <= set(snapshot(source_dir)[1])


async def test_falls_back_to_the_next_source(indexed, hosting, tmp_path, unused_tcp_port):
    _, index_cid = indexed
    dead = f"http://127.0.0.1:{unused_tcp_port}"
    summary = await run(f"{index_cid}/a", [dead, hosting], ("piece", "block"), output=tmp_path)
    assert summary["fetched"] == 3
    assert (tmp_path / "a" / "big.bin").read_bytes() == FILES["a/big.bin"]


async def test_resume_skips_verified_files_and_refetches_damaged_ones(indexed, hosting, tmp_path):
    _, index_cid = indexed
    first = await run("demo/c", [hosting], ("block",), output=tmp_path)
    assert first["fetched"] == 3  # dup.bin, mid.bin and the empty file
    damaged = tmp_path / "c" / "mid.bin"
    data = bytearray(damaged.read_bytes())
    data[MID] ^= 1  # same size, one bit off: only a hash can tell
    damaged.write_bytes(bytes(data))
    again = await run("demo/c", [hosting], ("block",), output=tmp_path)
    assert (again["fetched"], again["skipped"]) == (1, 2)
    assert damaged.read_bytes() == FILES["c/mid.bin"]


MID = 700_000


async def test_tar_output_file(indexed, hosting, tmp_path):
    _, index_cid = indexed
    bundle = tmp_path / "bundles" / "x.tar"
    summary = await run("demo/a", [hosting], ("piece", "block"), tar=str(bundle))
    assert summary["output"] == str(bundle)
    with tarfile.open(bundle) as tar:
        got = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
        assert "a/b" in tar.getnames()
    assert got == {k: v for k, v in FILES.items() if k.startswith("a/")}
    assert os.listdir(bundle.parent) == ["x.tar"]


async def test_unknown_path_and_unknown_name(indexed, hosting, tmp_path):
    _, index_cid = indexed
    with pytest.raises(retrieval.RetrievalError, match="no 'nope'"):
        await run(f"{index_cid}/a/nope", [hosting], ("block",), output=tmp_path)
    with pytest.raises(retrieval.RetrievalError, match="cannot find the index of dataset 'other'"):
        await run("other/a", [hosting], ("block",), output=tmp_path)


async def test_piece_spans_go_straight_to_the_file_unless_leaves_repeat(indexed, hosting, tmp_path):
    """Our CARs hold a file's leaves in order: one range request each, nothing spooled."""
    _, index_cid = indexed
    opened = []

    class Counting(Source):
        def open(self, path, headers=None):
            opened.append(path)
            return super().open(path, headers)

    for rel, asked_again in (("c/mid.bin", False), ("d/e/f/deep.bin", False)):
        opened.clear()
        out = tmp_path / rel.replace("/", "_")
        await asyncio.to_thread(cli_retrieve.run, f"{index_cid}/{rel}", [Counting(hosting)], ("piece",), str(out), None)
        assert (out / rel.split("/")[-1]).read_bytes() == FILES[rel]
        pieces = [p for p in opened if p.startswith("/piece/")]
        assert (len(pieces) > len(set(pieces))) == asked_again, (rel, pieces)


def test_a_span_of_repeated_leaves_is_walked_from_the_spool(tmp_path):
    """A leaf stored once but used twice cannot go straight to the file: confirm() refuses, and
    the spooled walk puts it in both places."""
    import io as _io
    from services.indexing import sources as src
    from shared.ipld import unixfs, varint
    emitted = {}
    builder = unixfs.FileBuilder(lambda cid, data: emitted.setdefault(bytes(cid), bytes(data)))
    leaf = os.urandom(unixfs.CHUNK_SIZE)
    builder.add_chunk(leaf)
    builder.add_chunk(leaf)
    root = builder.close().cid
    stream = b"".join(varint.encode(len(c) + len(d)) + c + d for c, d in emitted.items())  # leaf, then root
    written = bytearray(2 * len(leaf))

    def sink(position, data):
        written[position:position + len(data)] = data

    with open(tmp_path / "spool", "w+b") as spool:
        direct = src._Frames(spool, "test", sink, limit=len(written))
        direct.read(_io.BytesIO(stream), len(stream))
        with pytest.raises(src._NotInFileOrder):
            direct.confirm(root)
        spooled = src._Frames(spool, "test")
        spooled.read(_io.BytesIO(stream), len(stream))
        assert src.walk_blocks(root, spooled.get, sink) == 2 * len(leaf)
    assert bytes(written) == leaf + leaf
