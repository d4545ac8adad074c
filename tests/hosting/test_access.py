"""Who may read what on the hosting service, and only what exists (issue 8 items 1 and 2).

Storage providers fetch pieces without any Authorization (boost sends none unless the deal gives
headers), so api_token must not guard them; [http_hosting_service] token can, and it opens
nothing else. Bundles and /index are the owner's: api_token, unless public_bundles."""
from __future__ import annotations

import aiohttp
import pytest

from services.hosting.service import create
from services.preparation import handlers as prep_handlers
from shared import models

API_TOKEN = "owner-secret"
HOSTING_TOKEN = "provider-secret"


async def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers=headers) as response:
            return response.status, await response.read()


@pytest.fixture
async def urls(indexed, db):
    prepared, index_cid = indexed
    gen = await db[models.GENERATION].find_one({"_id": prepared.chunks[0]["_id"]})
    block = await db[models.CAR_BLOCKS].find_one({"generationId": gen["_id"]})
    return {
        "car": f"/{gen['dataCid']}.car", "piece": f"/piece/{gen['pieceCid']}",
        "block": f"/ipfs/{block['cid']}?format=raw", "index block": f"/ipfs/{index_cid}?format=raw",
        "index car": f"/{index_cid}.car", "bundle": "/bundle/demo/top.txt", "index": "/index/demo",
    }


CONTENT = ("car", "piece", "block", "index block", "index car")
OWNER = ("bundle", "index")


async def serve(aiohttp_server, config, db, **settings) -> str:
    config.connection.api_token = settings.get("api_token", "")
    config.http_hosting_service.token = settings.get("token", "")
    config.http_hosting_service.public_bundles = settings.get("public_bundles", False)
    server = await aiohttp_server(create(config, db))
    return str(server.make_url("")).rstrip("/")


async def test_api_token_does_not_lock_providers_out_of_content(aiohttp_server, config, db, urls):
    host = await serve(aiohttp_server, config, db, api_token=API_TOKEN)
    for kind in CONTENT:
        assert (await get(host + urls[kind]))[0] == 200, kind
    for kind in OWNER:
        assert (await get(host + urls[kind]))[0] == 401, kind
        assert (await get(host + urls[kind], API_TOKEN))[0] == 200, kind


async def test_hosting_token_guards_content_only(aiohttp_server, config, db, urls):
    host = await serve(aiohttp_server, config, db, api_token=API_TOKEN, token=HOSTING_TOKEN)
    for kind in CONTENT:
        status, body = await get(host + urls[kind])
        assert status == 401 and b"http_hosting_service.token" in body, kind
        assert (await get(host + urls[kind], "wrong"))[0] == 401, kind
        assert (await get(host + urls[kind], HOSTING_TOKEN))[0] == 200, kind
        assert (await get(host + urls[kind], API_TOKEN))[0] == 200, kind  # the owner's key opens all
    for kind in OWNER:  # a provider holding the hosting token gets no more than the content
        assert (await get(host + urls[kind], HOSTING_TOKEN))[0] == 401, kind


async def test_public_bundles(aiohttp_server, config, db, urls):
    host = await serve(aiohttp_server, config, db, api_token=API_TOKEN, token=HOSTING_TOKEN, public_bundles=True)
    for kind in OWNER:
        assert (await get(host + urls[kind]))[0] == 200, kind
    assert (await get(host + urls["piece"]))[0] == 401


async def test_metrics_follow_the_api_token_not_the_hosting_token(aiohttp_server, config, db, urls):
    for settings in ({"api_token": API_TOKEN}, {"api_token": API_TOKEN, "token": HOSTING_TOKEN, "public_bundles": True}):
        host = await serve(aiohttp_server, config, db, **settings)
        assert (await get(host + "/metrics"))[0] == 401, settings
        assert (await get(host + "/metrics", HOSTING_TOKEN))[0] == 401, settings
        assert (await get(host + "/metrics", API_TOKEN))[0] == 200, settings


async def test_no_token_at_all_is_public(aiohttp_server, config, db, urls):
    host = await serve(aiohttp_server, config, db)
    for kind in (*CONTENT, *OWNER):
        assert (await get(host + urls[kind]))[0] == 200, kind


async def test_removed_preparation_is_no_longer_served(hosting, db, indexed, urls):
    prepared, _ = indexed
    for kind in (*CONTENT, *OWNER):
        assert (await get(hosting + urls[kind]))[0] == 200, kind
    await prep_handlers.remove(db, prepared.id)
    # The CAR files are still on disk: only the database says they are no longer ours to serve.
    for kind in (*CONTENT, *OWNER):
        assert (await get(hosting + urls[kind]))[0] == 404, kind


async def test_a_removal_cut_short_serves_nothing_either(hosting, db, indexed, urls):
    prepared, _ = indexed
    # The request document goes first; a crash right after leaves its chunks and blocks behind.
    await db[models.SCANNING].delete_one({"_id": prepared.id})
    for kind in (*CONTENT, *OWNER):
        assert (await get(hosting + urls[kind]))[0] == 404, kind


async def test_a_car_in_car_dir_that_no_preparation_owns_is_not_served(hosting, db, indexed, urls, config):
    prepared, _ = indexed
    gen = await db[models.GENERATION].find_one({"_id": prepared.chunks[0]["_id"]})
    await db[models.GENERATION].update_one({"_id": gen["_id"]}, {"$set": {"status": models.Status.ACTIVE.value}})
    assert (await get(hosting + urls["car"]))[0] == 404  # not (or no longer) a completed chunk
    await db[models.GENERATION].update_one({"_id": gen["_id"]}, {"$set": {"status": models.Status.COMPLETED.value}})
    assert (await get(hosting + urls["car"]))[0] == 200
