"""HTTP routes of the deal making service; each delegates to its handler."""
from __future__ import annotations

from aiohttp import web

from services.dealmaking import handlers
from shared.api import CONFIG, DB, json_response, pagination, read_body

routes = web.RouteTableDef()


@routes.post("/deal")
async def make_deal(request: web.Request) -> web.Response:
    body = await read_body(request)
    return json_response(await handlers.make_deal(request.app[DB], request.app[CONFIG], body))


@routes.get("/deals")
async def list_deals(request: web.Request) -> web.Response:
    offset, limit = pagination(request)
    q = request.query
    return json_response(await handlers.list_deals(
        request.app[DB], q.get("state"), q.get("provider"), q.get("piece"), q.get("client"), offset, limit))


@routes.get("/deal/{id}")
async def get_deal(request: web.Request) -> web.Response:
    return json_response(await handlers.get_deal(request.app[DB], request.match_info["id"]))
