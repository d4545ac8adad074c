"""The five HTTP services on real sockets, in one thread with its own event loop (schemathesis and
generated clients are synchronous), over one test database seeded with a prepared, indexed
dataset, a preparation created through the API, a proposed deal, provider metrics collected
from local fakes of the ranking sources and a replication request of the prepared dataset (the
replication API only reads and writes the database: no replicator runs here, so nothing it
accepts makes or ranks deals)."""
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
from types import SimpleNamespace

import aiohttp
import pytest
from aiohttp import web

from services.dealmaking import service as dealmaking_service
from services.hosting import service as hosting_service
from services.indexing.indexer import build_index
from services.preparation import service as preparation_service
from services.ranking import service as ranking_service
from services.ranking.ranking import Ranking
from services.replication import service as replication_service
from shared import config as config_module
from shared import database
from shared.api import app_runner
from tests.deals.conftest import DATA_CID, PIECE_CID, PROVIDER, WALLET, FakeBoost
from tests.deals.fakes.lotus import FakeChain, FakeLotus
from tests.hosting.fakes.prepared import prepare, write_tree
from tests.ranking.conftest import DATACAPSTATS, FILREP, IPNI, MINERS
from tests.ranking.fakes import FakeSources, SourceData

TOKEN = "fuzz-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def build(service: str, config, db=None, ranking: Ranking | None = None) -> web.Application:
    """The app of `service` as its module makes it (its routes, title and token policy)."""
    runtime = SimpleNamespace(config=config, db=db)
    if service == "preparation":
        return preparation_service.app(runtime)
    if service == "dealmaking":
        return dealmaking_service.make_app(runtime)
    if service == "hosting":
        return hosting_service.app(runtime)
    if service == "replication":
        return replication_service.make_app(runtime)
    return ranking_service.make_app(runtime, ranking or Ranking(config, db, None))


SERVICES = ("preparation", "dealmaking", "hosting", "ranking", "replication")


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


# Package scope: the services and their seeded database are gone before the rest of the suite runs.
@pytest.fixture(scope="package")
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
        "deal_preparation_service": {"dataset_roots": [str(root)]},
        "deal_making_service": {"boost_path": str(FakeBoost(boost).path), "key_dir": str(keys), "timeout": 20.0},
        # Tracked without any metric: the answers about such a provider are fuzzed too.
        "ranking_service": {"providers": ["f01000", "f09999"], "timeout": 2.0},
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
        lotus = await FakeLotus(FakeChain(miners=MINERS)).start()
        sources = await FakeSources(SourceData(filrep=list(FILREP), datacapstats=list(DATACAPSTATS),
                                               ipni=list(IPNI))).start()
        config.connection.full_node_api = lotus.url
        config.connection.ipni_api = config.ranking_service.filrep_api = sources.url
        config.ranking_service.datacapstats_api = sources.url
        session = aiohttp.ClientSession()
        try:
            await database.ensure_indexes(db)
            prepared = await prepare(db, config, root / "dataset", "demo", max_chunk=40_000)
            await build_index(db, config, prepared.id)
            chunk = prepared.chunks[0]
            state.seeded.update(preparation=prepared.id, name=prepared.name, generation=chunk["_id"],
                                dataCid=chunk["dataCid"], pieceCid=chunk["pieceCid"], dataset=str(root / "dataset"))
            ranking = Ranking(config, db, session)
            await ranking.load()
            await ranking.refresh()  # metrics of the fakes' providers, stored as a round stores them
            for name in SERVICES:
                runner = app_runner(build(name, config, db, ranking))
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
            await session.close()
            await lotus.stop()
            await sources.stop()
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
    status, replication = state.call("replication", "POST", "/replication", {
        "datasetId": state.seeded["preparation"], "minReplicas": 2, "criteria": "deals.acceptance_rate >= 0",
        "client": WALLET, "keyPath": "wallet.key", "urlTemplate": ""})
    assert status == 201, replication
    state.seeded.update(created=created["id"], deal=deal["id"], replication=replication["id"])
    yield state
    stop["loop"].call_soon_threadsafe(stop["event"].set)
    thread.join(60)
    logging.getLogger("shared.api").removeHandler(errors)
