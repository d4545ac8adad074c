"""The dataset index: its DataModel shape, splitting of big directories, the indexer's
readiness rule, and best-effort pinning through kubo."""
from __future__ import annotations

import os

import libipld
import pytest

from services.indexing import builder, indexer, model
from shared.ipld import carfile
from shared import config as config_module
from shared import models
from shared.ipld import cid as cidlib
from tests.hosting.conftest import DEAL, MAX_CHUNK, MIN_CHUNK, MiB, dataset_files
from tests.hosting.fakes.kubo import FakeKubo
from tests.pipeline import prepare, prepare_partly, run_worker_until_done


def read_index(path: str) -> tuple[bytes, dict[bytes, dict]]:
    with open(path, "rb") as f:
        header, blocks = libipld.decode_car(f.read())
    return header["roots"][0], blocks


async def test_index_data_model(indexed, db, config):
    prepared, index_cid = indexed
    prep = await db[models.SCANNING].find_one({"_id": prepared.id})
    assert prep["indexCid"] == index_cid and prep["indexPin"]["status"] == "disabled"
    path = os.path.join(config.deal_preparation_worker.out_dir, f"{index_cid}.car")
    root, blocks = read_index(path)
    assert cidlib.to_str(root) == index_cid
    top = blocks[root]
    assert top["__type"] == "dir" and top["__size"] == sum(len(v) for v in dataset_files().values())
    assert [s["pieceCid"] for s in top["__source"]] == [g["pieceCid"] for g in prepared.chunks]
    assert [cidlib.to_str(s["cid"]) for s in top["__source"]] == [g["dataCid"] for g in prepared.chunks]
    # The file named "__type" is escaped, and does not disturb the reserved key.
    assert top["___type"]["__size"] == len(dataset_files()["__type"])
    big = blocks[blocks[root]["a"]]["big.bin"]
    assert big["__type"] == "file" and big["__size"] == 3 * MiB + 300_000
    spans = [(s["offset"], s["length"]) for s in big["__source"]]
    assert len(spans) == 3 and spans[0][0] == 0 and spans[1][1] == MiB + MiB // 2  # the middle fills a chunk
    assert all(a + n == b for (a, n), (b, _) in zip(spans, spans[1:])) and sum(n for _, n in spans) == big["__size"]
    assert {s["pieceCid"] for s in big["__source"]} <= {g["pieceCid"] for g in prepared.chunks}
    assert all(s["selector"] == "/a/big.bin" for s in big["__source"])
    # Each source's CAR span really holds its blocks: check against the CAR files.
    for source in big["__source"]:
        # Links (tag 42), not strings: the index is one IPLD DAG over the data.
        assert isinstance(source["cid"], bytes) and isinstance(source["dataCid"], bytes)
        assert b"\xd8\x2a" + b"\x58\x25\x00" + source["cid"] in blocks_raw(path)
        gen = next(g for g in prepared.chunks if g["dataCid"] == cidlib.to_str(source["dataCid"]))
        _, frames = carfile.frame_map(gen["carPath"])
        frame = frames[source["cid"]]
        assert source["carOffset"] <= frame.start and frame.end <= source["carOffset"] + source["carLength"]
    assert await db[models.INDEX_BLOCKS].count_documents({"indexCid": index_cid}) == len(blocks)


def blocks_raw(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def test_big_directory_is_split_below_the_block_limit(tmp_path):
    tree = builder.DirEntry()
    for i in range(3000):
        tree.files[f"file-{i:05d}.txt"] = builder.FileEntry(1, None, [{
            "cid": "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", "selector": f"/file-{i:05d}.txt",
            "offset": 0, "length": 1, "dataCid": "bafy", "pieceCid": "baga", "pieceSize": 128,
            "carOffset": 0, "carLength": 1}])
    limit = 4 * 1024  # small enough that the list of parts needs parts of its own
    index_cid, path, listed = builder.write_index_car(tree, [], str(tmp_path), max_block=limit)
    root, blocks = read_index(path)
    assert len(blocks) > 20 and all(b["length"] <= limit for b in listed)
    assert any(node.get("__type") == "dirpart" and "__parts" in node for node in blocks.values())
    get = blocks.__getitem__
    top = blocks[root]
    assert "__parts" in top and top["__size"] == 3000
    assert [name for name, _ in model.entries(top, get)] == sorted(tree.files)
    for name in ("file-00000.txt", "file-01500.txt", "file-02999.txt"):
        assert model.lookup(top, name, get)["__source"][0]["selector"] == f"/{name}"
    assert model.lookup(top, "file-03000.txt", get) is None
    assert model.lookup(top, "a-before-everything", get) is None


async def test_indexer_waits_for_every_chunk(db, config, source_dir):
    prepared = await prepare_partly(db, config, source_dir, "partial", DEAL, MIN_CHUNK, MAX_CHUNK, packed=1)
    assert [c["status"] for c in prepared.chunks][:2] == ["completed", "active"]
    assert await indexer.build_index(db, config, prepared.id) is None
    assert await indexer.index_pending(db, config) == 0
    await run_worker_until_done(db, config, [prepared.id])  # a worker packs the rest
    assert await indexer.index_pending(db, config) == 1
    prep = await db[models.SCANNING].find_one({"_id": prepared.id})
    assert prep["indexCid"] and "indexLease" not in prep
    assert await indexer.index_pending(db, config) == 0  # nothing left to do


async def test_inconsistent_chunks_are_recorded_not_raised(db, config, source_dir):
    prepared = await prepare(db, config, source_dir, "broken", DEAL, MIN_CHUNK, MAX_CHUNK)
    await db[models.GENERATION_FILES].delete_one({"relativePath": "a/big.bin", "start": 0})
    assert await indexer.index_pending(db, config) == 0
    prep = await db[models.SCANNING].find_one({"_id": prepared.id})
    assert prep["indexCid"] is None and "a/big.bin" in prep["indexError"]


async def test_one_failing_preparation_does_not_stop_the_others(db, config, source_dir, monkeypatch):
    first = await prepare(db, config, source_dir, "first", DEAL, MIN_CHUNK, MAX_CHUNK)
    second = await prepare(db, config, source_dir, "second", DEAL, MIN_CHUNK, MAX_CHUNK)
    collect = builder.collect

    async def deep_tree_on_first(db_, preparation_id, *args):
        if preparation_id == first.id:  # what a tree thousands of levels deep did
            raise RecursionError("maximum recursion depth exceeded")
        return await collect(db_, preparation_id, *args)

    monkeypatch.setattr(builder, "collect", deep_tree_on_first)
    assert await indexer.index_pending(db, config) == 1
    failed = await db[models.SCANNING].find_one({"_id": first.id})
    assert "RecursionError" in failed["indexError"] and "indexLease" not in failed, failed.get("indexLease")
    assert (await db[models.SCANNING].find_one({"_id": second.id}))["indexCid"]


@pytest.mark.parametrize("methods", [("block",), ("piece",)])
async def test_names_with_backslashes_are_indexed_and_retrieved(db, config, tmp_path, hosting, methods):
    from tests.hosting.test_retrieve import run
    from tests.pipeline import snapshot

    root = tmp_path / "ds"
    (root / "dir\\x").mkdir(parents=True)
    (root / "dir\\x" / "back\\slash.txt").write_bytes(b"kept")
    (root / "dir\\x" / "empty\\dir").mkdir()
    prepared = await prepare(db, config, root, "backslash", MiB, MiB // 2, MiB // 2)
    index_cid = await indexer.build_index(db, config, prepared.id)
    assert index_cid
    # A backslash is an ordinary character in a name: never a separator, on either side.
    summary = await run(f"{index_cid}/dir\\x", [hosting], methods, output=tmp_path / "out")
    assert summary["type"] == "dir", summary
    assert snapshot(tmp_path / "out" / "dir\\x") == snapshot(root / "dir\\x")
    assert sorted(os.listdir(tmp_path / "out")) == ["dir\\x"]


@pytest.fixture
async def kubo(aiohttp_server):
    fake = FakeKubo()
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


def with_ipfs(config, url: str):
    config.deal_preparation_service = config_module.DealPreparationService(
        **{**config.deal_preparation_service.__dict__, "ipfs_api": url})
    return config


async def test_index_is_pinned_through_kubo(db, config, prepared, kubo):
    index_cid = await indexer.build_index(db, with_ipfs(config, kubo.url), prepared.id)
    assert kubo.pinned == {index_cid}
    _, blocks = read_index(os.path.join(config.deal_preparation_worker.out_dir, f"{index_cid}.car"))
    assert set(kubo.blocks) == {cidlib.to_str(c) for c in blocks}
    prep = await db[models.SCANNING].find_one({"_id": prepared.id})
    assert prep["indexPin"]["status"] == "pinned"


async def test_kubo_failure_is_recorded_and_retried(db, config, prepared, kubo, monkeypatch):
    kubo.fail_with = 500
    config = with_ipfs(config, kubo.url)
    index_cid = await indexer.build_index(db, config, prepared.id)
    assert index_cid  # the preparation is indexed even though pinning failed
    prep = await db[models.SCANNING].find_one({"_id": prepared.id})
    assert prep["indexPin"]["status"] == "error" and "500" in prep["indexPin"]["error"]
    assert prep["indexPin"]["nextAttempt"] > models.now()
    await indexer.index_pending(db, config)
    assert kubo.requests == 1  # not due yet
    # Time passes: the retry becomes due. (The whole subdocument is replaced: the embedded test
    # server stores a datetime set through a dotted path as a string.)
    await db[models.SCANNING].update_one({"_id": prepared.id}, {"$set": {
        "indexPin": {**prep["indexPin"], "nextAttempt": models.now() - 1}}})
    kubo.fail_with = None
    await indexer.index_pending(db, config)
    prep = await db[models.SCANNING].find_one({"_id": prepared.id})
    assert prep["indexPin"]["status"] == "pinned" and prep["indexPin"]["attempts"] == 2, prep["indexPin"]
    assert kubo.pinned == {index_cid}


async def test_unreachable_kubo_does_not_fail_indexing(db, config, prepared, unused_tcp_port):
    config = with_ipfs(config, f"http://127.0.0.1:{unused_tcp_port}")
    assert await indexer.build_index(db, config, prepared.id)
    prep = await db[models.SCANNING].find_one({"_id": prepared.id})
    assert prep["indexPin"]["status"] == "error" and "cannot reach kubo" in prep["indexPin"]["error"]


async def test_migration_marks_old_indexes_and_the_indexer_rebuilds_them(indexed, db, config):
    from services.indexing.indexer import index_pending
    from shared.migrations import v0002_index_links

    prepared, index_cid = indexed
    # An index of the string-shaped era: another CID; the migration marks it, the indexer rebuilds.
    await db[models.SCANNING].update_one({"_id": prepared.id}, {"$set": {"indexCid": "bafyreiold"}})

    class Ctx:
        def __init__(self, db):
            self.db = db

        async def step(self, name, fn):
            await fn()

    await v0002_index_links.up(Ctx(db))
    assert (await db[models.SCANNING].find_one({"_id": prepared.id}))["indexStale"]
    assert await index_pending(db, config) == 1
    prep = await db[models.SCANNING].find_one({"_id": prepared.id})
    assert prep["indexCid"] == index_cid and not prep.get("indexStale")
    assert await index_pending(db, config) == 0
