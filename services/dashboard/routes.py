"""HTTP routes of the dashboard: each page at its path, the same page's live part at /live/<path>
(what the page's script fetches every few seconds), the actions, the login and the static files."""
from __future__ import annotations

import asyncio
import re

from aiohttp import web

from services.dashboard import auth, handlers
from services.dashboard.client import ServiceError, Services
from services.dashboard.views import Rates, TEMPLATES
from shared.api import CONFIG, InvalidParameter, error_response, json_response, read_body
from shared.operations import MAX_OFFSET

SERVICES = web.AppKey("services", Services)
RATES = web.AppKey("rates", Rates)
ENV = web.AppKey("jinja", object)
STATIC = TEMPLATES.parent / "static"
STATIC_TYPES = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
# The ids the services hand out; anything else is no page of ours (and never reaches an API path).
ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
PROVIDER_RE = re.compile(r"^[ft]0\d{1,20}$")

routes = web.RouteTableDef()


def number(request: web.Request, name: str, default: int, maximum: int = MAX_OFFSET) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or not 0 <= int(raw) <= maximum:
        raise InvalidParameter(f"{name}: a whole number from 0 to {maximum}", raw[:40])
    return int(raw)


def paging(request: web.Request, default: int = 50) -> tuple[int, int]:
    return number(request, "offset", 0), max(1, number(request, "limit", default, 1000))


def ident(request: web.Request, pattern: re.Pattern = ID_RE) -> str:
    value = request.match_info["id"]
    if not pattern.match(value):
        raise web.HTTPNotFound()
    return value


def render(request: web.Request, template: str, values: dict, live: bool) -> web.Response:
    """The whole page, or only its live part (`_<template>`) for the page's script."""
    env = request.app[ENV]
    config = request.app[CONFIG]
    values = {**values, "csrf": auth.csrf_token(request), "nav": template.split(".")[0],
              "login": bool(config.connection.api_token), "live_url": "/live" + request.path_qs}
    name = f"_{template}" if live else template
    return web.Response(text=env.get_template(name).render(values), content_type="text/html")


def page(path: str, template: str):
    """Registers `build(request) -> values` as the page at `path` and its live part at /live`path`."""
    def register(build):
        async def full(request: web.Request) -> web.Response:
            return render(request, template, await build(request), live=False)

        async def live(request: web.Request) -> web.Response:
            return render(request, template, await build(request), live=True)

        routes.get(path)(full)
        routes.get("/live" + path)(live)
        return build

    return register


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/preparations")


@page("/preparations", "preparations.html")
async def preparations(request: web.Request) -> dict:
    return await handlers.preparations(request.app[SERVICES], request.app[RATES], *paging(request))


@page("/preparation/{id}", "preparation.html")
async def preparation(request: web.Request) -> dict:
    offset, limit = paging(request)
    path = request.query.get("path")
    return await handlers.preparation(request.app[SERVICES], request.app[RATES], ident(request), offset, limit,
                                      path, number(request, "file_offset", 0))


@page("/deals", "deals.html")
async def deals(request: web.Request) -> dict:
    offset, limit = paging(request, 100)
    provider = request.query.get("provider") or None
    state = request.query.get("state") or None
    if provider is not None and not PROVIDER_RE.match(provider):
        raise InvalidParameter("provider: a provider id such as f01234", provider[:40])
    return await handlers.deals(request.app[SERVICES], offset, limit, provider, state, number(request, "deal_offset", 0))


@page("/replications", "replications.html")
async def replications(request: web.Request) -> dict:
    return await handlers.replications(request.app[SERVICES], *paging(request))


@page("/replication/{id}", "replication.html")
async def replication(request: web.Request) -> dict:
    return await handlers.replication(request.app[SERVICES], ident(request), *paging(request))


@page("/providers", "providers.html")
async def providers(request: web.Request) -> dict:
    return await handlers.providers(request.app[SERVICES], *paging(request, 100))


@page("/provider/{id}", "provider.html")
async def provider(request: web.Request) -> dict:
    return await handlers.provider(request.app[SERVICES], ident(request, PROVIDER_RE))


@page("/workers", "workers.html")
async def workers(request: web.Request) -> dict:
    return await handlers.workers(request.app[SERVICES])


@page("/charts", "charts.html")
async def charts(request: web.Request) -> dict:
    return await handlers.history(request.app[SERVICES], max(1, number(request, "days", 30, 1000)))


@routes.post("/live/lookup")
async def lookup(request: web.Request) -> web.Response:
    body = await read_body(request)
    criteria = body.get("criteria", "")
    if not isinstance(criteria, str) or len(criteria) > 4096:
        raise InvalidParameter("criteria: a string of at most 4 KiB")
    values = await handlers.lookup(request.app[SERVICES], criteria)
    return web.Response(text=request.app[ENV].get_template("_lookup.html").render(values), content_type="text/html")


@routes.post("/action/{kind}/{id}")
async def action(request: web.Request) -> web.Response:
    kind = request.match_info["kind"]
    if kind not in ("preparation", "replication"):
        raise web.HTTPNotFound()
    body = await read_body(request)
    if body.get("state") not in handlers.STATES:
        raise InvalidParameter("state: paused, active or removed", body.get("state"))
    try:
        return json_response(await handlers.set_state(request.app[SERVICES], kind, ident(request), body["state"]))
    except ServiceError as exc:
        return error_response(exc.status if exc.status and 400 <= exc.status < 500 else 502, exc.message, exc.detail)


@routes.get("/login")
async def login_page(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    target = auth.safe_next(request.query.get("next"))
    if not config.connection.api_token:
        raise web.HTTPSeeOther(target)
    return render(request, "login.html", {"next": target, "notices": []}, live=False)


@routes.post("/login")
async def login(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    body = await read_body(request)
    token = body.get("token")
    if not isinstance(token, str) or not auth.check_token(config, token):
        await asyncio.sleep(0.5)  # guesses cost time
        return error_response(401, "wrong token", "the token is [connection] api_token of the suite's config")
    response = json_response({"next": auth.safe_next(body.get("next"))})
    auth.set_session(response, config)
    return response


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    response = json_response({"next": "/login"})
    auth.clear_session(response)
    return response


@routes.get("/static/{name}")
async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC_TYPES:
        raise web.HTTPNotFound()
    return web.Response(body=(STATIC / name).read_bytes(), content_type=STATIC_TYPES[name])
