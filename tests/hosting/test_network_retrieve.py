"""Files come back once our CARs are deleted and the hosting service is stopped: from providers
found only through our DealState (the deal-making API) and Lotus StateMinerInfo, or only through
IPNI; a provider serving corrupted bytes is detected and the other used. Names resolve through
DNSLink (a local DNS server) and IPNS (kubo)."""
from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

import pytest

from cli import retrieve as cli_retrieve
from services.dealmaking.service import make_app as dealmaking_app
from services.indexing import discovery, kubo, retrieval
from services.indexing.sources import Source
from shared import models
from shared.multiaddr import encode
from shared.runtime import Runtime
from scripts.fakes.lotus import FakeChain, FakeLotus
from tests.hosting.conftest import dataset_files
from tests.hosting.fakes.kubo import FakeKubo
from tests.hosting.fakes.network import BITSWAP_METADATA, HTTP_METADATA, DnsServer, FakeIpni, FakeProvider
from tests.hosting.test_retrieve import tree_of

FILES = dataset_files()


def addr(text: str) -> str:
    return base64.b64encode(encode(text)).decode()


@pytest.fixture
async def offline(indexed, config, db, aiohttp_server, unused_tcp_port):
    """The dataset's CARs copied into two providers (the second corrupt), then deleted here; the
    index pinned in a fake kubo; the hosting service never started (a dead port)."""
    prepared, index_cid = indexed
    cars = {}
    for gen in prepared.chunks:
        data = Path(gen["carPath"]).read_bytes()
        cars[gen["pieceCid"]] = (data, int(gen["pieceSize"]) // 128 * 127)
    fake_kubo = FakeKubo()
    kubo_server = await aiohttp_server(fake_kubo.app())
    ipfs_api = str(kubo_server.make_url("")).rstrip("/")
    index_car = os.path.join(config.deal_preparation_worker.out_dir, f"{index_cid}.car")
    await kubo.dag_import(ipfs_api, index_car, index_cid)
    good, bad = await FakeProvider(cars).start(), await FakeProvider(cars, corrupt=True).start()
    for path in Path(config.deal_preparation_worker.out_dir).glob("*.car"):
        path.unlink()
    yield prepared, index_cid, good, bad, ipfs_api, f"http://127.0.0.1:{unused_tcp_port}"
    await good.stop()
    await bad.stop()


async def fetch(target, finder, tmp_path, methods=("piece", "car", "block"), **kw):
    return await asyncio.to_thread(cli_retrieve.run, target, [], methods, str(tmp_path), None,
                                   finder=finder, **kw)


async def test_from_providers_found_through_our_deals_and_the_chain(offline, db, config, tmp_path, serve_app):
    prepared, index_cid, good, bad, ipfs_api, dead = offline
    # Our DealState: each piece active with both providers, the corrupt one first.
    deals = []
    for gen in prepared.chunks:
        for provider in ("f01000", "f01001"):
            deals.append({"_id": models.new_id(), "provider": provider, "state": "active", "client": "f1client",
                          "pieceCid": gen["pieceCid"], "pieceSize": gen["pieceSize"], "dataCid": gen["dataCid"]})
    await db[models.DEAL_STATE].insert_many(deals)
    chain = FakeChain(miners={
        "f01000": {"info": {"PeerId": "12D3KooWBad", "Multiaddrs": [addr(f"/ip4/127.0.0.1/tcp/{bad.port}/http")]}},
        "f01001": {"info": {"PeerId": "12D3KooWGood", "Multiaddrs": [addr(f"/ip4/127.0.0.1/tcp/{good.port}/http")]}},
    })
    lotus = await FakeLotus(chain).start()
    deal_api = await serve_app(dealmaking_app(Runtime(config, db.client, db)))
    finder = discovery.Discovery(discovery.Settings(
        hosting=Source(dead, label="hosting"), deal_making_service=str(deal_api.make_url("")).rstrip("/"),
        full_node_api=lotus.url, ipni_api="", ipfs_api=ipfs_api, timeout=5))
    try:
        summary = await fetch(index_cid, finder, tmp_path)
    finally:
        await lotus.stop()
    assert summary["indexCid"] == index_cid
    assert tree_of(tmp_path / index_cid) == FILES
    served = {s["url"]: s for s in summary["sources"]}
    assert list(served) == [good.url] and served[good.url]["label"] == "f01001 (active deal)"
    skipped = {s["url"]: s["reason"] for s in summary["skippedSources"]}
    assert set(skipped) == {bad.url, dead}  # the stopped hosting service, asked for the index first
    assert "CID mismatch" in skipped[bad.url]
    assert any(r.startswith("/piece/") for r in bad.requests)  # it was asked, and caught
    # StateMinerInfo once per provider for the whole run (cached), not once per range.
    assert chain.calls.count("Filecoin.StateMinerInfo") == 2


async def test_from_providers_found_only_through_ipni(offline, tmp_path):
    prepared, index_cid, good, bad, ipfs_api, dead = offline
    ipni = await FakeIpni([
        ("12D3KooWBitswapOnly", [f"/ip4/127.0.0.1/tcp/{good.port}/http"], BITSWAP_METADATA),  # not HTTP: ignored
        ("12D3KooWBad", [f"/ip4/127.0.0.1/tcp/{bad.port}/http"], HTTP_METADATA),
        ("12D3KooWGood", ["/ip4/127.0.0.1/udp/4001/quic-v1", f"/ip4/127.0.0.1/tcp/{good.port}/http"], HTTP_METADATA),
    ]).start()
    finder = discovery.Discovery(discovery.Settings(hosting=Source(dead, label="hosting"), ipni_api=ipni.url,
                                                    ipfs_api=ipfs_api, timeout=5))
    try:
        summary = await fetch(f"{index_cid}/a", finder, tmp_path, methods=("piece", "block"))
    finally:
        await ipni.stop()
    assert tree_of(tmp_path / "a") == {k[2:]: v for k, v in FILES.items() if k.startswith("a/")}
    # The index came from kubo, where it is pinned; the ranges from the good provider.
    assert [s["url"] for s in summary["sources"]] == [good.url]
    assert summary["sources"][0]["label"] == "12D3KooWGood (IPNI)"
    assert {s["url"] for s in summary["skippedSources"]} == {bad.url, dead}
    assert any(p.startswith("/cid/") for p in ipni.requests)


async def test_nothing_found_is_one_clear_error(offline, tmp_path):
    _, index_cid, _, _, _, dead = offline
    ipni = await FakeIpni([]).start()
    finder = discovery.Discovery(discovery.Settings(hosting=Source(dead, label="hosting"), ipni_api=ipni.url,
                                                    timeout=5))
    try:
        with pytest.raises(retrieval.RetrievalError, match="cannot fetch index block"):
            await fetch(f"{index_cid}/top.txt", finder, tmp_path)
    finally:
        await ipni.stop()


async def test_dnslink_name_and_ipns_name(indexed, hosting, tmp_path):
    prepared, index_cid = indexed
    server = DnsServer({"_dnslink.data.example": [f"dnslink=/ipfs/{index_cid}"]})
    resolver = await server.start()
    finder = discovery.Discovery(discovery.Settings(hosting=Source(hosting, label="hosting"), ipni_api=""))
    try:
        summary = await fetch("data.example/a/b/small.txt", finder, tmp_path, resolver=resolver)
        assert summary["indexCid"] == index_cid
        assert (tmp_path / "small.txt").read_bytes() == FILES["a/b/small.txt"]
        assert "_dnslink.data.example" in server.queries
        with pytest.raises(retrieval.RetrievalError, match="no DNSLink TXT record at _dnslink.nothing.example"):
            await fetch("nothing.example/x", finder, tmp_path, resolver=resolver)
    finally:
        server.stop()


async def test_ipns_through_kubo(indexed, hosting, tmp_path, aiohttp_server):
    _, index_cid = indexed
    fake = FakeKubo()
    fake.names["k51qzi5uqu5dexample"] = f"/ipfs/{index_cid}"
    api = str((await aiohttp_server(fake.app())).make_url("")).rstrip("/")
    summary = await asyncio.to_thread(cli_retrieve.run, "/ipns/k51qzi5uqu5dexample/top.txt", [Source(hosting)],
                                      ("block",), str(tmp_path), None, ipfs_api=api)
    assert summary["indexCid"] == index_cid and (tmp_path / "top.txt").read_bytes() == FILES["top.txt"]
    with pytest.raises(retrieval.RetrievalError, match="kubo name/resolve"):
        await asyncio.to_thread(cli_retrieve.run, "/ipns/unknown/top.txt", [Source(hosting)], ("block",),
                                str(tmp_path), None, ipfs_api=api)


@pytest.mark.parametrize("codes,http", [([0x0920], True), ([0x0900], False), ([0x0900, 0x0920], True),
                                        ([0x0910], False), ([], False)])
def test_ipni_metadata_advertising_http(codes, http):
    from shared.ipld import varint
    metadata = base64.b64encode(b"".join(varint.encode(c) for c in codes)).decode()
    assert discovery._advertises_http(metadata) is http
    assert discovery._advertises_http("not base64!") is False


async def test_ipni_multihash_lookup_when_the_cid_is_unknown(offline, tmp_path):
    from shared.ipld import cid as cidlib
    _, index_cid, good, _, ipfs_api, dead = offline
    ipni = await FakeIpni([("12D3KooWGood", [f"/ip4/127.0.0.1/tcp/{good.port}/http"], HTTP_METADATA)]).start()
    ipni.by_cid = False
    finder = discovery.Discovery(discovery.Settings(hosting=Source(dead, label="hosting"), ipni_api=ipni.url,
                                                    ipfs_api=ipfs_api, timeout=5))
    try:
        summary = await fetch(f"{index_cid}/top.txt", finder, tmp_path, methods=("block",))
    finally:
        await ipni.stop()
    assert (tmp_path / "top.txt").read_bytes() == FILES["top.txt"]
    assert [s["url"] for s in summary["sources"]] == [good.url]
    asked = [p for p in ipni.requests if p.startswith("/multihash/")]
    # The multihash in base58btc, as cid.contact takes it: sha2-256 multihashes start "Qm".
    assert asked and all(p.split("/")[2].startswith("Qm") for p in asked)
    assert cidlib.parse(cidlib.from_str(index_cid))[1] == cidlib.SHA2_256
