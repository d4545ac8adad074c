"""`singularity run` on its embedded database, as real processes: the database is started, restarted
when it dies, answered for with 503 while it is away, and never outlives the run that owns it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from shared import models
from shared.embedded import _answers, process_identity
from shared.ipld.pack import pack_chunk
from tests.conftest import free_port
from tests.wait import BUDGET
from tests.processes import database_servers, embedded_config, processes_with, start, stop, wait_http, wait_until
from tests.scan_helpers import assert_layout, make_tree, reference_chunks, stored_chunks

REPO = Path(__file__).resolve().parent.parent
START_BUDGET = 60.0  # a run and its database starting on a loaded 2-core machine


def service_url(config: Path, section: str) -> str:
    port = config.read_text().split(f"[{section}]\nport = ")[1].split("\n")[0]
    return f"http://127.0.0.1:{port}"


def get(url: str, timeout: float = 10.0) -> tuple[int, dict | None]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def one_server(port: int) -> int:
    return wait_until(lambda: (lambda pids: pids[0] if len(pids) == 1 else None)(database_servers(port)),
                      START_BUDGET, what=f"one nx-27017 on port {port}")


def start_run(config: Path, log: Path, *modules: str) -> subprocess.Popen:
    run = start(config, *modules, log=log)
    try:
        wait_http(service_url(config, "deal_preparation_service") + "/preparations", timeout=START_BUDGET)
    except AssertionError:
        stop(run)
        raise AssertionError(f"run did not come up: {log.read_text()[-3000:]}")
    return run


def assert_nothing_left(port: int, config: Path) -> None:
    wait_until(lambda: not database_servers(port), BUDGET, what="the embedded database stopped")
    wait_until(lambda: not processes_with(str(config)), BUDGET, what="every singularity process gone")
    assert not _answers("127.0.0.1", port)


def expected_cids(root: Path, layout: list[list[tuple[str, int, int]]], deal_size: int, out: Path) -> list[tuple]:
    """(dataCid, pieceCid) of each chunk of an undisturbed scan, packed here from the pure layout."""
    out.mkdir()
    cids = []
    for chunk in layout:
        entries = [{"path": str(root / rel), "relative_path": rel, "start": start, "end": end,
                    "size": os.stat(root / rel).st_size, "mtime": None} for rel, start, end in chunk]
        result = pack_chunk(entries, str(out), min_piece_size=deal_size)
        cids.append((result.data_cid, result.piece_cid))
    return cids


def test_kill_9_of_the_database_mid_scan(tmp_path):
    port = free_port()
    config = embedded_config(tmp_path, port)
    files = {f"d{i % 7}/{i:05d}.bin": 100 + i % 300 for i in range(12_000)}
    make_tree(tmp_path / "ds", files)
    min_size, max_size, deal_size = 20_000, 30_000, 1 << 20
    log = tmp_path / "run.log"
    run = start_run(config, log)  # the modules enabled by default, on the embedded database
    api = service_url(config, "deal_preparation_service") + "/preparations"
    client = MongoClient(f"mongodb://127.0.0.1:{port}", serverSelectionTimeoutMS=1000)
    db = client["singularity"]
    try:
        first = one_server(port)
        assert (tmp_path / "database").is_dir(), "the database is not where [database] path says"
        scan = models.scanning_request("ds", str(tmp_path / "ds"), deal_size, min_size, max_size)
        db[models.SCANNING].insert_one(scan)
        wait_until(lambda: db[models.SCANNING].find_one({"_id": scan["_id"]})["checkpoint"]["index"] >= 2,
                   120, interval=0.02, what="a scan under way")

        os.kill(first, signal.SIGKILL)
        killed = time.monotonic()
        wait_until(lambda: process_identity(first) is None, 5, interval=0.01, what="the kill")
        status, body = get(api, timeout=5)
        answered = time.monotonic() - killed
        assert status == 503 and body["error"] == "database unavailable", (status, body)
        assert answered <= 2.0, f"503 after {answered:.2f}s"
        print(f"503 {answered:.2f}s after the kill")

        def back():
            servers = [pid for pid in database_servers(port) if pid != first]
            return servers and _answers("127.0.0.1", port)
        wait_until(back, 10 - (time.monotonic() - killed), interval=0.05, what="the database back within 10 s")
        print(f"database back {time.monotonic() - killed:.2f}s after the kill")
        wait_until(lambda: get(api)[0] == 200, BUDGET, what="the API answering again")

        doc = db[models.SCANNING].find_one({"_id": scan["_id"]})
        assert doc["status"] == "active", "the scan ended before the database was killed: the test proves nothing"

        def done():
            try:
                doc = db[models.SCANNING].find_one({"_id": scan["_id"]})
                pending = db[models.GENERATION].count_documents({"preparationId": scan["_id"],
                                                                  "status": {"$ne": "completed"}})
            except PyMongoError:
                return False
            return doc["status"] == "completed" and pending == 0
        wait_until(done, 180, interval=0.2, what="the scan and every chunk completed")
        assert db[models.SCANNING].find_one({"_id": scan["_id"]})["error"] is None

        import asyncio
        from pymongo import AsyncMongoClient

        async def stored():
            async_client = AsyncMongoClient(f"mongodb://127.0.0.1:{port}")
            try:
                return await stored_chunks(async_client["singularity"], scan["_id"])
            finally:
                await async_client.close()
        chunks = asyncio.run(stored())
        layout = reference_chunks(tmp_path / "ds", min_size, max_size, deal_size=deal_size)
        assert chunks == layout
        assert_layout(chunks, files, min_size, max_size)
        generations = list(db[models.GENERATION].find({"preparationId": scan["_id"]}).sort("index", 1))
        assert [g["error"] for g in generations] == [None] * len(generations)
        assert [(g["dataCid"], g["pieceCid"]) for g in generations] == \
            expected_cids(tmp_path / "ds", layout, deal_size, tmp_path / "reference")
    finally:
        client.close()
        stop(run)
    assert run.returncode == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert "the embedded database (pid %d) died" % first in text and "embedded database back at" in text
    assert "Traceback" not in text
    assert_nothing_left(port, config)


def test_kill_9_of_run_leaves_no_database_behind(tmp_path):
    port = free_port()
    config = embedded_config(tmp_path, port)
    run = start_run(config, tmp_path / "run.log", "preparation")
    server = one_server(port)
    stop(run, signal.SIGKILL)
    wait_until(lambda: process_identity(server) is None, BUDGET, what="the database dying with its run")
    again = start_run(config, tmp_path / "again.log", "preparation")  # the next run starts afresh
    assert one_server(port) != server
    stop(again)
    assert again.returncode == 0
    assert_nothing_left(port, config)


def start_orphan(tmp_path: Path, port: int) -> int:
    """An nx-27017 left running by a run that is gone, as a run without the parent-death signal
    (another OS, an older version) leaves it: started by a process that exits at once."""
    data = tmp_path / "database"
    data.mkdir()
    code = ("import subprocess, sys\n"
            f"p = subprocess.Popen([sys.executable, '-m', 'nx_27017.nx_27017', '--data-dir', {str(data)!r}, "
            f"'--host', '127.0.0.1', '-p', '{port}', '--log-file', {str(data / 'orphan.log')!r}, "
            f"'--pid-file', {str(data / f'nx-27017-{port}.pid')!r}], start_new_session=True, "
            "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
            "print(p.pid)")
    parent = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    orphan = int(parent.stdout)
    wait_until(lambda: _answers("127.0.0.1", port), START_BUDGET, what="the orphan answering")
    dead_run = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (data / f"nx-27017-{port}.owner.json").write_text(json.dumps({
        "run": int(dead_run.stdout), "runIdentity": 1.0, "server": orphan,
        "serverIdentity": process_identity(orphan), "host": "127.0.0.1", "port": port}))
    return orphan


def test_an_orphaned_database_is_adopted_and_stopped_by_the_next_run(tmp_path):
    port = free_port()
    config = embedded_config(tmp_path, port)
    orphan = start_orphan(tmp_path, port)
    try:
        log = tmp_path / "run.log"
        run = start_run(config, log, "preparation")
        assert database_servers(port) == [orphan], "the orphan was not reused"
        stop(run)
        assert run.returncode == 0
        assert "adopted the embedded database" in log.read_text()
        wait_until(lambda: process_identity(orphan) is None, BUDGET, what="the adopted database stopped")
        assert_nothing_left(port, config)
    finally:
        if process_identity(orphan) is not None:
            os.kill(orphan, signal.SIGKILL)


def test_a_database_owned_by_another_live_run_is_never_stopped(tmp_path):
    port = free_port()
    owner_config = embedded_config(tmp_path, port)
    owner = start_run(owner_config, tmp_path / "owner.log", "preparation")
    guest_config = embedded_config(tmp_path, port)  # the same database, its own service ports
    try:
        server = one_server(port)
        guest_log = tmp_path / "guest.log"
        guest = start_run(guest_config, guest_log, "preparation")
        assert database_servers(port) == [server]
        stop(guest)
        assert guest.returncode == 0 and "reusing the database already running" in guest_log.read_text()
        assert process_identity(server) is not None and _answers("127.0.0.1", port)
        assert get(service_url(owner_config, "deal_preparation_service") + "/preparations")[0] == 200
    finally:
        stop(owner)
    assert owner.returncode == 0
    assert_nothing_left(port, owner_config)


def test_make_run_prepares_the_sample_on_the_embedded_database(tmp_path):
    """What `make run` runs, end to end, with its own ports and paths (not ./config.toml's)."""
    port = free_port()
    config = embedded_config(tmp_path, port)
    env = {**os.environ, "SINGULARITY_CONFIG": str(config)}
    env.pop("DEAL_SIZE", None)
    result = subprocess.run([sys.executable, "scripts/run_sample.py"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    log = tmp_path / "run.log"  # beside the configured database
    assert result.returncode == 0, result.stderr + (log.read_text()[-3000:] if log.exists() else "")
    assert "Preparing" in result.stdout and "deal size 256KiB" in result.stdout
    assert "embedded database started" in log.read_text()
    assert_nothing_left(port, config)
    # What it prepared is in the embedded database's files: start that again and look.
    from shared.embedded import EmbeddedDatabase

    with EmbeddedDatabase(str(tmp_path / "database"), port=port) as database, MongoClient(database.url) as client:
        prep = client["singularity"][models.SCANNING].find_one({})
        assert prep["status"] == "completed" and prep["path"] == str(REPO / "sample" / "dataset")
        assert prep["indexCid"]
        chunks = list(client["singularity"][models.GENERATION].find({"preparationId": prep["_id"]}))
        assert chunks and all(c["status"] == "completed" and c["pieceCid"] for c in chunks)
        assert all((tmp_path / "cars" / f"{c['dataCid']}.car").is_file() for c in chunks)


def test_a_guest_takes_over_when_the_owner_run_and_its_database_die(tmp_path):
    port = free_port()
    owner_config, guest_config = embedded_config(tmp_path, port), embedded_config(tmp_path, port)
    owner = start_run(owner_config, tmp_path / "owner.log", "preparation")
    server = one_server(port)
    guest_log = tmp_path / "guest.log"
    guest = start_run(guest_config, guest_log, "preparation")
    try:
        stop(owner, signal.SIGKILL)
        wait_until(lambda: process_identity(server) is None, BUDGET, what="the database dying with its owner")
        api = service_url(guest_config, "deal_preparation_service") + "/preparations"
        wait_until(lambda: get(api)[0] == 200 and database_servers(port), 60, interval=0.2,
                   what="the guest's API answering on a database it started")
        assert "is gone along with its owner; starting it" in guest_log.read_text()
    finally:
        stop(guest)
    assert guest.returncode == 0
    assert_nothing_left(port, guest_config)
