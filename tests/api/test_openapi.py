"""The OpenAPI documents the services serve: valid 3.1, complete, built from declarations that
every route has, and true of real answers; the offline /docs page."""
from __future__ import annotations

import json
import re
import urllib.request

import pytest
import schemathesis
from aiohttp import web
from openapi_spec_validator import validate

from services.hosting import access
from shared import config as config_module
from shared.api import create_app
from shared.operations import undeclared
from tests.api.conftest import AUTH, SERVICES, build
from tests.deals.conftest import WALLET

# Every route the README names, per service.
README_ROUTES = {
    "preparation": {("post", "/preparation"), ("post", "/preparation/{id}"), ("get", "/preparations"),
                    ("get", "/preparation/{id}"), ("get", "/generation/{id}"), ("get", "/preparation/{id}/files"),
                    ("post", "/preparation/{id}/materialize"), ("post", "/preparation/{id}/prune-cars"),
                    ("get", "/preparation/{id}/conversions"), ("get", "/preparations/history")},
    "dealmaking": {("post", "/deal"), ("get", "/deals"), ("get", "/deal/{id}"), ("get", "/deals/history"),
                   ("get", "/deals/transitions"), ("get", "/deals/providers")},
    "hosting": {("get", "/{cid}.car"), ("head", "/{cid}.car"), ("get", "/piece/{cid}"), ("head", "/piece/{cid}"),
                ("get", "/ipfs/{cid}"), ("head", "/ipfs/{cid}"), ("get", "/ipfs/{cid}/{path}"),
                ("head", "/ipfs/{cid}/{path}"), ("get", "/index/{key}"), ("get", "/bundle/{key}"), ("head", "/bundle/{key}"),
                ("get", "/bundle/{key}/{path}"), ("head", "/bundle/{key}/{path}")},
    "ranking": {("post", "/ranking/lookup"), ("get", "/providers"), ("get", "/provider/{id}"),
                ("post", "/ranking/refresh"), ("get", "/ranking/report")},
    "replication": {("post", "/replication"), ("post", "/replication/{id}"), ("get", "/replications"),
                    ("get", "/replication/{id}"), ("get", "/replication/{id}/csv")},
}
README_ROUTES["preparation"].add(("get", "/status"))
DOCUMENTATION = {("get", "/openapi.json"), ("get", "/docs"), ("get", "/docs/{asset}")}
EVERY_SERVICE = DOCUMENTATION | {("get", "/metrics")}


def fetch(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_serves_a_valid_openapi_31_document_listing_its_routes(live, service):
    status, _, body = fetch(live.urls[service] + "/openapi.json")  # no token: the document is public
    assert status == 200
    document = json.loads(body)
    validate(document)  # raises on any defect; picks the 3.1 validator from the "openapi" field
    assert document["openapi"] == "3.1.0"
    operations = {(method, path) for path, item in document["paths"].items() for method in item}
    assert operations == README_ROUTES[service] | EVERY_SERVICE
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "detail"] and set(error["properties"]) == {"error", "detail"}
    scheme = document["components"]["securitySchemes"]["api_token"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    assert document["security"] == [{"api_token": []}]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation["operationId"] and operation["summary"]
            # Without a hosting token, what providers download is public (services/hosting/access.py).
            content = service == "hosting" and not path.startswith(access.OWNER_PREFIXES + access.MANAGEMENT)
            public = path in ("/openapi.json", "/docs", "/docs/{asset}") or content
            assert (operation.get("security") == []) == public, (method, path)
            assert ("401" in operation["responses"]) != public, (method, path)
            assert "403" in operation["responses"] and "500" not in operation["responses"]
            assert ("415" in operation["responses"]) == (method == "post"), (method, path)


@pytest.mark.parametrize("service", SERVICES)
def test_without_a_token_the_document_asks_for_none(service):
    from shared import openapi

    document = openapi.document(build(service, config_module.parse({})))
    validate(document)
    assert "security" not in document
    for item in document["paths"].values():
        assert all("401" not in op["responses"] and "security" not in op for op in item.values())


def test_the_hosting_token_is_asked_for_content_and_the_api_token_for_bundles():
    from shared import openapi

    config = config_module.parse({"connection": {"api_token": "a"}, "http_hosting_service": {"token": "h"}})
    document = openapi.document(build("hosting", config))
    validate(document)
    assert "security" not in document and {"api_token", "hosting_token"} <= set(
        document["components"]["securitySchemes"])
    assert document["paths"]["/piece/{cid}"]["get"]["security"] == [{"hosting_token": []}, {"api_token": []}]
    assert document["paths"]["/bundle/{key}"]["get"]["security"] == [{"api_token": []}]
    assert document["paths"]["/docs"]["get"]["security"] == []


@pytest.mark.parametrize("service", SERVICES)
def test_every_route_of_every_service_is_declared(service):
    # create_app adds the routes of shared code (the documentation's, /metrics) to the service's own.
    assert undeclared(build(service, config_module.parse({}))) == []


def test_an_undeclared_route_is_found():
    routes = web.RouteTableDef()

    @routes.get("/forgotten/{id}")
    async def forgotten(request):
        return web.json_response({})

    app = create_app(config_module.parse({}), None, routes)
    assert sorted(undeclared(app)) == ["GET /forgotten/{id}", "HEAD /forgotten/{id}"]


def test_documentation_is_public_and_everything_else_needs_the_token(live):
    assert fetch(live.urls["preparation"] + "/preparations")[0] == 401
    assert fetch(live.urls["preparation"] + "/preparations", AUTH)[0] == 200
    assert fetch(live.urls["hosting"] + "/docs")[0] == 200


@pytest.mark.parametrize("service", SERVICES)
def test_the_docs_page_loads_only_files_of_its_own_service(live, service):
    status, headers, page = fetch(live.urls[service] + "/docs")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    html = page.decode()
    assert "//" not in re.sub(r"<!doctype html>", "", html, flags=re.I)  # no absolute or CDN address
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sorted(assets) == ["docs/init.js", "docs/swagger-ui-bundle.js", "docs/swagger-ui.css"]
    for asset in assets:
        status, headers, body = fetch(f"{live.urls[service]}/{asset}")
        assert status == 200 and len(body) > 0, asset
        assert headers["Content-Type"].split(";")[0] in ("text/css", "text/javascript"), asset
    assert b'url: "openapi.json"' in fetch(live.urls[service] + "/docs/init.js")[2]
    assert fetch(live.urls[service] + "/docs/..%2F..%2Fetc%2Fpasswd")[0] in (400, 404)


def test_a_misspelt_query_parameter_is_refused(live):
    status, _, body = fetch(live.urls["dealmaking"] + "/deals?ofset=1", AUTH)
    assert status == 400
    answer = json.loads(body)
    assert answer["error"] == "unknown query parameter: ofset" and "offset" in answer["detail"]["allowed"]


def test_a_wrong_method_is_a_405_that_says_which_are_allowed(live):
    request = urllib.request.Request(live.urls["dealmaking"] + "/deals", method="DELETE", headers=AUTH)
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 405 and "GET" in caught.value.headers["Allow"]
    assert json.loads(caught.value.read())["error"]


def _seeded_calls(seeded: dict) -> list[tuple[str, str, str, dict]]:
    p, g, d, c = seeded["preparation"], seeded["generation"], seeded["dataCid"], seeded["pieceCid"]
    r = seeded["replication"]
    return [
        ("preparation", "GET", "/preparations", {}),
        ("preparation", "GET", "/preparation/{id}", {"path_parameters": {"id": p}}),
        ("preparation", "GET", "/preparation/{id}", {"path_parameters": {"id": p}, "query": {"limit": 1}}),
        ("preparation", "GET", "/generation/{id}", {"path_parameters": {"id": g}}),
        ("preparation", "GET", "/preparation/{id}/files", {"path_parameters": {"id": p}, "query": {"path": "a"}}),
        ("preparation", "POST", "/preparation/{id}", {"path_parameters": {"id": seeded["created"]},
                                                      "body": {"state": "paused"}}),
        ("preparation", "POST", "/preparation/{id}/materialize", {"path_parameters": {"id": p}, "body": {}}),
        ("preparation", "POST", "/preparation/{id}/prune-cars", {"path_parameters": {"id": p},
                                                                 "body": {"minActive": 2}}),
        ("preparation", "GET", "/preparation/{id}/conversions", {"path_parameters": {"id": p}}),
        ("dealmaking", "GET", "/deals", {}),
        ("dealmaking", "GET", "/deals/history", {"query": {"bucket": 3600}}),
        ("dealmaking", "GET", "/deals/transitions", {"query": {"deal": seeded["deal"]}}),
        ("preparation", "GET", "/preparations/history", {"query": {"preparation": p, "bucket": 3600}}),
        ("dealmaking", "GET", "/deal/{id}", {"path_parameters": {"id": seeded["deal"]}}),
        ("hosting", "GET", "/{cid}.car", {"path_parameters": {"cid": d}}),
        ("hosting", "GET", "/{cid}.car", {"path_parameters": {"cid": d}, "headers": {"Range": "bytes=0-9"}}),
        ("hosting", "HEAD", "/{cid}.car", {"path_parameters": {"cid": d}}),
        ("hosting", "GET", "/piece/{cid}", {"path_parameters": {"cid": c}}),
        ("hosting", "GET", "/piece/{cid}", {"path_parameters": {"cid": c}, "headers": {"If-None-Match": f'"{c}"'}}),
        ("hosting", "GET", "/ipfs/{cid}", {"path_parameters": {"cid": d}, "query": {"format": "raw"}}),
        ("hosting", "GET", "/index/{key}", {"path_parameters": {"key": seeded["name"]}}),
        ("hosting", "GET", "/bundle/{key}", {"path_parameters": {"key": seeded["name"]}}),
        ("hosting", "GET", "/bundle/{key}/{path}", {"path_parameters": {"key": p, "path": "a"},
                                                    "query": {"filename": "a.tar"}}),
        ("preparation", "GET", "/status", {}),
        *[(service, "GET", "/metrics", {}) for service in SERVICES],
        ("ranking", "POST", "/ranking/lookup", {"body": {
            "criteria": "filrep.uptime > 0", "sort": "-filrep.score", "fields": ["lotus.peer_id"], "limit": 2}}),
        ("ranking", "POST", "/ranking/lookup", {"body": {"criteria": [["provider", "in", "f01000", "f01001"]]}}),
        ("ranking", "GET", "/providers", {"query": {"limit": 2}}),
        ("ranking", "GET", "/provider/{id}", {"path_parameters": {"id": "f01000"}}),
        ("ranking", "GET", "/provider/{id}", {"path_parameters": {"id": "f09999"}}),  # tracked, no metric
        ("ranking", "GET", "/ranking/report", {}),
        ("ranking", "POST", "/ranking/refresh", {"body": {}}),
        ("replication", "GET", "/replications", {"query": {"limit": 1}}),
        ("replication", "GET", "/replication/{id}", {"path_parameters": {"id": r}}),
        ("replication", "GET", "/replication/{id}/csv", {"path_parameters": {"id": r}, "query": {"provider": ""}}),
        ("replication", "POST", "/replication/{id}", {"path_parameters": {"id": r}, "body": {"maxReplicas": 3}}),
        ("replication", "POST", "/replication/{id}", {"path_parameters": {"id": r}, "body": {"state": "paused"}}),
        ("replication", "POST", "/replication", {"body": {
            "datasetId": seeded["name"], "minReplicas": 1, "criteria": [["deals.acceptance_rate", "gte", 0]],
            "client": WALLET, "keyPath": "wallet.key", "price": "0", "verified": False}}),
    ]


def test_answers_about_real_data_match_their_declarations(live):
    """The fuzzer rarely guesses an existing id; these calls reach every success answer."""
    statuses = []
    for service, method, path, parts in _seeded_calls(live.seeded):
        response = fetch_documented(live, service, method, path, parts)
        statuses.append(response.status_code)
        assert response.status_code < 300 or response.status_code == 304, (method, path, response.text[:300])
        if path == "/ranking/lookup":
            assert response.json() and all(row["id"] in ("f01000", "f01001", "f01003") for row in response.json())
    assert {200, 206, 304} <= set(statuses)


def fetch_documented(live, service, method, path, parts):
    status, _, body = fetch(live.urls[service] + "/openapi.json")
    schema = schemathesis.openapi.from_dict(json.loads(body))
    case = schema[path][method].Case(**parts)
    response = case.call(base_url=live.urls[service], headers=AUTH)
    case.validate_response(response)  # status, content type, headers and body schema
    return response
