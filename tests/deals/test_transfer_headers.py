"""The hosting token travels to storage providers as the deal's HTTP headers (issue 8 item 2), and
nowhere else: not to other hosts, not into DealState, answers or logs."""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import aiohttp
import pytest

from services.dealmaking.routes import routes
from services.hosting.service import create as hosting_app
from shared import models
from shared.api import create_app
from shared.cars import unpadded
from tests.hosting.fakes.prepared import prepare, write_tree

API_TOKEN = "owner-secret-1"
HOSTING_TOKEN = "provider-secret-2"


def headers_of(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == "--http-headers"]


async def deal_api(serve_app, config, db):
    return await serve_app(create_app(config, db, routes))


def owner() -> dict:
    return {"Authorization": f"Bearer {API_TOKEN}"}


async def everything_said(api, db, answers) -> str:
    deals = await (await api.get("/deals", headers=owner())).json()
    stored = [d async for d in db[models.DEAL_STATE].find({})]
    return json.dumps([answers, deals, stored], default=str)


async def test_token_goes_to_the_provider_for_a_url_on_our_hosting_service(
        deal_config, db, serve_app, fake_boost, proposal, caplog):
    caplog.set_level(logging.DEBUG)
    deal_config.connection.api_token = API_TOKEN
    deal_config.http_hosting_service.token = HOSTING_TOKEN
    deal_config.connection.http_hosting_service = "http://127.0.0.1:8080"
    api = await deal_api(serve_app, deal_config, db)
    answers = []
    for url in ("http://127.0.0.1:8080/piece/" + proposal["pieceCid"], "http://127.0.0.1/x.car",
                "https://127.0.0.1:8080/x.car", "http://example.com/piece.car"):
        await db[models.DEAL_PENDING].delete_many({})
        response = await api.post("/deal", json={**proposal, "url": url}, headers=owner())
        assert response.status == 200, await response.text()
        answers.append(await response.json())
    calls = fake_boost.deal_calls()
    assert headers_of(calls[0]) == [f"Authorization=Bearer {HOSTING_TOKEN}"]
    # Another port, scheme or host: the provider would hand the token to that host.
    assert [headers_of(argv) for argv in calls[1:]] == [[], [], []]
    assert HOSTING_TOKEN not in await everything_said(api, db, answers)
    assert HOSTING_TOKEN not in caplog.text


async def test_public_url_prefix_also_gets_the_token(deal_config, db, serve_app, fake_boost, proposal):
    deal_config.http_hosting_service.token = HOSTING_TOKEN
    deal_config.replication_service.http_url_prefix = "https://cars.example.org/"
    api = await deal_api(serve_app, deal_config, db)
    response = await api.post("/deal", json={**proposal, "url": "https://cars.example.org/piece/x"})
    assert response.status == 200, await response.text()
    assert headers_of(fake_boost.deal_calls()[0]) == [f"Authorization=Bearer {HOSTING_TOKEN}"]


async def test_no_token_no_headers_and_offline_deals_take_none(deal_config, db, serve_app, fake_boost, proposal):
    deal_config.connection.http_hosting_service = "http://example.com"
    api = await deal_api(serve_app, deal_config, db)
    assert (await api.post("/deal", json=proposal)).status == 200
    deal_config.http_hosting_service.token = HOSTING_TOKEN
    await db[models.DEAL_PENDING].delete_many({})
    offline = {k: v for k, v in proposal.items() if k not in ("url", "carSize")}
    assert (await api.post("/deal", json=offline)).status == 200
    assert [headers_of(argv) for argv in fake_boost.deal_calls()] == [[], []]


async def test_a_boost_that_echoes_the_token_does_not_leak_it(deal_config, db, serve_app, fake_boost, proposal):
    deal_config.http_hosting_service.token = HOSTING_TOKEN
    deal_config.connection.http_hosting_service = "http://example.com"
    fake_boost.control(fail=f"transfer params: Authorization=Bearer {HOSTING_TOKEN}")
    api = await deal_api(serve_app, deal_config, db)
    response = await api.post("/deal", json=proposal)
    assert response.status == 502
    text = await response.text()
    assert HOSTING_TOKEN not in text and "***" in text
    assert HOSTING_TOKEN not in await everything_said(api, db, [])


# --- acceptance: a provider downloads the piece with the deal's headers ---

@pytest.fixture
async def piece(db, deal_config, tmp_path):
    root = tmp_path / "data"
    write_tree(root, {"a.bin": bytes(range(256)) * 400, "b/c.txt": b"hello\n"})
    prepared = await prepare(db, deal_config, root, "demo", max_chunk=1 << 20)
    gen = await db[models.GENERATION].find_one({"_id": prepared.chunks[0]["_id"]})
    data = Path(gen["carPath"]).read_bytes()
    padded = data + bytes(unpadded(gen["pieceSize"]) - len(data))
    return gen, padded


async def provider_download(serve_app, aiohttp_server, db, config, fake_boost, proposal, gen,
                            deal_maker_token: str | None = None) -> dict:
    """The download boost made for a deal on our hosting service. deal_maker_token: the hosting
    token the deal making service knows, when not the one the hosting service was started with."""
    hosting = await aiohttp_server(hosting_app(config, db))
    if deal_maker_token is not None:
        config.http_hosting_service.token = deal_maker_token
    config.connection.http_hosting_service = str(hosting.make_url("")).rstrip("/")
    api = await deal_api(serve_app, config, db)
    fake_boost.control(download=True)
    body = {**proposal, "url": f"{config.connection.http_hosting_service}/piece/{gen['pieceCid']}",
            "pieceCid": gen["pieceCid"], "pieceSize": gen["pieceSize"], "dataCid": gen["dataCid"],
            "carSize": gen["carSize"]}
    response = await api.post("/deal", json=body, headers=owner())
    assert response.status == 200, await response.text()
    downloads = (fake_boost.dir / "downloads.jsonl").read_text().splitlines()
    assert len(downloads) == 1
    return json.loads(downloads[0])


async def test_provider_downloads_the_piece_while_api_token_is_set(
        serve_app, aiohttp_server, db, deal_config, fake_boost, proposal, piece):
    gen, padded = piece
    deal_config.connection.api_token = API_TOKEN  # boost must not need it
    got = await provider_download(serve_app, aiohttp_server, db, deal_config, fake_boost, proposal, gen)
    assert got["status"] == 200 and got["bytes"] == len(padded)
    assert got["sha256"] == hashlib.sha256(padded).hexdigest()
    assert headers_of(fake_boost.deal_calls()[0]) == []


async def test_provider_downloads_with_the_hosting_token_from_the_deal(
        serve_app, aiohttp_server, db, deal_config, fake_boost, proposal, piece):
    gen, padded = piece
    deal_config.connection.api_token = API_TOKEN
    deal_config.http_hosting_service.token = HOSTING_TOKEN
    got = await provider_download(serve_app, aiohttp_server, db, deal_config, fake_boost, proposal, gen)
    assert got["status"] == 200 and got["sha256"] == hashlib.sha256(padded).hexdigest()
    # Without the deal's headers, the same download is refused.
    async with aiohttp.ClientSession() as session:
        async with session.get(got["url"]) as response:
            assert response.status == 401
        async with session.get(got["url"], headers={"Authorization": f"Bearer {HOSTING_TOKEN}"}) as response:
            assert response.status == 200
        # ... and the provider's token opens no management API.
        deals = f"{str((await deal_api(serve_app, deal_config, db)).make_url('')).rstrip('/')}/deals"
        async with session.get(deals, headers={"Authorization": f"Bearer {HOSTING_TOKEN}"}) as response:
            assert response.status == 401


async def test_provider_without_the_hosting_token_gets_401(
        serve_app, aiohttp_server, db, deal_config, fake_boost, proposal, piece):
    gen, _ = piece
    deal_config.connection.api_token = API_TOKEN
    deal_config.http_hosting_service.token = HOSTING_TOKEN
    # A deal maker that does not know the hosting token (configured on the hosting host only).
    got = await provider_download(serve_app, aiohttp_server, db, deal_config, fake_boost, proposal, gen,
                                  deal_maker_token="")
    assert got["status"] == 401 and got["bytes"] == 0
