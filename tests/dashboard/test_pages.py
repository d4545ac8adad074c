"""The dashboard's pages and guards without a browser (these run wherever the suite's tests run):
the services it reads are the real apps on real sockets over the test database; those it cannot
reach show a notice. What a page elsewhere could make a browser send (a foreign Origin, a Host
rebound by DNS, a form post, a post without the page's CSRF token) is refused and changes nothing."""
from __future__ import annotations

import re

import pytest

from services.dashboard import auth
from services.dashboard.routes import routes as dashboard_routes
from services.dashboard.service import make_app
from services.dealmaking.routes import routes as deal_routes
from services.preparation.routes import routes as prep_routes
from shared import models
from shared.api import create_app
from tests.conftest import free_port

TOKEN = "pages-token"


def base(client) -> str:
    return str(client.make_url("")).rstrip("/")


async def add_preparation(db, name: str, chunks: int = 0) -> str:
    scan = models.scanning_request(name, "/data/" + name, 2**20, 2**19, 2**19 + 1)
    await db[models.SCANNING].insert_one(scan)
    if chunks:
        await db[models.GENERATION].insert_many([models.generation_request(scan, i, 1, 1000) for i in range(chunks)])
    return scan["_id"]


@pytest.fixture
async def dashboard(db, config, serve_app):
    """The dashboard over the real preparation and deal making apps; replication and ranking are
    not running (their URLs answer nothing)."""
    prep = await serve_app(create_app(config, db, prep_routes))
    deals = await serve_app(create_app(config, db, deal_routes))
    config.connection.deal_preparation_service = base(prep)
    config.connection.deal_making_service = base(deals)
    config.connection.replication_service = f"http://127.0.0.1:{free_port()}"
    config.connection.ranking_service = f"http://127.0.0.1:{free_port()}"
    return await serve_app(make_app(config))


async def csrf_of(client, path: str = "/preparations") -> str:
    page = await (await client.get(path)).text()
    return re.search(r'name="csrf-token" content="([0-9a-f]+)"', page).group(1)


async def test_every_page_renders_and_a_missing_service_is_a_notice(dashboard, db):
    prep = await add_preparation(db, "first", chunks=3)
    for path in ("/preparations", f"/preparation/{prep}", f"/preparation/{prep}?path=", "/deals", "/workers",
                 "/charts", "/replications", "/replication/abc", "/providers", "/provider/f01000"):
        response = await dashboard.get(path)
        assert response.status == 200, path
        assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
        text = await response.text()
        assert "<main" in text and "Traceback" not in text, path
    text = await (await dashboard.get("/providers")).text()
    assert 'data-notice="ranking"' in text and "ranking service at http://127.0.0.1:" in text
    assert "[ranking_service] enabled = true" in text  # not enabled in this config: the page says how
    text = await (await dashboard.get("/live/replications")).text()
    assert 'data-notice="replication"' in text and "<html" not in text  # the live part only
    text = await (await dashboard.get(f"/preparation/{prep}")).text()
    assert text.count("<tr data-chunk=") == 3


async def test_api_data_is_escaped(dashboard, db):
    name = "<script>alert(1)<\\script><b onmouseover=x>"
    await add_preparation(db, name)
    text = await (await dashboard.get("/preparations")).text()
    assert "<script>alert" not in text and "<b onmouseover" not in text
    assert "&lt;script&gt;alert(1)&lt;\\script&gt;&lt;b onmouseover=x&gt;" in text


async def test_actions_need_the_page_s_token_and_origin(dashboard, db):
    prep = await add_preparation(db, "target")
    origin = base(dashboard)
    action = f"/action/preparation/{prep}"
    token = await csrf_of(dashboard)
    refused = [
        ({"Origin": origin}, 403),  # no CSRF token
        ({"Origin": origin, auth.CSRF_HEADER: "0" * 64}, 403),  # a guessed one
        ({"Origin": "http://evil.example", auth.CSRF_HEADER: token}, 403),  # another site's page
        ({"Origin": origin, auth.CSRF_HEADER: token, "Host": "evil.example"}, 403),  # DNS rebinding
    ]
    for headers, status in refused:
        response = await dashboard.post(action, json={"state": "paused"}, headers=headers)
        assert response.status == status, (headers, await response.text())
    form = await dashboard.post(action, data="state=paused", headers={"Origin": origin, auth.CSRF_HEADER: token,
                                                                       "Content-Type": "application/x-www-form-urlencoded"})
    assert form.status == 415
    assert (await db[models.SCANNING].find_one({"_id": prep})).get("state", "active") == "active"
    bad = await dashboard.post(action, json={"state": "deleted"}, headers={"Origin": origin, auth.CSRF_HEADER: token})
    assert bad.status == 400
    done = await dashboard.post(action, json={"state": "paused"}, headers={"Origin": origin, auth.CSRF_HEADER: token})
    assert done.status == 200 and (await done.json())["state"] == "paused"
    assert (await db[models.SCANNING].find_one({"_id": prep}))["state"] == "paused"
    missing = await dashboard.post("/action/preparation/000000000000000000000000", json={"state": "active"},
                                   headers={"Origin": origin, auth.CSRF_HEADER: token})
    assert missing.status == 404 and "no preparation" in (await missing.json())["error"], await missing.text()


async def test_bad_parameters_are_4xx_not_500(dashboard):
    for path, status in (("/preparations?offset=abc", 400), ("/preparations?limit=-1", 400),
                         ("/preparations?offset=" + "9" * 40, 400), ("/deals?provider=<x>", 400),
                         ("/preparation/..%2f..", 404), ("/preparation/a%20b", 404), ("/static/../config.toml", 404),
                         ("/static/nosuch.js", 404)):
        response = await dashboard.get(path, allow_redirects=False)
        assert response.status == status, (path, response.status)


@pytest.fixture
async def locked(db, config, serve_app):
    config.connection.api_token = TOKEN
    prep = await serve_app(create_app(config, db, prep_routes))
    config.connection.deal_preparation_service = base(prep)
    return await serve_app(make_app(config))


async def test_with_an_api_token_nothing_answers_before_the_login(locked, db):
    prep = await add_preparation(db, "secret-name")
    app_paths = {route.resource.canonical for route in locked.server.app.router.routes()}
    assert app_paths == {r.path for r in dashboard_routes}  # every route is checked below
    for route in dashboard_routes:
        path = route.path.replace("{id}", prep).replace("{kind}", "preparation").replace("{name}", "dashboard.css")
        if route.method == "GET":
            response = await locked.get(path, allow_redirects=False)
            if path.startswith(("/static/", "/login")):
                assert response.status == 200, path  # the login page and its files: no data
                continue
            assert response.status in (303, 401), (path, response.status)
            assert "secret-name" not in await response.text()
            if response.status == 303:
                assert response.headers["Location"].startswith("/login?next=")
        else:
            response = await locked.post(path, json={"state": "paused"}, headers={"Origin": base(locked)})
            if path != "/login":
                assert response.status == 401, (path, response.status)
    assert (await db[models.SCANNING].find_one({"_id": prep})).get("state", "active") == "active"

    token = await csrf_of(locked, "/login")
    wrong = await locked.post("/login", json={"token": "nope"}, headers={"Origin": base(locked), auth.CSRF_HEADER: token})
    assert wrong.status == 401 and auth.COOKIE not in wrong.cookies
    good = await locked.post("/login", json={"token": TOKEN, "next": "//evil.example/x"},
                             headers={"Origin": base(locked), auth.CSRF_HEADER: token})
    assert good.status == 200 and (await good.json())["next"] == "/"  # never off-site
    cookie = good.cookies[auth.COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and TOKEN not in cookie.value
    page = await locked.get("/preparations")
    assert page.status == 200 and "secret-name" in await page.text()


def test_safe_next():
    assert auth.safe_next("/deals?provider=f01") == "/deals?provider=f01"
    for target in ("//evil.example", "https://evil.example", "/\\evil.example", "", None, "deals"):
        assert auth.safe_next(target) == "/"


async def test_the_services_accept_the_dashboard_s_origin_by_default(db, config, serve_app):
    config.connection.dashboard = "http://127.0.0.1:3000"
    prep = await serve_app(create_app(config, db, prep_routes))
    ours = await prep.get("/preparations", headers={"Origin": "http://127.0.0.1:3000"})
    assert ours.status == 200 and ours.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:3000"
    other = await prep.get("/preparations", headers={"Origin": "http://127.0.0.1:3001"})
    assert other.status == 403
    config.connection.dashboard = "http://dash.lan:8000"  # a name of ours: its Host is accepted too
    named = await serve_app(create_app(config, db, prep_routes))
    response = await named.get("/preparations", headers={"Host": "dash.lan:3001", "Origin": "http://dash.lan:8000"})
    assert response.status == 200


async def test_the_charts_draw_the_history_the_services_keep(dashboard, db):
    now = models.now()
    day = 86400
    # Two days ago a deal was proposed, yesterday it became active; another was rejected today.
    for deal, changes in (("d1", [(None, "sending", 2.1), ("sending", "proposed", 2.0), ("proposed", "active", 1.0)]),
                          ("d2", [(None, "sending", 0.1), ("sending", "rejected", 0.05)])):
        for before, after, days_ago in changes:
            await db[models.DEAL_TRANSITION].insert_one(models.deal_transition(
                {"_id": deal, "provider": "f01000", "pieceCid": "baga", "client": "f1x"},
                models.state_change(before, after, at=now - days_ago * day)))
    scan = models.scanning_request("charted", "/data/charted", 2**20, 2**19, 2**19 + 1)
    await db[models.SCANNING].insert_one(scan)
    chunks = [models.generation_request(scan, i, 1, 1000 * (i + 1)) for i in range(3)]
    for i, chunk in enumerate(chunks):
        chunk.update(status="completed", completedAt=now - (i % 2) * day)
    await db[models.GENERATION].insert_many(chunks)
    text = await (await dashboard.get("/charts?days=7")).text()
    assert "notice" not in text, text
    states = re.findall(r'<polyline class="series" stroke="[^"]+" points="([^"]+)"><title>(\w+)</title>', text)
    assert sorted(name for _, name in states) == ["active", "proposed", "rejected", "sending"]
    heights = [float(h) for h in re.findall(r'<rect class="column" x="[^"]+" y="[^"]+" width="[^"]+" height="([^"]+)"', text)]
    assert len(heights) == 7 and sum(1 for h in heights if h > 0) == 2  # today and yesterday
    assert "5.86 KiB in all" in text  # 1000 + 2000 + 3000 bytes
