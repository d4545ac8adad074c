"""Fixtures for the deal tests: a fake `boost` executable, a fake Lotus node, the deal API."""
from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from services.dealmaking.routes import routes
from shared import models
from shared.api import create_app
from shared.deal_params import encode_address

from .fakes.lotus import FakeChain, FakeLotus

FAKES = Path(__file__).resolve().parents[2] / "scripts" / "fakes"
PIECE_CID = "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"
DATA_CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
WALLET = encode_address(1, bytes(range(20)))
WALLET_ID = "f0100200"
PROVIDER = "f01234"


class FakeBoost:
    def __init__(self, directory: Path):
        self.dir = directory
        self.path = directory / "boost"
        # Started by path like the real tool; exec so a timeout kill reaches the Python process.
        self.path.write_text(f"#!/bin/sh\nFAKE_BOOST_DIR='{directory}' exec '{sys.executable}' "
                             f"'{FAKES / 'boost.py'}' \"$@\"\n")
        self.path.chmod(self.path.stat().st_mode | stat.S_IXUSR)

    def deals(self) -> list[dict]:
        """Every deal the fake was asked for: {time, provider, piece, outcome}."""
        log = self.dir / "calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def calls(self) -> list[list[str]]:
        log = self.dir / "argv.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def deal_calls(self) -> list[list[str]]:
        return [argv for argv in self.calls() if "deal" in argv or "offline-deal" in argv]

    def control(self, **settings) -> None:
        (self.dir / "control.json").write_text(json.dumps(settings))


@pytest.fixture
def fake_boost(tmp_path) -> FakeBoost:
    directory = tmp_path / "boost"
    directory.mkdir()
    return FakeBoost(directory)


@pytest.fixture
def key_file(tmp_path) -> Path:
    path = tmp_path / "secret" / "wallet.key"
    path.parent.mkdir()
    path.write_text(json.dumps({"Type": "secp256k1", "PrivateKey": "c2VjcmV0LWtleS1ieXRlcw=="}).encode().hex())
    os.chmod(path, 0o600)
    return path


@pytest.fixture
async def lotus():
    server = await FakeLotus(FakeChain(ids={WALLET: WALLET_ID})).start()
    yield server
    await server.stop()


@pytest.fixture
def deal_config(config, fake_boost, lotus, key_file):
    config.deal_making_service.boost_path = str(fake_boost.path)
    config.deal_making_service.key_dir = str(key_file.parent)
    config.deal_making_service.timeout = 20.0
    config.connection.full_node_api = lotus.url
    return config


@pytest.fixture
async def api(deal_config, db, serve_app):
    return await serve_app(create_app(deal_config, db, routes))


@pytest.fixture
def proposal(key_file) -> dict:
    return {
        "wallet": WALLET, "keyPath": str(key_file), "verified": True,
        "url": "http://example.com/piece.car", "pieceSize": 2**35, "pieceCid": PIECE_CID,
        "dataCid": DATA_CID, "provider": PROVIDER, "carSize": 30 * 2**30,
    }


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


async def assert_sent(db, fake_boost, answer: dict, **stored) -> dict:
    """The answer of an accepted POST /deal is what was stored, and boost was really asked for it:
    the stored DealState is proposed under the proposal boost returned, holds `stored`, and the
    last boost deal call named its provider, piece, data and wallet."""
    assert answer["state"] == "proposed" and answer["proposalCid"], answer
    deal = await db[models.DEAL_STATE].find_one({"_id": answer["id"]})
    assert deal is not None, "no DealState for the answer"
    assert (deal["state"], deal["proposalCid"]) == ("proposed", answer["proposalCid"])
    assert {k: deal[k] for k in stored} == stored
    argv = fake_boost.deal_calls()[-1]
    assert (flag(argv, "--provider"), flag(argv, "--commp"), flag(argv, "--payload-cid"), flag(argv, "--wallet")) == \
        (deal["provider"], deal["pieceCid"], deal["dataCid"], deal["client"])
    assert flag(argv, "--piece-size") == str(deal["pieceSize"])
    return deal
