"""Inline preparation as a new user runs it: `prep start --inline --wait`, the piece from the
hosting service, `prep materialize --wait`; the suite in its own processes."""
import json
import os
import urllib.request

import pytest

from shared.ipld.commp import CommP
from tests.processes import singularity, start, stop, wait_http, write_config
from tests.scan_helpers import make_tree


@pytest.fixture
def suite(tmp_path, db_url):
    config = write_config(tmp_path, db_url)
    process = start(config, "preparation", "worker", "hosting", log=tmp_path / "suite.log")
    text = config.read_text()
    port = text.split("[deal_preparation_service]\nport = ")[1].split("\n")[0]
    hosting = text.split("[http_hosting_service]\nport = ")[1].split("\n")[0]
    wait_http(f"http://127.0.0.1:{port}/preparations")
    yield config, f"http://127.0.0.1:{hosting}", tmp_path / "cars"
    stop(process)


def test_inline_start_serve_materialize(suite, tmp_path):
    config, hosting, cars = suite
    make_tree(tmp_path / "ds", {"a.bin": 300_000, "sub/b.bin": 2_000_000, "sub/c.txt": 10})
    done = json.loads(singularity(config, "prep", "start", "--name", "ds", "--path", str(tmp_path / "ds"),
                                  "--deal-size", "4MiB", "--inline", "--wait", "--json", timeout=120).stdout)
    assert done["inline"] and done["generationCompleted"] == done["generationTotal"] >= 1
    assert not cars.exists() or not any(name.endswith(".car") and not name.startswith(done["indexCid"])
                                        for name in os.listdir(cars))
    chunk = done["generationRequests"][0]
    assert chunk["inline"] and chunk["unservable"] is None
    with urllib.request.urlopen(f"{hosting}/piece/{chunk['pieceCid']}", timeout=30) as response:
        body = response.read()
    hasher = CommP()
    hasher.update(body)
    assert hasher.digest(piece_size=chunk["pieceSize"]).cid == chunk["pieceCid"]
    result = json.loads(singularity(config, "prep", "materialize", done["id"], "--wait", "--json", timeout=120).stdout)
    assert result["queued"] == result["completed"] == done["generationTotal"] and result["failed"] == 0
    car = (cars / f"{chunk['dataCid']}.car").read_bytes()
    assert body == car + bytes(len(body) - len(car))
    again = singularity(config, "prep", "materialize", done["id"], "--chunk", "0", check=False)
    assert again.returncode == 1 and "already has a CAR" in again.stderr and "Traceback" not in again.stderr
