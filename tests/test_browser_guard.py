"""What a web page the user happens to open could make the browser send to the services on
127.0.0.1 (issue 8 item 1): cross-site posts (CSRF) and requests through a DNS name rebound to
127.0.0.1. Sent byte for byte as a browser sends them; every refusal must leave the database
untouched."""
from __future__ import annotations

import asyncio
import json
import tomllib

import pytest

from services.dealmaking.routes import routes as deal_routes
from services.hosting.service import create as hosting_app
from services.preparation.routes import routes as prep_routes
from shared import models
from shared.api import create_app
from tests import rawhttp
from tests.processes import start, stop, wait_http, write_config


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "a.txt").write_text("hello\n")
    return root


def base(client) -> str:
    return str(client.make_url("")).rstrip("/")


@pytest.fixture
async def prep_api(db, config, serve_app):
    return base(await serve_app(create_app(config, db, prep_routes)))


def body(dataset, name="etc") -> bytes:
    return json.dumps({"name": name, "path": str(dataset), "dealSize": "32MiB"}).encode()


async def nothing_written(db) -> bool:
    return await db[models.SCANNING].find_one({}) is None


async def test_csrf_text_plain_from_evil_origin_is_refused_and_writes_nothing(prep_api, db, dataset):
    # The issue's reproducer, as a page on http://evil.example posts it with fetch(..., {mode: "no-cors"}).
    answer = await rawhttp.request(prep_api, "POST", "/preparation", {
        "Origin": "http://evil.example", "Content-Type": "text/plain;charset=UTF-8"}, body(dataset))
    assert answer.status == 403 and answer.json()["error"] == "origin not allowed"
    assert "allowed_origins" in json.dumps(answer.json()["detail"])
    assert await nothing_written(db)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/jsonp"])
async def test_state_changes_need_a_json_body(prep_api, db, dataset, content_type):
    # No Origin at all: a same-site form, or a browser that omits it; the content type alone refuses.
    headers = {} if content_type is None else {"Content-Type": content_type}
    answer = await rawhttp.request(prep_api, "POST", "/preparation", headers, body(dataset))
    assert answer.status == 415 and "application/json" in answer.json()["error"]
    assert await nothing_written(db)


async def test_foreign_origin_is_refused_even_with_a_json_body(prep_api, db, dataset):
    for origin in ("http://evil.example", "null", "http://127.0.0.1:1", "https://" + prep_api.split("://")[1]):
        answer = await rawhttp.request(prep_api, "POST", "/preparation",
                                       {"Origin": origin, "Content-Type": "application/json"}, body(dataset))
        assert answer.status == 403, origin
    # Reads too: a foreign page must not read the list of datasets either.
    answer = await rawhttp.request(prep_api, "GET", "/preparations", {"Origin": "http://evil.example"})
    assert answer.status == 403
    assert await nothing_written(db)


async def test_own_origin_and_no_origin_are_served(prep_api, db, dataset):
    own = await rawhttp.request(prep_api, "POST", "/preparation",
                                {"Origin": prep_api, "Content-Type": "application/json; charset=utf-8"},
                                body(dataset, "one"))
    assert own.status == 201, own.body
    plain = await rawhttp.request(prep_api, "POST", "/preparation", {"Content-Type": "application/json"},
                                  body(dataset, "two"))
    assert plain.status == 201, plain.body
    assert await db[models.SCANNING].count_documents({}) == 2


async def test_allowed_origins_is_the_one_place_to_admit_a_page(db, config, serve_app, dataset):
    config.connection.allowed_origins = ["http://localhost:3000"]
    api = base(await serve_app(create_app(config, db, prep_routes)))
    answer = await rawhttp.request(api, "POST", "/preparation",
                                   {"Origin": "http://localhost:3000", "Content-Type": "application/json"},
                                   body(dataset))
    assert answer.status == 201, answer.body
    assert answer.headers["access-control-allow-origin"] == "http://localhost:3000"
    # The browser asks first before it sends a JSON post across origins (CORS preflight).
    preflight = await rawhttp.request(api, "OPTIONS", "/preparation", {
        "Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert preflight.status == 204
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "content-type" in preflight.headers["access-control-allow-headers"].lower()
    refused = await rawhttp.request(api, "OPTIONS", "/preparation", {
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert refused.status == 403 and "access-control-allow-origin" not in refused.headers
    other = await rawhttp.request(api, "POST", "/preparation",
                                  {"Origin": "http://localhost:3001", "Content-Type": "application/json"},
                                  body(dataset, "other"))
    assert other.status == 403


async def test_dns_rebinding_host_is_refused(prep_api, db, dataset):
    # evil.example resolves to 127.0.0.1: the page is then same-origin with the service, so its
    # Origin matches its Host; only the Host name gives it away.
    for method, path, payload in (("POST", "/preparation", body(dataset)), ("GET", "/preparations", b"")):
        answer = await rawhttp.request(prep_api, method, path, {
            "Host": "evil.example:3001", "Origin": "http://evil.example:3001",
            "Content-Type": "application/json"}, payload)
        assert answer.status == 403 and answer.json()["error"] == "host not allowed"
        assert "allowed_hosts" in json.dumps(answer.json()["detail"])
    answer = await rawhttp.request(prep_api, "GET", "/preparations", {"Host": "evil.example:3001"})
    assert answer.status == 403
    assert await nothing_written(db)


@pytest.mark.parametrize("host,allowed", [
    ("127.0.0.1:3001", True), ("localhost:3001", True), ("LOCALHOST", True), ("localhost.", True),
    ("[::1]:3001", True), ("[::1]", True), ("10.1.2.3", True), ("prep.internal:3001", True),
    ("evil.example", False), ("127.0.0.1.evil.example", False), ("localhost.evil.example:3001", False),
    ("[::1", False), ("::1", False), ("localhost:x", False), ("[evil.example]:3001", False), ("", False),
])
async def test_host_names(db, config, serve_app, host, allowed):
    config.connection.allowed_hosts = ["prep.internal"]
    api = base(await serve_app(create_app(config, db, prep_routes)))
    answer = await rawhttp.request(api, "GET", "/preparations", {"Host": host})
    assert (answer.status == 200) is allowed, (host, answer.status, answer.body)


async def test_every_service_has_the_guard(db, config, serve_app):
    apps = {"hosting": hosting_app(config, db), "dealmaking": create_app(config, db, deal_routes)}
    for name, app in apps.items():
        api = base(await serve_app(app))
        rebound = await rawhttp.request(api, "GET", "/deals" if name == "dealmaking" else "/index/x",
                                        {"Host": "evil.example:8080"})
        assert rebound.status == 403, name
        foreign = await rawhttp.request(api, "GET", "/deals" if name == "dealmaking" else "/index/x",
                                        {"Origin": "http://evil.example"})
        assert foreign.status == 403, name
    deal_api = base(await serve_app(create_app(config, db, deal_routes)))
    posted = await rawhttp.request(deal_api, "POST", "/deal", {"Content-Type": "text/plain"}, b"{}")
    assert posted.status == 415
    assert await db[models.DEAL_STATE].find_one({}) is None


async def test_the_issue_reproducer_against_a_running_suite(tmp_path, db_url, db):
    """Issue 8's sequence against `singularity run`: every step is refused and nothing is exported."""
    config = write_config(tmp_path, db_url)
    settings = tomllib.loads(config.read_text())
    prep = f"http://127.0.0.1:{settings['deal_preparation_service']['port']}"
    hosting = f"http://127.0.0.1:{settings['http_hosting_service']['port']}"
    process = start(config, "preparation", "hosting", log=tmp_path / "suite.log")
    try:
        await asyncio.to_thread(wait_http, f"{prep}/preparations")
        await asyncio.to_thread(wait_http, f"{hosting}/index/x")
        etc = json.dumps({"name": "etc", "path": "/etc", "dealSize": "32MiB"}).encode()
        plain = await rawhttp.request(prep, "POST", "/preparation", {"Content-Type": "text/plain"}, etc)
        assert plain.status == 415
        csrf = await rawhttp.request(prep, "POST", "/preparation", {
            "Content-Type": "text/plain", "Origin": "http://evil.example"}, etc)
        assert csrf.status == 403
        rebound = await rawhttp.request(prep, "POST", "/preparation", {
            "Content-Type": "application/json", "Host": "evil.example:3001",
            "Origin": "http://evil.example:3001"}, etc)
        assert rebound.status == 403
        direct = await rawhttp.request(prep, "POST", "/preparation", {"Content-Type": "application/json"}, etc)
        assert direct.status == 400 and "dataset_roots" in direct.json()["error"]
        assert (await rawhttp.request(hosting, "GET", "/bundle/etc/shadow")).status == 404
        assert await db[models.SCANNING].find_one({}) is None
    finally:
        stop(process)


async def test_names_the_configuration_uses_are_ours(db, config, serve_app):
    # A provider downloads <http_url_prefix>/<dataCid>.car with that URL's Host: the owner chose the
    # name, so it needs no allowed_hosts entry; a name the configuration never mentions still does.
    config.replication_service.http_url_prefix = "http://cars.example.org:8080/data"
    config.connection.http_hosting_service = "http://hosting.lan:8080"
    api = base(await serve_app(hosting_app(config, db)))
    for host, allowed in (("cars.example.org:8080", True), ("hosting.lan", True), ("evil.example", False),
                          ("example.org", False)):
        answer = await rawhttp.request(api, "GET", "/index/x", {"Host": host})
        assert (answer.status != 403) is allowed, (host, answer.status, answer.body)
