"""HTTP routes of the replication service; each delegates to its handler."""
from __future__ import annotations

from aiohttp import web

from services.replication import handlers
from shared.api import CONFIG, DB, json_response, pagination, read_body

routes = web.RouteTableDef()


@routes.post("/replication")
async def create(request: web.Request) -> web.Response:
    body = await read_body(request)
    return json_response(await handlers.create(request.app[DB], request.app[CONFIG], body), status=201)


@routes.post("/replication/{id}")
async def update(request: web.Request) -> web.Response:
    body = await read_body(request)
    return json_response(await handlers.update(request.app[DB], request.app[CONFIG], request.match_info["id"], body))


@routes.get("/replications")
async def list_all(request: web.Request) -> web.Response:
    offset, limit = pagination(request, default_limit=20, max_limit=1000)
    return json_response(await handlers.list_page(request.app[DB], offset, limit))


@routes.get("/replication/{id}")
async def details(request: web.Request) -> web.Response:
    offset, limit = pagination(request, default_limit=20, max_limit=1000)
    return json_response(await handlers.details(request.app[DB], request.match_info["id"], offset, limit))


@routes.get("/replication/{id}/csv")
async def csv_list(request: web.Request) -> web.StreamResponse:
    rows = handlers.csv_rows(request.app[DB], request.match_info["id"], request.query.get("provider"))
    first = await anext(rows)  # raises NotFound before any byte is sent
    response = web.StreamResponse(headers={"Content-Type": "text/csv; charset=utf-8",
                                           "Content-Disposition": f'attachment; filename="{request.match_info["id"]}.csv"'})
    await response.prepare(request)
    await response.write(first.encode())
    async for part in rows:
        await response.write(part.encode())
    await response.write_eof()
    return response
