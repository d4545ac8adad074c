"""A replication environment on loopback: the real deal making and ranking services (in this
process, on real sockets), the fake boost executable and the fake Lotus node, and a prepared
dataset of N packed chunks."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp
import pytest

from services.dealmaking.routes import routes as deal_routes
from services.ranking.ranking import Ranking
from services.ranking.routes import RANKING, routes as ranking_routes
from services.replication.replicator import Replicator
from services.replication.routes import routes as replication_routes
from services.tracking.tracker import Tracker
from shared import models
from shared.api import create_app
from shared.ipld import cid as cidlib
from shared.lotus import LotusClient
# The deal tests' fixtures, shared by import: the fake boost, the wallet key, the fake Lotus.
from tests.deals.conftest import WALLET, WALLET_ID, deal_config, fake_boost, key_file, lotus  # noqa: F401

GOOD = ["f01003", "f01004", "f01005", "f01006"]
REJECTS, TIMES_OUT = "f01001", "f01002"


def piece_cid(i: int) -> str:
    return cidlib.to_str(cidlib.piece_cid_v1(i.to_bytes(4, "big") * 8))


def data_cid(i: int) -> str:
    return cidlib.to_str(cidlib.raw(b"chunk %d" % i))


async def add_dataset(db, chunks: int, name: str = "dataset") -> str:
    scan = models.scanning_request(name, "/data/" + name, 2**20, 2**19, 2**19 + 1)
    scan["status"] = models.Status.COMPLETED.value
    await db[models.SCANNING].insert_one(scan)
    docs = []
    for i in range(chunks):
        doc = models.generation_request(scan, i, 1, 1000)
        doc.update(status="completed", dataCid=data_cid(i), pieceCid=piece_cid(i), pieceSize=2**20, carSize=900_000)
        docs.append(doc)
    if docs:
        await db[models.GENERATION].insert_many(docs)
    return scan["_id"]


async def poll(check, budget: float = 60.0, every: float = 0.05):
    """Await `check()` until it returns something truthy, within `budget` seconds."""
    deadline = time.monotonic() + budget
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {budget}s: {check.__name__}")
        await asyncio.sleep(every)


@dataclass
class Env:
    db: object
    config: object
    boost: object
    lotus: object
    api: object  # replication API test client
    session: aiohttp.ClientSession
    deal_url: str
    ranking_url: str

    def replicator(self) -> Replicator:
        return Replicator(self.db, self.config, self.session)

    async def track(self) -> None:
        """Publish and activate every proposed deal on the fake chain, then one tracking round."""
        chain = self.lotus.chain
        async for deal in self.db[models.DEAL_STATE].find({"state": "proposed"}):
            chain.publish(WALLET_ID, deal["provider"], deal["pieceCid"], deal["startEpoch"], deal["endEpoch"],
                          piece_size=deal["pieceSize"])
        for deal_id in list(chain.deals):
            if chain.deals[deal_id]["State"]["SectorStartEpoch"] < 0:
                chain.activate(deal_id)
        await Tracker(self.db, LotusClient(self.session, self.lotus.url)).round()

    def request(self, dataset_id: str, **extra) -> dict:
        return {"datasetId": dataset_id, "minReplicas": 3, "client": WALLET, "keyPath": str(self.key_file),
                "criteria": "provider in (" + ", ".join([REJECTS, TIMES_OUT, *GOOD[:3]]) + ")", **extra}


@pytest.fixture
async def env(deal_config, db, serve_app, fake_boost, lotus, key_file):
    config = deal_config
    config.deal_making_service.timeout = 3.0
    settings = config.replication_service
    settings.interval = 0.2
    settings.backoff_base = 0.5
    settings.backoff_cap = 4.0
    settings.concurrency = 6
    settings.verified = False
    config.deal_tracking_service.enabled = True
    config.ranking_service.providers = [REJECTS, TIMES_OUT, *GOOD]
    config.ranking_service.sources = []
    fake_boost.control(providers={REJECTS: {"reject": "we do not take this client"}, TIMES_OUT: {"sleep": 60}})
    deal_client = await serve_app(create_app(config, db, deal_routes))
    async with aiohttp.ClientSession() as session:
        ranking = Ranking(config, db, session, sources={})
        await ranking.load()
        app = create_app(config, db, ranking_routes)
        app[RANKING] = ranking
        ranking_client = await serve_app(app)
        config.connection.deal_making_service = str(deal_client.make_url(""))
        config.connection.ranking_service = str(ranking_client.make_url(""))
        api = await serve_app(create_app(config, db, replication_routes))
        environment = Env(db, config, fake_boost, lotus, api, session, config.connection.deal_making_service,
                          config.connection.ranking_service)
        environment.key_file = key_file
        yield environment
