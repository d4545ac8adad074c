"""`singularity prep rescan` as a user runs it, against a running preparation service and worker."""
import json
import os

import pytest

from tests.processes import singularity, start, stop, wait_http, write_config
from tests.scan_helpers import make_tree


@pytest.fixture
def suite(tmp_path, db_url):
    config = write_config(tmp_path, db_url)
    process = start(config, "preparation", "worker", log=tmp_path / "service.log")
    port = config.read_text().split("[deal_preparation_service]\nport = ")[1].split("\n")[0]
    wait_http(f"http://127.0.0.1:{port}/preparations")
    yield config
    stop(process)


def test_prep_rescan(suite, tmp_path):
    root = tmp_path / "ds"
    make_tree(root, {"a.txt": 100, "sub/b.txt": 200, "gone.txt": 5})
    first = json.loads(singularity(suite, "prep", "start", "--name", "demo", "--path", str(root),
                                   "--deal-size", "64KiB", "--wait", "--json", timeout=120).stdout)
    make_tree(root, {"new.txt": 7, "sub/b.txt": 300})
    os.unlink(root / "gone.txt")
    done = json.loads(singularity(suite, "prep", "rescan", first["id"], "--wait", "--json", timeout=120).stdout)
    assert {k: done["lastRescan"][k] for k in ("added", "changed", "deleted", "unchanged")} == {
        "added": 1, "changed": 1, "deleted": 1, "unchanged": 1}
    assert done["generationTotal"] == first["generationTotal"] + 1 and not done["indexStale"]
    assert done["indexCid"] and done["indexCid"] != first["indexCid"]
    mapping = json.loads(singularity(suite, "prep", "files", first["id"], "--path", "sub/b.txt", "--json").stdout)
    assert [(f["version"], f["size"], f["latest"]) for f in mapping["files"]] == [(1, 200, False), (2, 300, True)]
    table = singularity(suite, "prep", "files", first["id"]).stdout
    assert "1 deleted" not in table and "2 deleted" in table and "(old)" in table
    human = singularity(suite, "prep", "rescan", first["id"]).stdout
    assert "rescan asked" in human
    missing = singularity(suite, "prep", "rescan", "nope", check=False)
    assert missing.returncode == 1 and "HTTP 404" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
