"""Edge cases found reviewing the preparation side: odd names, odd requests, failing jobs."""
import asyncio
import os
import time

import pytest

from services.preparation.routes import routes
from services.worker.scanning import ScanRun
from services.worker.walk import Problem, walk
from shared import jobs, models
from shared.api import create_app
from tests.wait import wait_until
from tests.scan_helpers import make_tree

# A file name that is not UTF-8 (Latin-1 "é"), as old archives and other OSes leave them.
BAD_NAME = os.fsdecode(b"caf\xe9.txt")


@pytest.fixture
async def api(db, config, serve_app):
    return await serve_app(create_app(config, db, routes))


async def scan_once(db, root, name="ds", deal=1 << 20):
    doc = models.scanning_request(name, str(root), deal, int(deal * 0.6), int(deal * 0.9))
    await db[models.SCANNING].insert_one(doc)
    job = await jobs.claim(db, models.SCANNING, "scanner")
    await ScanRun(db, job, "scanner").run()
    return await db[models.SCANNING].find_one({"_id": doc["_id"]})


def test_walk_reports_a_name_that_is_not_utf8(tmp_path):
    make_tree(tmp_path, {"a.txt": 3, "z.txt": 4})
    (tmp_path / BAD_NAME).write_bytes(b"x")
    items = list(walk(str(tmp_path)))
    problems = [i for i in items if isinstance(i, Problem)]
    assert [i.relative_path for i in items if not isinstance(i, Problem)] == ["a.txt", "z.txt"]
    assert len(problems) == 1 and "UTF-8" in problems[0].reason
    problems[0].path.encode("utf-8")  # storable and printable
    assert problems[0].path.endswith("caf\\xe9.txt")


async def test_a_name_that_is_not_utf8_does_not_stop_the_scan(db, tmp_path):
    make_tree(tmp_path / "ds", {"a.txt": 3, "sub/b.txt": 4})
    (tmp_path / "ds" / BAD_NAME).write_bytes(b"x")
    os.mkdir(tmp_path / "ds" / os.fsdecode(b"dir\xff"))
    (tmp_path / "ds" / os.fsdecode(b"dir\xff") / "inside").write_bytes(b"y")
    scan = await scan_once(db, tmp_path / "ds")
    assert scan["status"] == "completed" and scan["scannedFiles"] == 2
    problems = await db[models.SCAN_PROBLEMS].find({"preparationId": scan["_id"]}).to_list(None)
    assert sorted(p["kind"] for p in problems) == ["error", "error"]


@pytest.mark.parametrize("field,value", [("name", "x\udcff"), ("path", "{dataset}\udcff"), ("path", "{dataset}\x00")])
async def test_unstorable_strings_are_a_400(api, db, tmp_path, field, value):
    make_tree(tmp_path / "dataset", {"a": 1})
    make_tree(tmp_path / os.fsdecode(b"dataset\xff"), {"a": 1})  # so that the path exists
    body = {"name": "x", "path": str(tmp_path / "dataset")}
    body[field] = value.replace("{dataset}", str(tmp_path / "dataset"))
    response = await api.post("/preparation", json=body)
    assert response.status == 400, await response.text()
    assert field in (await response.json())["error"]
    assert await db[models.SCANNING].count_documents({}) == 0


async def test_a_dataset_reached_through_a_non_utf8_symlink_target_is_a_400(api, db, tmp_path):
    target = tmp_path / os.fsdecode(b"data\xff")
    make_tree(target, {"a": 1})
    os.symlink(target, tmp_path / "link")
    response = await api.post("/preparation", json={"name": "x", "path": str(tmp_path / "link")})
    assert response.status == 400, await response.text()
    assert await db[models.SCANNING].count_documents({}) == 0


@pytest.mark.parametrize("deal_size", [0, "0", "0 GiB"])
async def test_a_zero_deal_size_is_refused_not_replaced_by_the_default(api, db, tmp_path, deal_size):
    make_tree(tmp_path / "dataset", {"a": 1})
    response = await api.post("/preparation", json={"name": "x", "path": str(tmp_path / "dataset"),
                                                    "dealSize": deal_size})
    assert response.status == 400
    assert "dealSize" in (await response.json())["error"]
    assert await db[models.SCANNING].count_documents({}) == 0


async def test_a_job_failing_on_a_bug_becomes_an_error_instead_of_blocking_the_queue(db, config):
    from services.worker.worker import Worker

    worker = Worker(db, config)
    tried = []

    async def broken(db_, job, worker_id):
        tried.append(job["name"])
        if job["name"] == "bad":
            raise RuntimeError("boom")
        await jobs.release(db_, models.SCANNING, job["_id"], worker_id, status="completed")

    worker.handlers = [(models.SCANNING, broken)]
    for name in ("bad", "good"):
        await db[models.SCANNING].insert_one(models.scanning_request(name, "/x", 1024, 600, 900))
    assert await worker.run_one() and await worker.run_one()
    assert not await worker.run_one()
    assert tried == ["bad", "good"]  # the failing request was not claimed again ahead of the next
    bad = await db[models.SCANNING].find_one({"name": "bad"})
    assert bad["status"] == "error" and bad["workerId"] is None and "boom" in bad["error"]


async def test_a_database_error_still_hands_the_job_back_unchanged(db, config):
    from pymongo.errors import AutoReconnect

    from services.worker.worker import Worker

    worker = Worker(db, config)

    async def db_down(db_, job, worker_id):
        raise AutoReconnect("connection refused")

    worker.handlers = [(models.SCANNING, db_down)]
    await db[models.SCANNING].insert_one(models.scanning_request("ds", "/x", 1024, 600, 900))
    with pytest.raises(AutoReconnect):
        await worker.run_one()
    scan = await db[models.SCANNING].find_one({})
    assert scan["status"] == "active" and scan["workerId"] is None and scan["error"] is None


async def generate_all(db, out_dir):
    from services.worker.generation import GenerationRun

    while job := await jobs.claim(db, models.GENERATION, "gen"):
        await GenerationRun(db, job, "gen", str(out_dir)).run()


def same_stat(path, like):
    st = os.stat(like)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize("swap", ["file", "directory"])
async def test_a_name_swapped_for_a_symlink_after_the_scan_never_pulls_outside_data_in(db, tmp_path, swap):
    # A dataset owner can give a file the size and mtime of a file outside the dataset, let the scan
    # record it, then swap it (or a directory above it) for a link: the worker must not follow.
    outside = tmp_path / "outside"
    make_tree(outside, {"sub/a": 0})
    (outside / "sub/a").write_bytes(b"SECRET")
    make_tree(tmp_path / "ds", {"sub/a": 0})
    (tmp_path / "ds/sub/a").write_bytes(b"public")
    same_stat(tmp_path / "ds/sub/a", outside / "sub/a")
    scan = await scan_once(db, tmp_path / "ds")
    if swap == "file":
        os.unlink(tmp_path / "ds/sub/a")
        os.symlink(outside / "sub/a", tmp_path / "ds/sub/a")
    else:
        os.rename(tmp_path / "ds/sub", tmp_path / "old-sub")
        os.symlink(outside / "sub", tmp_path / "ds/sub")
    await generate_all(db, tmp_path / "cars")
    chunk = await db[models.GENERATION].find_one({"preparationId": scan["_id"]})
    assert chunk["status"] == "error" and "sub/a" in chunk["error"]
    for name in os.listdir(tmp_path / "cars"):
        assert b"SECRET" not in (tmp_path / "cars" / name).read_bytes()


async def test_a_file_swapped_for_a_fifo_after_the_scan_fails_instead_of_hanging(db, tmp_path):
    make_tree(tmp_path / "ds", {"a": 0, "b": 5})
    scan = await scan_once(db, tmp_path / "ds")
    os.unlink(tmp_path / "ds/a")
    os.mkfifo(tmp_path / "ds/a")
    try:
        await asyncio.wait_for(generate_all(db, tmp_path / "cars"), 20)
    finally:  # free a reader stuck in open() so the test run can end either way
        try:
            os.close(os.open(tmp_path / "ds/a", os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
    chunk = await db[models.GENERATION].find_one({"preparationId": scan["_id"]})
    assert chunk["status"] == "error" and "regular file" in chunk["error"]


async def test_a_running_worker_removes_temporary_cars_that_age_while_it_runs(db, config, monkeypatch):
    from services.worker import generation
    from services.worker.worker import Worker

    monkeypatch.setattr(generation, "STALE_SWEEP_INTERVAL", 0.1)
    sweeps = []
    sweep = generation.remove_stale_temp_files
    monkeypatch.setattr(generation, "remove_stale_temp_files", lambda *args: sweeps.append(sweep(*args)))
    out_dir = config.deal_preparation_worker.out_dir
    os.makedirs(out_dir)
    task = asyncio.create_task(Worker(db, config).run())
    try:
        await wait_until(lambda: sweeps, what="the worker's sweep at start")
        # Left by a crash just before this worker started, so too young to remove then; later it
        # has aged past STALE_TEMP_AGE while the worker is still running.
        left = os.path.join(out_dir, ".pack-crashed.car.tmp")
        with open(left, "wb") as f:
            f.write(b"partial")
        aged = time.time() - 2 * generation.STALE_TEMP_AGE
        os.utime(left, (aged, aged))
        swept_before = len(sweeps)
        await wait_until(lambda: not os.path.exists(left), what="the running worker to remove the old temporary CAR")
        assert 1 in sweeps[swept_before:], "removed, but not by a later sweep of the worker"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_start_wait_fails_when_the_dataset_index_cannot_be_built(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from cli import prep
    from cli.main import app

    final = {"id": "p1", "name": "x", "path": str(tmp_path), "dealSize": "1 MiB", "minSize": "1", "maxSize": "2",
             "state": "active", "scanningStatus": "completed", "scanningError": None, "scannedFiles": 1,
             "scannedBytes": 1, "errorCount": 0, "skippedCount": 0, "indexCid": None,
             "indexError": "unusable relativePath 'x\\\\y'", "indexPin": None, "generationCompleted": 1,
             "generationInprogress": 0, "generationFailed": 0, "generationTotal": 1, "bytesDone": 1, "rate": 0,
             "generationRequests": [], "problems": []}

    class FakeApi:
        def post(self, path, body):
            return {"id": "p1"}

        def get(self, path, **query):
            return final

    monkeypatch.setattr(prep, "api", FakeApi)
    result = CliRunner().invoke(app, ["prep", "start", "--name", "x", "--path", str(tmp_path), "--wait", "--json"])
    assert result.exit_code != 0
    assert "index" in str(result.exception)
