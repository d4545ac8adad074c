"""`singularity retrieve` sends a token to the configured hosting service only: storage providers
given with --from never see it (issue 8 items 2 and 9)."""
from __future__ import annotations

import pytest
from aiohttp import web

from services.hosting.service import create
from tests.hosting.test_cli_retrieve import singularity
from tests.hosting.test_retrieve import FILES, tree_of

API_TOKEN = "owner-secret"
HOSTING_TOKEN = "provider-secret"


@pytest.fixture
async def provider(aiohttp_server):
    """A storage provider's HTTP endpoint that has nothing, and remembers who asked how."""
    seen: list[tuple[str, str | None]] = []

    async def anything(request: web.Request) -> web.Response:
        seen.append((request.path, request.headers.get("Authorization")))
        return web.json_response({"error": "not here"}, status=404)

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", anything)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/"), seen


@pytest.mark.parametrize("api_token,token", [("", HOSTING_TOKEN), (API_TOKEN, HOSTING_TOKEN), (API_TOKEN, "")])
async def test_token_reaches_the_hosting_service_and_no_provider(
        aiohttp_server, config, db, indexed, provider, tmp_path, api_token, token):
    config.connection.api_token = api_token
    config.http_hosting_service.token = token
    server = await aiohttp_server(create(config, db))
    hosting = str(server.make_url("")).rstrip("/")
    provider_url, seen = provider
    config_file = tmp_path / "cli.toml"
    config_file.write_text(f'[connection]\nhttp_hosting_service = "{hosting}/"\napi_token = "{api_token}"\n'
                           f'[http_hosting_service]\ntoken = "{token}"\n[database]\nenabled = false\n')
    # The provider is asked first for everything, then the hosting service, which needs the token.
    code, _, err = await singularity(config_file, "retrieve", "demo/a", "--output", str(tmp_path / "out"),
                                     "--from", provider_url, "--from", hosting)
    assert code == 0, err.decode()
    assert tree_of(tmp_path / "out" / "a") == {k[2:]: v for k, v in FILES.items() if k.startswith("a/")}
    assert seen, "the provider was never asked"
    assert {auth for _, auth in seen} == {None}


async def test_without_the_token_the_hosting_service_refuses(aiohttp_server, config, db, indexed, tmp_path):
    config.http_hosting_service.token = HOSTING_TOKEN
    server = await aiohttp_server(create(config, db))
    hosting = str(server.make_url("")).rstrip("/")
    config_file = tmp_path / "cli.toml"
    config_file.write_text(f'[connection]\nhttp_hosting_service = "{hosting}"\n[database]\nenabled = false\n')
    code, _, err = await singularity(config_file, "retrieve", "demo/a", "--output", str(tmp_path / "out"))
    assert code == 1 and b"HTTP 401" in err
