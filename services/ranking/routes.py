"""HTTP routes of the ranking service; each delegates to its handler."""
from __future__ import annotations

from aiohttp import web

from services.ranking import handlers
from services.ranking.ranking import Ranking
from shared.api import json_response, pagination, read_body

RANKING = web.AppKey("ranking", Ranking)
routes = web.RouteTableDef()


@routes.post("/ranking/lookup")
async def lookup(request: web.Request) -> web.Response:
    body = await read_body(request)
    return json_response(await handlers.lookup(request.app[RANKING], body))


@routes.get("/providers")
async def list_providers(request: web.Request) -> web.Response:
    offset, limit = pagination(request)
    return json_response(await handlers.list_providers(request.app[RANKING], offset, limit))


@routes.get("/provider/{id}")
async def get_provider(request: web.Request) -> web.Response:
    return json_response(await handlers.get_provider(request.app[RANKING], request.match_info["id"]))


@routes.post("/ranking/refresh")
async def refresh(request: web.Request) -> web.Response:
    return json_response(await handlers.refresh(request.app[RANKING]))


@routes.get("/ranking/report")
async def report(request: web.Request) -> web.Response:
    offset, limit = pagination(request)
    return json_response(await handlers.report(request.app[RANKING], offset, limit))
