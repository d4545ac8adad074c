"""The CLI as a user runs it: against a live service, with tables, --json and clean errors."""
import io
import json
import tarfile
import urllib.request

import pytest

from tests.processes import singularity, start, stop, wait_http, write_config
from tests.scan_helpers import make_tree


@pytest.fixture
def live(tmp_path, db_url):
    config = write_config(tmp_path, db_url)
    process = start(config, "preparation", log=tmp_path / "service.log")
    text = config.read_text()
    port = text.split("[deal_preparation_service]\nport = ")[1].split("\n")[0]
    wait_http(f"http://127.0.0.1:{port}/preparations")
    yield config
    stop(process)


def test_prep_commands(live, tmp_path):
    make_tree(tmp_path / "ds", {"a.txt": 100, "sub/b.txt": 200})
    created = json.loads(singularity(live, "prep", "start", "--name", "demo", "--path", str(tmp_path / "ds"),
                                     "--deal-size", "64KiB", "--json").stdout)
    pid = created["id"]
    human = singularity(live, "prep", "start", "--name", "demo2", "--path", str(tmp_path / "ds")).stdout
    assert human.startswith("Accepted. dataset-id: ")
    listed = json.loads(singularity(live, "prep", "list", "--json").stdout)
    assert [p["name"] for p in listed["preparations"]] == ["demo", "demo2"] and listed["total"] == 2
    assert listed["preparations"][1]["dealSize"] == "32 GiB"  # the configured default
    table = singularity(live, "prep", "list").stdout
    assert "demo2" in table and "64 KiB" in table
    second = singularity(live, "prep", "list", "--offset", "1", "--limit", "1").stdout
    assert "demo2" in second and "64 KiB" not in second and "preparations 2-2 of 2" in second
    status = json.loads(singularity(live, "prep", "status", pid, "--json").stdout)
    assert status["id"] == pid and status["path"] == str(tmp_path / "ds")
    assert "Chunks" in singularity(live, "prep", "status", pid).stdout
    assert json.loads(singularity(live, "prep", "pause", pid, "--json").stdout)["state"] == "paused"
    assert json.loads(singularity(live, "prep", "resume", pid, "--json").stdout)["state"] == "active"
    singularity(live, "prep", "remove", pid)
    missing = singularity(live, "prep", "status", pid, check=False)
    assert missing.returncode == 1 and "HTTP 404" in missing.stderr and "Traceback" not in missing.stderr


def test_service_errors_are_one_line(live, tmp_path):
    make_tree(tmp_path / "ds", {"a.txt": 1})
    singularity(live, "prep", "start", "--name", "x", "--path", str(tmp_path / "ds"))
    duplicate = singularity(live, "prep", "start", "--name", "x", "--path", str(tmp_path / "ds"), check=False)
    assert duplicate.returncode == 1 and "HTTP 409" in duplicate.stderr and "already exists" in duplicate.stderr
    bad = singularity(live, "prep", "start", "--name", "y", "--path", str(tmp_path / "ds"), "--deal-size", "3KiB",
                      check=False)
    assert bad.returncode == 1 and "power of two" in bad.stderr
    unparsable = singularity(live, "prep", "start", "--name", "y", "--path", "/", "--deal-size", "big", check=False)
    assert unparsable.returncode == 2 and "--deal-size" in unparsable.stderr
    for result in (duplicate, bad, unparsable):
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_unreachable_service(tmp_path, db_url):
    config = write_config(tmp_path, db_url)  # nothing is started
    result = singularity(config, "prep", "list", check=False)
    assert result.returncode == 1
    assert "cannot reach the service" in result.stderr and "Traceback" not in result.stderr


def test_start_wait_runs_a_dataset_to_its_index(tmp_path, db_url):
    config = write_config(tmp_path, db_url)
    process = start(config, "preparation", "worker", "hosting", log=tmp_path / "suite.log")
    try:
        make_tree(tmp_path / "ds", {"a.txt": 3000, "sub/b.bin": 9000, ".hidden": 10})
        (tmp_path / "ds" / "empty" / "nested-empty").mkdir(parents=True)
        port = config.read_text().split("[deal_preparation_service]\nport = ")[1].split("\n")[0]
        wait_http(f"http://127.0.0.1:{port}/preparations")
        final = json.loads(singularity(config, "prep", "start", "--name", "w", "--path", str(tmp_path / "ds"),
                                       "--deal-size", "8KiB", "--wait", "--json", timeout=120).stdout)
        assert final["scanningStatus"] == "completed"
        assert final["generationCompleted"] == final["generationTotal"] >= 2
        assert final["indexCid"] and final["bytesDone"] == 12010
        assert all(c["pieceCid"].startswith("baga6ea4seaq") for c in final["generationRequests"])
        human = singularity(config, "prep", "status", final["id"]).stdout
        assert final["indexCid"] in human and "completed" in human
        # The DNSLink record to publish for `singularity retrieve your.domain/...`.
        assert f'_dnslink.<your domain> TXT "dnslink=/ipfs/{final["indexCid"]}"' in human.replace("\n", "")
        status = json.loads(singularity(config, "prep", "status", final["id"], "--json").stdout)
        assert status["dnslink"] == f"dnslink=/ipfs/{final['indexCid']}"
        mapping = json.loads(singularity(config, "prep", "files", final["id"], "--path", "sub", "--json").stdout)
        assert [(f["relativePath"], f["start"]) for f in mapping["files"]][0] == ("sub/b.bin", 0)
        assert all(f["pieceCid"] and f["cid"] for f in mapping["files"])
        assert "sub/b.bin" in singularity(config, "prep", "files", final["id"]).stdout
        # Everything comes back through the hosting service, the empty folders included.
        singularity(config, "retrieve", "w", "--output", str(tmp_path / "back"), timeout=120)
        back = tmp_path / "back" / "w"
        assert sorted(str(p.relative_to(back)) for p in back.rglob("*")) == \
            [".hidden", "a.txt", "empty", "empty/nested-empty", "sub", "sub/b.bin"]
        assert (back / "sub" / "b.bin").read_bytes() == (tmp_path / "ds" / "sub" / "b.bin").read_bytes()
        hosting = config.read_text().split("[http_hosting_service]\nport = ")[1].split("\n")[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{hosting}/bundle/w") as response:
            members = tarfile.open(fileobj=io.BytesIO(response.read())).getnames()
        assert "w/empty/nested-empty" in members and "w/sub/b.bin" in members
    finally:
        stop(process)
