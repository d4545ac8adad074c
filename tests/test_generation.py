"""CAR generation in the worker: results that verify independently, and every failure recoverable."""
import asyncio
import hashlib
import os
import subprocess
import time

import pytest

from services.worker import generation
from services.worker.generation import GenerationRun
from services.worker.rescan import RescanRun
from services.worker.scanning import ScanRun
from services.preparation import handlers
from shared import jobs, models
from shared.ipld import cid as cidlib
from shared.ipld.commp_ref import commp_of_bytes
from tests.scan_helpers import make_tree, write_random

DEAL = 1 << 20


async def prepare(db, root, name="ds", deal=DEAL, min_size=None, max_size=None):
    scan = models.scanning_request(name, str(root), deal, min_size or int(deal * 0.6), max_size or int(deal * 0.9))
    await db[models.SCANNING].insert_one(scan)
    job = await jobs.claim(db, models.SCANNING, "scanner")
    await ScanRun(db, job, "scanner").run()
    return scan["_id"]


async def generate_all(db, out_dir, worker="gen"):
    while job := await jobs.claim(db, models.GENERATION, worker):
        await GenerationRun(db, job, worker, str(out_dir)).run()


def leftovers(out_dir):
    return [n for n in os.listdir(out_dir) if n.endswith(".tmp")] if os.path.isdir(out_dir) else []


async def test_every_chunk_becomes_a_verified_car(db, tmp_path):
    files = {"a.txt": 1000, "big.bin": 1_500_000, "dir/small": 10, "dir/empty": 0, ".hidden": 5}
    make_tree(tmp_path / "ds", files)
    preparation = await prepare(db, tmp_path / "ds")
    await generate_all(db, tmp_path / "cars")
    chunks = await db[models.GENERATION].find({"preparationId": preparation}).sort("index", 1).to_list(None)
    assert len(chunks) >= 2 and all(c["status"] == "completed" for c in chunks)
    for chunk in chunks:
        car = (tmp_path / "cars" / f"{chunk['dataCid']}.car").read_bytes()
        assert chunk["carPath"] == str(tmp_path / "cars" / f"{chunk['dataCid']}.car")
        assert chunk["carSize"] == len(car)
        assert (tmp_path / "cars" / f"{chunk['dataCid']}.car").stat().st_mode & 0o777 == 0o644
        root, size = commp_of_bytes(car, chunk["pieceSize"])
        assert chunk["pieceCid"] == cidlib.to_str(cidlib.piece_cid_v1(root))
        assert chunk["pieceSize"] == DEAL == size  # padded to the deal size
        blocks = await db[models.CAR_BLOCKS].find({"generationId": chunk["_id"]}).to_list(None)
        assert blocks and any(b["cid"] == chunk["dataCid"] for b in blocks)
        for block in blocks:
            data = car[block["offset"]:block["offset"] + block["length"]]
            assert cidlib.parse(cidlib.from_str(block["cid"]))[2] == hashlib.sha256(data).digest()
    small = await db[models.GENERATION_FILES].find_one({"relativePath": "dir/small"})
    assert small["cid"] == cidlib.to_str(cidlib.raw((tmp_path / "ds/dir/small").read_bytes()))
    assert await db[models.GENERATION_FILES].count_documents({"cid": None}) == 0
    assert leftovers(tmp_path / "cars") == []
    progress = await handlers.summary(db, await handlers.find(db, preparation))
    assert progress["generationCompleted"] == progress["generationTotal"] == len(chunks)
    assert progress["bytesDone"] == progress["scannedBytes"] == sum(files.values())


async def test_progress_counts_bytes_of_chunks_in_flight(db, tmp_path, monkeypatch):
    preparation, run = await big_chunk_run(db, tmp_path, monkeypatch, 300 << 20)
    seen = []

    async def sample():
        while not run.stop.is_set():
            summary = await handlers.summary(db, await handlers.find(db, preparation))
            if summary["generationInprogress"] and summary["bytesDone"]:
                seen.append(summary)
            await asyncio.sleep(0.05)

    await asyncio.gather(sample(), run.run())
    assert seen, "no progress was reported while the CAR was being built"
    assert all(0 < s["bytesDone"] <= 300 << 20 and s["rate"] > 0 for s in seen)


async def test_a_changed_file_is_named_and_resume_retries(db, tmp_path):
    make_tree(tmp_path / "ds", {"a.txt": 100, "b.txt": 200})
    preparation = await prepare(db, tmp_path / "ds")
    target = tmp_path / "ds" / "b.txt"
    original, stat = target.read_bytes(), target.stat()
    target.write_bytes(original + b"more")
    await generate_all(db, tmp_path / "cars")
    chunk = await db[models.GENERATION].find_one({"preparationId": preparation})
    assert chunk["status"] == "error" and str(target) in chunk["error"] and chunk["workerId"] is None
    assert leftovers(tmp_path / "cars") == []
    assert chunk["sourceChanged"]
    target.write_bytes(original)
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    await handlers.set_state(db, preparation, "active")
    # Resuming hands the chunk to the scanning job, which finds the files as they were and
    # makes it claimable again as it is.
    assert await jobs.claim(db, models.GENERATION, "gen") is None
    job = await jobs.claim(db, models.SCANNING, "scanner")
    await RescanRun(db, job, "scanner").run()
    await generate_all(db, tmp_path / "cars")
    assert (await db[models.GENERATION].find_one({"preparationId": preparation}))["status"] == "completed"
    assert await db[models.GENERATION].count_documents({"preparationId": preparation}) == 1


@pytest.fixture
def small_disk(tmp_path):
    """A real full disk: a 64 KiB tmpfs (tests run as root here); it grows when `grow` is called."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")

    def grow():
        subprocess.run(["mount", "-o", "remount,size=16m", str(mount)], check=True)

    yield mount, grow
    subprocess.run(["umount", str(mount)], check=False)


async def test_a_full_disk_is_an_error_and_resume_completes(db, tmp_path, small_disk):
    out_dir, grow = small_disk
    make_tree(tmp_path / "ds", {"a.bin": 300_000})
    preparation = await prepare(db, tmp_path / "ds")
    await generate_all(db, out_dir)
    chunk = await db[models.GENERATION].find_one({"preparationId": preparation})
    assert chunk["status"] == "error" and "disk full" in chunk["error"]
    assert os.listdir(out_dir) == [], "the temporary CAR must be removed"
    grow()
    await handlers.set_state(db, preparation, "active")
    await generate_all(db, out_dir)
    chunk = await db[models.GENERATION].find_one({"preparationId": preparation})
    assert chunk["status"] == "completed" and os.listdir(out_dir) == [f"{chunk['dataCid']}.car"]


async def big_chunk_run(db, tmp_path, monkeypatch, size: int):
    """A claimed, not yet started run over one random file big enough to watch it being packed."""
    monkeypatch.setattr(generation, "WATCH_INTERVAL", 0.05)
    root = tmp_path / "ds"
    root.mkdir()
    write_random(root / "big.bin", size)
    preparation = await prepare(db, root, deal=1 << 30)
    job = await jobs.claim(db, models.GENERATION, "gen")
    return preparation, GenerationRun(db, job, "gen", str(tmp_path / "cars"))


async def test_pause_stops_a_car_in_progress_within_seconds(db, tmp_path, monkeypatch):
    preparation, run = await big_chunk_run(db, tmp_path, monkeypatch, 400 << 20)

    async def pause_when_started():
        while run.progress.done == 0:
            await asyncio.sleep(0.01)
        await handlers.set_state(db, preparation, "paused")
        return time.monotonic()

    paused_at, _ = await asyncio.gather(pause_when_started(), run.run())
    assert time.monotonic() - paused_at < 3
    assert run.progress.done < 400 << 20, "the CAR finished before the pause could be tested"
    chunk = await db[models.GENERATION].find_one({"preparationId": preparation})
    assert chunk["status"] == "paused" and chunk["dataCid"] is None
    assert os.listdir(tmp_path / "cars") == []


def test_stale_temporary_cars_are_removed(tmp_path):
    (tmp_path / ".pack-old.car.tmp").write_bytes(b"x")
    (tmp_path / ".pack-live.car.tmp").write_bytes(b"x")
    (tmp_path / "bafyfinished.car").write_bytes(b"x")
    old = time.time() - 2 * generation.STALE_TEMP_AGE
    os.utime(tmp_path / ".pack-old.car.tmp", (old, old))
    assert generation.remove_stale_temp_files(str(tmp_path)) == 1
    assert sorted(os.listdir(tmp_path)) == [".pack-live.car.tmp", "bafyfinished.car"]


async def test_many_tiny_files_never_outgrow_the_deal_size(db, tmp_path):
    deal = 64 * 1024
    make_tree(tmp_path / "ds", {f"d{i // 250}/tiny-{i:05d}.txt": i % 40 for i in range(2500)})
    preparation = await prepare(db, tmp_path / "ds", deal=deal)
    await generate_all(db, tmp_path / "cars")
    chunks = await db[models.GENERATION].find({"preparationId": preparation}).to_list(None)
    assert len(chunks) > 2 and all(c["status"] == "completed" for c in chunks)
    assert {c["pieceSize"] for c in chunks} == {deal}, "a piece outgrew the deal size"
    assert max(c["carSize"] for c in chunks) > deal // 2, "chunks close far too early"


async def test_a_chunk_removed_while_saving_leaves_no_block_index(db, tmp_path, monkeypatch):
    make_tree(tmp_path / "ds", {"a.txt": 5000})
    preparation = await prepare(db, tmp_path / "ds")
    job = await jobs.claim(db, models.GENERATION, "gen")
    save = GenerationRun.save

    async def removed_first(self, *args):  # the user removes the preparation as the CAR completes
        await handlers.remove(db, preparation)
        return await save(self, *args)

    monkeypatch.setattr(GenerationRun, "save", removed_first)
    await GenerationRun(db, job, "gen", str(tmp_path / "cars")).run()
    assert await db[models.CAR_BLOCKS].count_documents({}) == 0


async def test_the_file_to_cid_to_piece_mapping(db, tmp_path):
    files = {"a.txt": 1000, "big.bin": 1_500_000, "dir/small": 10, "dir/sub/x": 3}
    make_tree(tmp_path / "ds", files)
    preparation = await prepare(db, tmp_path / "ds")
    await generate_all(db, tmp_path / "cars")
    mapping = (await handlers.files(db, preparation, "", 0, 100))["files"]
    assert [(f["relativePath"], f["start"]) for f in mapping] == sorted((f["relativePath"], f["start"]) for f in mapping)
    big = [f for f in mapping if f["relativePath"] == "big.bin"]
    assert len(big) == 2 and big[0]["pieceCid"] != big[1]["pieceCid"] and big[1]["start"] == big[0]["end"]
    assert all(f["cid"] and f["pieceCid"].startswith("baga") and f["status"] == "completed" for f in mapping)
    under_dir = (await handlers.files(db, preparation, "/dir/", 0, 100))["files"]
    assert [f["relativePath"] for f in under_dir] == ["dir/small", "dir/sub/x"]
    assert [f["relativePath"] for f in (await handlers.files(db, preparation, "dir/small", 0, 100))["files"]] == ["dir/small"]
    assert (await handlers.files(db, preparation, "di", 0, 100))["files"] == []
    assert len((await handlers.files(db, preparation, "", 1, 2))["files"]) == 2


async def test_empty_directories_are_part_of_the_chunk(db, tmp_path):
    from shared.ipld.pack import pack_path

    make_tree(tmp_path / "ds", {"a.txt": 100, "d/b.txt": 50})
    (tmp_path / "ds" / "d" / "empty").mkdir()
    (tmp_path / "ds" / "zz" / "deeper").mkdir(parents=True)
    preparation = await prepare(db, tmp_path / "ds")
    await generate_all(db, tmp_path / "cars")
    chunk = await db[models.GENERATION].find_one({"preparationId": preparation})
    assert chunk["status"] == "completed"
    # One chunk holding the whole tree is the tree's own DAG, as `singularity pack` makes it.
    (tmp_path / "packed").mkdir()
    assert chunk["dataCid"] == pack_path(str(tmp_path / "ds"), str(tmp_path / "packed")).data_cid
    scan = await handlers.find(db, preparation)
    assert scan["scannedFiles"] == 2
    listed = (await handlers.generation(db, chunk["_id"], 0, 100))["fileList"]
    assert [(f["relativePath"], f["directory"]) for f in listed] == \
        [("a.txt", False), ("d/b.txt", False), ("d/empty", True), ("zz/deeper", True)]
