"""`singularity deal send|list|show` as a user runs them, against the live deal API."""
from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from .conftest import PIECE_CID, PROVIDER, WALLET

ROOT = Path(__file__).parents[2]


@pytest.fixture
def cli(api, tmp_path):
    config = tmp_path / "cli.toml"
    config.write_text(f'[connection]\ndeal_making_service = "{str(api.make_url("")).rstrip("/")}"\n'
                      '[database]\nenabled = false\n')

    async def run(*args: str):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "from cli.main import main; main()", "--config", str(config), *args,
            cwd=str(ROOT), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        stdout, stderr = await process.communicate()
        return process.returncode, stdout.decode(), stderr.decode()

    return run


def send_args(proposal: dict) -> list[str]:
    return ["deal", "send", "--wallet", proposal["wallet"], "--key-path", proposal["keyPath"],
            "--provider", proposal["provider"], "--piece-cid", proposal["pieceCid"], "--piece-size", "32GiB",
            "--data-cid", proposal["dataCid"], "--url", proposal["url"], "--car-size", str(proposal["carSize"])]


async def test_send_list_show(cli, fake_boost, proposal):
    code, out, err = await cli(*send_args(proposal), "--json")
    assert code == 0, err
    sent = json.loads(out)
    assert sent["state"] == "proposed" and sent["proposalCid"]
    argv = fake_boost.deal_calls()[0]
    assert argv[argv.index("--piece-size") + 1] == str(2**35) and "--verified=true" in argv

    code, out, err = await cli(*send_args(proposal))
    assert code == 0 and out.startswith("Already pending") and sent["proposalCid"] in out

    code, out, err = await cli("deal", "list", "--json", "--state", "proposed", "--provider", PROVIDER)
    listing = json.loads(out)
    assert code == 0 and [d["id"] for d in listing["deals"]] == [sent["id"]]
    code, out, err = await cli("deal", "list", "--piece", PIECE_CID)
    assert code == 0 and "proposed" in out and PROVIDER in out
    code, out, err = await cli("deal", "list", "--state", "active", "--json")
    assert json.loads(out)["deals"] == []
    code, out, err = await cli("deal", "show", sent["id"])
    assert code == 0 and WALLET in out and "proposed" in out
    code, out, err = await cli("deal", "show", sent["id"], "--json")
    assert json.loads(out)["proposalCid"] == sent["proposalCid"]


async def test_errors_are_one_line(cli, fake_boost, proposal):
    code, out, err = await cli(*send_args({**proposal, "provider": "f1nope"}))
    assert code == 1 and "HTTP 400" in err and "provider" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    code, out, err = await cli(*send_args(proposal)[:-2], "--car-size", "huge")
    assert code == 2 and "--car-size" in err
    fake_boost.control(reject="no capacity")
    code, out, err = await cli(*send_args(proposal))
    assert code == 1 and "HTTP 422" in err and "no capacity" in err
    code, out, err = await cli("deal", "list", "--state", "bogus")
    assert code == 1 and "state must be one of" in err and "bogus" in err
    code, out, err = await cli("deal", "show", "missing")
    assert code == 1 and "HTTP 404" in err
    assert len(fake_boost.deal_calls()) == 1  # only the rejected one: bad input never reached boost
