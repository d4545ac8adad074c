from aiohttp import web

from services.preparation import handlers
from shared.api import CONFIG, DB, json_response, pagination, read_body

routes = web.RouteTableDef()


@routes.post("/preparation")
async def create(request: web.Request) -> web.Response:
    body = await read_body(request)
    return json_response(await handlers.create(request.app[DB], request.app[CONFIG], body), status=201)


@routes.post("/preparation/{id}")
async def set_state(request: web.Request) -> web.Response:
    body = await read_body(request)
    return json_response(await handlers.set_state(request.app[DB], request.match_info["id"], body))


@routes.get("/preparations")
async def list_all(request: web.Request) -> web.Response:
    offset, limit = pagination(request, default_limit=20, max_limit=1000)
    return json_response(await handlers.list_page(request.app[DB], offset, limit))


@routes.get("/preparation/{id}")
async def details(request: web.Request) -> web.Response:
    offset, limit = pagination(request, default_limit=20, max_limit=1000)
    return json_response(await handlers.details(request.app[DB], request.match_info["id"], offset, limit))


@routes.get("/generation/{id}")
async def generation(request: web.Request) -> web.Response:
    offset, limit = pagination(request, default_limit=100)
    return json_response(await handlers.generation(request.app[DB], request.match_info["id"], offset, limit))


@routes.get("/preparation/{id}/files")
async def files(request: web.Request) -> web.Response:
    offset, limit = pagination(request, default_limit=100)
    return json_response(await handlers.files(request.app[DB], request.match_info["id"],
                                              request.query.get("path", ""), offset, limit))


@routes.get("/status")
async def status(request: web.Request) -> web.Response:
    return json_response(await handlers.status(request.app[DB], request.app[CONFIG]))
