"""The CLI sends connection.api_token to the management services, for every command (issue 8
item 9: a CLI that never sent it passed every test)."""
from __future__ import annotations

import json

import pytest

from shared.deal_params import encode_address
from tests.processes import singularity, start, stop, wait_http, write_config
from tests.scan_helpers import make_tree

TOKEN = "cli-secret-token"
WALLET = encode_address(1, bytes(range(20)))
PIECE = "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"
DATA = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"


def port_of(config, section: str) -> str:
    return config.read_text().split(f"[{section}]\nport = ")[1].split("\n")[0]


@pytest.fixture
def suite(tmp_path, db_url):
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "wallet.key").write_text("00")
    sections = {"deal_making_service": {"key_dir": str(keys), "boost_path": str(tmp_path / "no-boost")}}
    with_token = write_config(tmp_path, db_url, connection={"api_token": TOKEN}, **sections)
    process = start(with_token, "preparation", "dealmaking", log=tmp_path / "suite.log")
    try:
        for section, route in (("deal_preparation_service", "/preparations"), ("deal_making_service", "/deals")):
            wait_http(f"http://127.0.0.1:{port_of(with_token, section)}{route}")
        # The same services, as seen by a CLI whose config has no token.
        text = with_token.read_text().replace(f'api_token = "{TOKEN}"', 'api_token = ""')
        without = tmp_path / "no-token.toml"
        without.write_text(text)
        yield with_token, without
    finally:
        stop(process)


def commands(tmp_path, preparation_id: str) -> list[list[str]]:
    return [
        ["prep", "list", "--json"],
        ["prep", "status", preparation_id, "--json"],
        ["prep", "files", preparation_id, "--json"],
        ["prep", "pause", preparation_id, "--json"],
        ["prep", "resume", preparation_id, "--json"],
        ["deal", "list", "--json"],
        ["deal", "show", "no-such-deal", "--json"],
        ["deal", "send", "--wallet", WALLET, "--key-path", "wallet.key", "--provider", "f01234",
         "--piece-cid", PIECE, "--piece-size", "32GiB", "--data-cid", DATA, "--json"],
        ["prep", "remove", preparation_id, "--json"],
    ]


def test_every_command_sends_the_api_token(suite, tmp_path):
    with_token, without = suite
    make_tree(tmp_path / "ds", {"a.txt": 10})
    refused = singularity(without, "prep", "start", "--name", "n", "--path", str(tmp_path / "ds"), check=False)
    assert refused.returncode == 1 and "HTTP 401" in refused.stderr
    created = singularity(with_token, "prep", "start", "--name", "demo", "--path", str(tmp_path / "ds"), "--json")
    preparation_id = json.loads(created.stdout)["id"]
    for args in commands(tmp_path, preparation_id):
        # Without the token every one of them is refused: the services do check...
        result = singularity(without, *args, check=False)
        assert result.returncode == 1 and "HTTP 401" in result.stderr, (args, result.stderr)
        # ... and with it none is: the CLI sent it. (A missing deal, or a missing boost, is the
        # service's own answer, given only past the token check.)
        result = singularity(with_token, *args, check=False)
        assert "HTTP 401" not in result.stderr, (args, result.stderr)
        expected = {"show": "HTTP 404", "send": "HTTP 503"}.get(args[1])
        if expected:
            assert result.returncode == 1 and expected in result.stderr, (args, result.stderr)
        else:
            assert result.returncode == 0, (args, result.stderr)
    assert TOKEN not in (tmp_path / "suite.log").read_text()
