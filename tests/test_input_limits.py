"""Input that used to end in a 500: astronomically large sizes, requests the HTTP parser refuses,
a source file that cannot be read once scanned."""
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from services.preparation.routes import routes
from services.worker.scanning import ScanRun
from shared import jobs, models
from shared.api import create_app, serve
from shared.config import parse_size
from tests.conftest import free_port
from tests.processes import singularity, write_config
from tests.scan_helpers import make_tree

HUGE = "9" * 309  # float("9" * 309) is inf: int(inf) raised OverflowError, a 500


@pytest.mark.parametrize("text", [HUGE, HUGE + " GiB", "9" * 400 + ".5", "1" * 100_000, "9223372036854775808",
                                  "8192 PiB", 2**63, 10**400, "1." + "0" * 200 + "1"])
def test_sizes_too_large_or_too_precise_are_value_errors(text):
    with pytest.raises(ValueError) as info:
        parse_size(text)
    assert len(str(info.value)) < 300  # names the problem, not a megabyte of input


def test_sizes_are_exact():
    assert parse_size("9223372036854775807") == 2**63 - 1
    assert parse_size("9007199254740993") == 2**53 + 1  # a float would round it to 2**53
    assert parse_size("8191.9990234375 TiB") == 8191 * 2**40 + 1023 * 2**30
    assert parse_size("0.5 KiB") == 512
    assert parse_size("000000000000000000000000000001 GiB") == 2**30


@pytest.mark.parametrize("args", [
    ["prep", "start", "--name", "x", "--path", ".", "--deal-size", HUGE],
    ["deal", "send", "--wallet", "f1x", "--key-path", "k", "--provider", "f01", "--piece-cid", "baga",
     "--piece-size", HUGE, "--data-cid", "bafy"],
    ["commp", "-", "--piece-size", HUGE],
])
def test_the_cli_refuses_a_309_digit_size_in_one_line(tmp_path, db_url, args):
    result = singularity(write_config(tmp_path, db_url), *args, check=False)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "too large" in result.stderr, result.stderr


@pytest.fixture
async def api(db, config, serve_app):
    return await serve_app(create_app(config, db, routes))


@pytest.mark.parametrize("field", ["dealSize", "minSize", "maxSize"])
async def test_a_309_digit_size_is_a_400(api, db, tmp_path, field):
    make_tree(tmp_path / "ds", {"a": 1})
    body = {"name": "x", "path": str(tmp_path / "ds"), "dealSize": "1 MiB", field: HUGE}
    response = await api.post("/preparation", json=body)
    assert response.status == 400, await response.text()
    assert field in (await response.json())["error"]
    assert await db[models.SCANNING].count_documents({}) == 0


@pytest.mark.parametrize("deal_size", [256, 512, "512 B"])
async def test_deal_sizes_whose_pieces_cannot_hold_a_chunk_are_refused(api, db, tmp_path, deal_size):
    make_tree(tmp_path / "ds", {"a": 1})
    response = await api.post("/preparation", json={"name": "x", "path": str(tmp_path / "ds"), "dealSize": deal_size})
    assert response.status == 400, await response.text()
    assert "1 KiB" in (await response.json())["error"]


# --- requests aiohttp's HTTP parser refuses, before any handler or middleware ---

async def raw_exchange(port: int, request: bytes) -> tuple[int, dict, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 20)  # the server closes after an error
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


@pytest.fixture
async def served(db, config):
    """The preparation app behind shared.api.serve, as `singularity run` serves every module."""
    port = free_port()
    task = asyncio.create_task(serve(create_app(config, db, routes), "127.0.0.1", port))
    deadline = time.monotonic() + 20
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
    yield port
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize("request_bytes", [
    b"GET /preparations HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Bad: a\x00b\r\n\r\n",  # NUL in a header
    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",  # past the 8 KiB line limit
    b"NOT A REQUEST LINE\r\n\r\n",
    b"GET /preparations HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: " + b"b" * 9000 + b"\r\n\r\n",
])
async def test_requests_the_http_parser_refuses_get_the_json_error_body(served, request_bytes):
    status, headers, body = await raw_exchange(served, request_bytes)
    assert 400 <= status < 500
    assert headers["content-type"].startswith("application/json")
    answer = json.loads(body)
    assert answer["error"] == "malformed HTTP request" and "detail" in answer


async def test_well_formed_requests_are_still_served_by_serve(served):
    status, _, body = await raw_exchange(served, b"GET /preparations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                                 b"Connection: close\r\n\r\n")
    assert status == 200 and json.loads(body) is not None


# --- a source file that cannot be read any more when its chunk is packed ---

def refused_access_prefix() -> list[str]:
    """A command prefix under which the process is refused files without permission bits for it.
    Tests run as root, and root reads any file through CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH:
    the worker then runs with both dropped from its capability bounding set, so the kernel really
    refuses it (EACCES), as it would refuse a worker running as an ordinary user."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv (util-linux): no way to make a file unreadable")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all"]


async def test_a_file_made_unreadable_after_the_scan_fails_its_chunk_naming_it(db, db_url, tmp_path):
    root = tmp_path / "ds"
    make_tree(root, {"a.txt": 100, "locked.bin": 5000, "z.txt": 100})
    scan = models.scanning_request("ds", str(root), 1 << 20, 600_000, 900_000)
    await db[models.SCANNING].insert_one(scan)
    await ScanRun(db, await jobs.claim(db, models.SCANNING, "scanner"), "scanner").run()
    os.chmod(root / "locked.bin", 0)
    prefix = refused_access_prefix()
    probe = subprocess.run([*prefix, sys.executable, "-c", f"open({str(root / 'locked.bin')!r}, 'rb')"],
                           capture_output=True, text=True)
    assert probe.returncode != 0 and "PermissionError" in probe.stderr, "the file is still readable"

    config = write_config(tmp_path, db_url)
    log_path = tmp_path / "worker.log"
    with open(log_path, "ab") as log:
        worker = subprocess.Popen([*prefix, sys.executable, "-m", "cli", "--config", str(config), "run", "worker"],
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        chunk = await poll(db, scan["_id"], lambda c: c["status"] != "active" and c["workerId"] is None, log_path)
        assert chunk["status"] == "error", chunk
        assert str(root / "locked.bin") in chunk["error"] and "Permission denied" in chunk["error"], chunk["error"]
        assert "internal error" not in chunk["error"]
        assert [p.name for p in (tmp_path / "cars").iterdir()] == []  # no CAR, no temporary file
        # Fixed and resumed, the same worker packs the chunk.
        os.chmod(root / "locked.bin", 0o644)
        from services.preparation import handlers
        await handlers.set_state(db, scan["_id"], "active")
        chunk = await poll(db, scan["_id"], lambda c: c["status"] == "completed", log_path)
        assert chunk["error"] is None and chunk["pieceCid"]
    finally:
        os.killpg(worker.pid, signal.SIGINT)
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


async def poll(db, preparation_id, predicate, log_path, budget: float = 90.0) -> dict:
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        chunk = await db[models.GENERATION].find_one({"preparationId": preparation_id})
        if chunk is not None and predicate(chunk):
            return chunk
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out; worker log:\n{log_path.read_text()[-3000:]}")
