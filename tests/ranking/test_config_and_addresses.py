"""[ranking_service] keys (lists of strings included), and provider multiaddrs to HTTP endpoints."""
from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request

import pytest

from cli.run import select_modules
from shared import multiaddr
from shared.config import ConfigError, parse
from tests.conftest import free_port
from tests.processes import singularity, start, stop, wait_http, write_config


def test_ranking_section_and_lists():
    cfg = parse({"ranking_service": {"enabled": True, "providers": ["f01000", "t01001"], "sources": ["deals"],
                                     "refresh_interval": 60, "probe_bytes": "64KiB"},
                 "connection": {"ipni_api": "http://127.0.0.1:9", "ranking_service": "http://127.0.0.1:5"}})
    assert cfg.ranking_service.providers == ["f01000", "t01001"] and cfg.ranking_service.sources == ["deals"]
    assert cfg.ranking_service.port == 3004 and cfg.ranking_service.bind == "127.0.0.1"
    assert cfg.ranking_service.probe_bytes == 65536 and cfg.connection.ipni_api == "http://127.0.0.1:9"
    assert parse({}).ranking_service.sources == ["lotus", "deals", "retrieval", "filrep", "datacapstats", "ipni"]
    assert select_modules(cfg, []) == ["preparation", "worker", "dealmaking", "hosting", "ranking"]


@pytest.mark.parametrize("section,message", [
    ({"providers": "f01000"}, "ranking_service.providers: expected a list of str"),
    ({"providers": ["f01000", 5]}, "ranking_service.providers[1]: expected str"),
    ({"providers": ["../x"]}, "ranking_service.providers: not a provider id"),
    ({"sources": ["spark"]}, "ranking_service.sources: unknown source 'spark'"),
    ({"refresh_interval": 0}, "ranking_service.refresh_interval: must be positive"),
    ({"retrieval_probes": -1}, "ranking_service.retrieval_probes: must not be negative"),
    ({"port": 70000}, "ranking_service.port: not a TCP port"),
    ({"spark_api": "x"}, "unknown key ranking_service.spark_api"),
])
def test_bad_ranking_settings_name_the_key(section, message):
    with pytest.raises(ConfigError) as caught:
        parse({"ranking_service": section})
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("text,endpoint", [
    ("/dns/sp.example.com/tcp/443/https", "https://sp.example.com"),
    ("/dns4/sp.example.com/tcp/8443/tls/http", "https://sp.example.com:8443"),
    ("/ip4/1.2.3.4/tcp/8080/http", "http://1.2.3.4:8080"),
    ("/ip6/::1/tcp/80/http", "http://[::1]"),
    ("/ip4/1.2.3.4/tcp/24001", None),
    ("/ip4/1.2.3.4/udp/24001/quic-v1", None),
])
def test_http_endpoint_from_multiaddrs(text, endpoint):
    encoded = base64.b64encode(multiaddr.encode(text)).decode()
    assert multiaddr.endpoint_of([encoded]) == endpoint
    assert multiaddr.endpoint_of(["!!not base64", base64.b64encode(b"\xff\xff\xff").decode(), encoded]) == endpoint
    assert multiaddr.endpoint_of(None) is None


def poll_json(url: str, budget: float = 30.0):
    """The answer once the service has loaded its table (503 until then)."""
    deadline = time.monotonic() + budget
    while True:
        try:
            return json.loads(urllib.request.urlopen(url, timeout=5).read())
        except urllib.error.HTTPError as exc:
            if exc.code != 503 or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


async def test_lookups_answer_503_until_the_table_is_loaded(ranking_config, db, session, serve_app):
    from services.ranking.ranking import Ranking
    from services.ranking.routes import RANKING, routes
    from shared.api import create_app
    ranking = Ranking(ranking_config, db, session)
    app = create_app(ranking_config, db, routes)
    app[RANKING] = ranking
    api = await serve_app(app)
    response = await api.post("/ranking/lookup", json={"criteria": "deals.active > 0"})
    assert response.status == 503 and "loading" in (await response.json())["error"]
    assert (await api.post("/ranking/lookup", json={"criteria": "deals.active >"})).status == 400
    await ranking.load()
    assert (await api.post("/ranking/lookup", json={"criteria": "deals.active > 0"})).status == 200


def test_the_module_runs_from_the_cli(tmp_path, db_url):
    port = free_port()
    config = write_config(tmp_path, db_url, ranking_service={
        "enabled": True, "port": port, "sources": ["deals"], "providers": ["f01234"]},
        connection={"ranking_service": f"http://127.0.0.1:{port}"})
    process = start(config, "ranking", log=tmp_path / "ranking.log")
    try:
        wait_http(f"http://127.0.0.1:{port}/providers")
        listed = poll_json(f"http://127.0.0.1:{port}/providers")
        assert listed == {"providers": [{"id": "f01234"}], "total": 1, "offset": 0, "limit": 100}
        shown = json.loads(singularity(config, "provider", "refresh", "--json").stdout)
        assert shown["sources"]["deals"]["ok"]
        table = singularity(config, "provider", "lookup", "--criteria", "provider == f01234").stdout
        assert "f01234" in table
    finally:
        stop(process)
