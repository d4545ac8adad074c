"""A ranking service wired to fake Lotus, filrep, datacapstats and IPNI servers, and a DealState
holding deals of three providers in known states."""
from __future__ import annotations

import base64

import aiohttp
import pytest

from shared.multiaddr import encode
from services.ranking.ranking import Ranking
from services.ranking.routes import RANKING, routes
from shared import models
from shared.api import create_app
from tests.deals.fakes.lotus import FakeChain, FakeLotus

from .fakes import FakeSources, SourceData

HOUR = 3600.0
T0 = 1_780_000_000.0


def addr(text: str) -> str:
    return base64.b64encode(encode(text)).decode()


MINERS = {
    "f01000": {"info": {"PeerId": "12D3KooWPeerA", "Multiaddrs": [addr("/dns/sp0.example/tcp/443/https")],
                        "SectorSize": 34359738368},
               "power": {"MinerPower": {"RawBytePower": "1099511627776", "QualityAdjPower": "10995116277760"},
                         "TotalPower": {"RawBytePower": "1", "QualityAdjPower": "1"}, "HasMinPower": True}},
    "f01001": {"info": {"PeerId": "12D3KooWPeerB", "Multiaddrs": [addr("/ip4/10.0.0.1/tcp/8080/http")],
                        "SectorSize": 68719476736},
               "power": {"MinerPower": {"RawBytePower": "0", "QualityAdjPower": "0"}, "HasMinPower": False}},
    "f01002": {"info": {"PeerId": "12D3KooWPeerC", "Multiaddrs": None, "SectorSize": 34359738368},
               "power": {"MinerPower": {"RawBytePower": "5", "QualityAdjPower": "7"}, "HasMinPower": False}},
}

FILREP = [
    {"id": 1, "address": "f01000", "status": True, "reachability": "reachable", "uptimeAverage": 0.98,
     "price": "0", "verifiedPrice": "0", "minPieceSize": "256", "maxPieceSize": "34359738368",
     "rawPower": "1099511627776", "qualityAdjPower": "10995116277760", "isoCode": "US",
     "region": "North America", "freeSpace": "1000",
     "storageDeals": {"total": 120, "noPenalties": 118, "successRate": "0.98", "averagePrice": "0",
                      "dataStored": "5", "slashed": 2}, "score": "97", "rank": "12"},
    {"id": 2, "address": "f01001", "status": False, "reachability": "unreachable", "uptimeAverage": "0.5",
     "price": "20000000", "verifiedPrice": "0", "minPieceSize": "256", "maxPieceSize": "68719476736",
     "rawPower": "0", "qualityAdjPower": "0", "isoCode": "DE", "region": "Europe", "freeSpace": "0",
     "storageDeals": {"total": 10, "successRate": "0.4", "slashed": 6}, "score": "40", "rank": "300"},
    # Listed, hence tracked, but unknown to the chain: Lotus skips it.
    {"id": 3, "address": "f01003", "status": True, "reachability": "reachable", "uptimeAverage": 1,
     "region": "Asia", "isoCode": "JP", "storageDeals": {"total": 0, "successRate": "1"}, "score": "50",
     "rank": "100"},
]

DATACAPSTATS = [
    {"provider": "f01000", "noOfVerifiedDeals": "12", "verifiedDealsTotalSize": "412316860416",
     "noOfClients": "3", "lastDealHeight": "4863200"},
    {"provider": "f01002", "noOfVerifiedDeals": "1", "verifiedDealsTotalSize": "34359738368",
     "noOfClients": "1", "lastDealHeight": "4000000"},
]

IPNI = [
    {"AddrInfo": {"ID": "12D3KooWPeerA", "Addrs": ["/dns4/sp0.example/tcp/443/https"]},
     "LastAdvertisement": {"/": "baguqeeraaaa"}, "LastAdvertisementTime": "2026-05-01T10:00:00Z",
     "Publisher": {"ID": "12D3KooWPeerA", "Addrs": []}, "FrozenAt": None, "Inactive": False,
     "LastError": "", "LastErrorTime": "0001-01-01T00:00:00Z"},
    {"AddrInfo": {"ID": "12D3KooWPeerB", "Addrs": ["/ip4/10.0.0.1/tcp/24001"]},
     "LastAdvertisement": {"/": "baguqeerbbbb"}, "LastAdvertisementTime": "2025-01-02T03:04:05.123456789Z",
     "Publisher": None, "FrozenAt": None, "Inactive": True,
     "LastError": "fetching advertisement: timeout", "LastErrorTime": "2025-01-03T00:00:00Z"},
]


def deal(provider: str, state: str, created: float, activation: float | None = None, piece: str = "baga6ea4seaqpiece") -> dict:
    return {"_id": models.new_id(), "provider": provider, "state": state, "client": "f1client",
            "pieceCid": piece, "createdAt": created, "activation": activation, "updatedAt": created}


DEALS = [
    deal("f01000", "active", T0, T0 + 2 * HOUR),
    deal("f01000", "active", T0 + 100, T0 + 100 + 4 * HOUR),
    deal("f01000", "expired", T0, T0 + 6 * HOUR),
    deal("f01000", "rejected", T0),
    deal("f01001", "rejected", T0),
    deal("f01001", "rejected", T0),
    deal("f01001", "proposal_expired", T0),
    deal("f01002", "published", T0),
    deal("f01002", "slashed", T0, T0 + 10 * HOUR),
    deal("f01002", "error", T0),
]


@pytest.fixture
async def lotus():
    server = await FakeLotus(FakeChain(miners=MINERS)).start()
    yield server
    await server.stop()


@pytest.fixture
async def sources():
    server = await FakeSources(SourceData(filrep=list(FILREP), datacapstats=list(DATACAPSTATS),
                                          ipni=list(IPNI))).start()
    yield server
    await server.stop()


@pytest.fixture
def ranking_config(config, lotus, sources):
    config.connection.full_node_api = lotus.url
    config.connection.ipni_api = sources.url
    config.ranking_service.filrep_api = sources.url
    config.ranking_service.datacapstats_api = sources.url
    config.ranking_service.timeout = 1.0
    return config


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def ranking(ranking_config, db, session):
    await db[models.DEAL_STATE].insert_many([dict(d) for d in DEALS])
    ranking = Ranking(ranking_config, db, session)
    await ranking.load()
    return ranking


@pytest.fixture
async def api(ranking, serve_app):
    app = create_app(ranking.config, ranking.db, routes)
    app[RANKING] = ranking
    return await serve_app(app)
