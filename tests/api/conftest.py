"""The three HTTP services on real sockets, in one thread with its own event loop (schemathesis and
generated clients are synchronous), over one test database seeded with a prepared, indexed
dataset, a preparation created through the API and a proposed deal."""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import urllib.request
from collections import Counter
import uuid
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from services.dealmaking.routes import routes as deal_routes
from services.hosting.routes import routes as hosting_routes
from services.indexing.indexer import build_index
from services.preparation.routes import routes as preparation_routes
from shared import config as config_module
from shared import database
from shared.api import create_app
from tests.deals.conftest import DATA_CID, PIECE_CID, PROVIDER, WALLET, FakeBoost
from tests.hosting.fakes.prepared import prepare, write_tree

TOKEN = "fuzz-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SERVICES = {"preparation": preparation_routes, "dealmaking": deal_routes, "hosting": hosting_routes}


class Fuzzed:
    """Test cases run per operation by tests/api/test_fuzz.py, printed at the end of the run."""

    def __init__(self):
        self.requests: Counter = Counter()
        self.started: float | None = None
        self.last = 0.0

    def count(self, operation: str) -> None:
        self.last = time.monotonic()
        self.started = self.started or self.last
        self.requests[operation] += 1

    def summary(self) -> str:
        return (f"schemathesis: {len(self.requests)} operations, {sum(self.requests.values())} test cases "
                f"({min(self.requests.values())} to {max(self.requests.values())} per operation) "
                f"in {self.last - self.started:.0f} s")


FUZZED = Fuzzed()


def pytest_terminal_summary(terminalreporter) -> None:
    if FUZZED.requests:
        terminalreporter.write_line(FUZZED.summary())


@dataclass
class Live:
    urls: dict[str, str] = field(default_factory=dict)
    seeded: dict[str, str] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)
    # This module's own counter: test modules import the conftest under another name than pytest.
    fuzzed: Fuzzed = FUZZED

    def call(self, service: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.urls[service] + path, data=data, method=method,
                                         headers={**AUTH, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())


class _Errors(logging.Handler):
    def __init__(self, sink: list[str]):
        super().__init__(logging.ERROR)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record.getMessage())


@pytest.fixture(scope="session")
def live(mongo_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("live")
    boost = root / "boost"
    boost.mkdir()
    keys = root / "keys"
    keys.mkdir()
    (keys / "wallet.key").write_text(json.dumps({"Type": "secp256k1", "PrivateKey": "a2V5"}).encode().hex())
    config = config_module.parse({
        "connection": {"database": f"{mongo_server.url}/live{uuid.uuid4().hex[:8]}", "api_token": TOKEN,
                       "full_node_api": ""},
        "database": {"enabled": False},
        "deal_preparation_worker": {"out_dir": str(root / "cars")},
        "http_hosting_service": {"car_dir": str(root / "cars")},
        "deal_making_service": {"boost_path": str(FakeBoost(boost).path), "key_dir": str(keys), "timeout": 20.0},
    })
    write_tree(root / "dataset", {"a/b.txt": b"hello\n" * 100, "c.bin": bytes(range(256)) * 300, "d/e/f.txt": b"x"})
    state = Live()
    errors = _Errors(state.server_errors)
    logging.getLogger("shared.api").addHandler(errors)
    ready = threading.Event()
    stop: dict = {}

    async def main() -> None:
        client = database.client(config.connection.database)
        db = client[database.database_name(config.connection.database)]
        runners = []
        try:
            await database.ensure_indexes(db)
            prepared = await prepare(db, config, root / "dataset", "demo", max_chunk=40_000)
            await build_index(db, config, prepared.id)
            chunk = prepared.chunks[0]
            state.seeded.update(preparation=prepared.id, name=prepared.name, generation=chunk["_id"],
                                dataCid=chunk["dataCid"], pieceCid=chunk["pieceCid"], dataset=str(root / "dataset"))
            for name, routes in SERVICES.items():
                runner = web.AppRunner(create_app(config, db, routes, title=name), access_log=None)
                await runner.setup()
                await web.TCPSite(runner, "127.0.0.1", 0).start()
                runners.append(runner)
                host, port = runner.addresses[0][:2]
                state.urls[name] = f"http://{host}:{port}"
            stop["event"] = asyncio.Event()
            stop["loop"] = asyncio.get_running_loop()
            ready.set()
            await stop["event"].wait()
        finally:
            ready.set()
            for runner in runners:
                await runner.cleanup()
            await client.drop_database(db.name)
            await client.close()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(120) and "event" in stop, "the services did not start"
    status, created = state.call("preparation", "POST", "/preparation",
                                 {"name": "through-the-api", "path": state.seeded["dataset"], "dealSize": "64 KiB"})
    assert status == 201, created
    status, deal = state.call("dealmaking", "POST", "/deal", {
        "wallet": WALLET, "keyPath": "wallet.key", "provider": PROVIDER, "pieceCid": PIECE_CID,
        "pieceSize": 2**35, "dataCid": DATA_CID, "url": "http://example.com/piece.car", "carSize": 30 * 2**30})
    assert status == 200, deal
    state.seeded.update(created=created["id"], deal=deal["id"])
    yield state
    stop["loop"].call_soon_threadsafe(stop["event"].set)
    thread.join(60)
    logging.getLogger("shared.api").removeHandler(errors)
