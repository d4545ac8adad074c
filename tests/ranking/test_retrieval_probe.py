"""The retrieval probe: range requests to providers holding active deals of ours, compared byte for
byte with our own copy of the piece (the CAR, then zeros)."""
from __future__ import annotations

import os

import pytest

from services.ranking.ranking import Ranking
from services.ranking.sources import Lotus, Retrieval
from shared import models
from tests.deals.fakes.lotus import FakeChain, FakeLotus

from .conftest import addr, deal
from .fakes import FakeProvider

PIECE_CID = "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"
DATA_CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
PIECE_SIZE = 4096
CAR_SIZE = 3000
MODES = {"f02000": None, "f02001": "corrupt", "f02002": "404", "f02003": "truncate", "f02004": "ignore-range"}


@pytest.fixture
async def world(config, db, session, tmp_path):
    car_dir = tmp_path / "cars"
    car_dir.mkdir(exist_ok=True)
    car = os.urandom(CAR_SIZE)
    (car_dir / f"{DATA_CID}.car").write_bytes(car)
    piece = car + bytes(PIECE_SIZE // 128 * 127 - CAR_SIZE)
    await db[models.GENERATION].insert_one({
        "_id": models.new_id(), "preparationId": "p", "index": 0, "status": "completed", "pieceCid": PIECE_CID,
        "dataCid": DATA_CID, "pieceSize": PIECE_SIZE, "carSize": CAR_SIZE})
    servers = {p: await FakeProvider({PIECE_CID: piece}, mode).start() for p, mode in MODES.items()}
    miners = {p: {"info": {"PeerId": f"12D3KooW{p}", "SectorSize": 2**35,
                           "Multiaddrs": [addr(f"/ip4/127.0.0.1/tcp/{s.url.rsplit(':', 1)[1]}/http")]},
                  "power": {"MinerPower": {"RawBytePower": "1", "QualityAdjPower": "1"}, "HasMinPower": True}}
              for p, s in servers.items()}
    lotus = await FakeLotus(FakeChain(miners=miners)).start()
    config.connection.full_node_api = lotus.url
    config.http_hosting_service.car_dir = str(car_dir)
    config.ranking_service.timeout = 5.0
    config.ranking_service.providers = list(MODES)
    deals = [deal(p, "active", 0.0, 3600.0, piece=PIECE_CID) for p in MODES]
    deals.append(deal("f02000", "rejected", 0.0, piece="baga6ea4seaqnotours"))
    await db[models.DEAL_STATE].insert_many(deals)
    yield servers
    for server in servers.values():
        await server.stop()
    await lotus.stop()


async def test_probe_scores_correct_bytes_and_names_the_failing_range(world, config, db, session):
    ranking = Ranking(config, db, session, {"lotus": Lotus(), "retrieval": Retrieval(seed=1)})
    await ranking.load()
    summary = await ranking.refresh()
    assert summary["sources"]["retrieval"]["ok"], summary
    table = ranking.table
    assert table.get("f02000", "retrieval.success_rate") == 1.0
    assert table.get("f02000", "retrieval.checked") == 1
    assert table.get("f02000", "retrieval.last_error") == ""
    assert table.get("f02000", "retrieval.ttfb_ms") >= 0
    where = f"piece {PIECE_CID} range 0-4063"
    expected_errors = {"f02001": "wrong bytes from offset 2032", "f02002": "HTTP 404",
                       "f02003": "truncated body"}
    for provider, words in expected_errors.items():
        assert table.get(provider, "retrieval.success_rate") == 0.0, provider
        error = table.get(provider, "retrieval.last_error")
        assert error.startswith(where) and words in error, (provider, error)
        assert table.get(provider, "retrieval.ttfb_ms") is None
    assert world["f02000"].requests == ["bytes=0-4063"]
    # A provider ignoring Range sends the whole piece: right bytes for a probe of the whole piece.
    assert table.get("f02004", "retrieval.success_rate") == 1.0


async def test_probes_are_bounded_and_ranges_compared(world, config, db, session):
    config.ranking_service.probe_bytes = 1000
    config.ranking_service.retrieval_probes = 3
    ranking = Ranking(config, db, session, {"lotus": Lotus(), "retrieval": Retrieval(seed=2)})
    await ranking.load()
    await ranking.refresh()
    probed = [p for p in MODES if ranking.table.get(p, "retrieval.checked")]
    assert len(probed) == 3 and sum(len(s.requests) for s in world.values()) == 3
    for provider in probed:
        request = world[provider].requests[0]
        start, end = map(int, request.removeprefix("bytes=").split("-"))
        assert end - start + 1 == 1000
        good = provider == "f02000" or (provider == "f02004" and start == 0)
        assert ranking.table.get(provider, "retrieval.success_rate") == (1.0 if good else 0.0), provider
        if provider == "f02004" and not good:
            assert "whole piece came back" in ranking.table.get(provider, "retrieval.last_error")
