"""HTTP routes of the replication service; each delegates to its handler."""
from __future__ import annotations

from aiohttp import web

from services.replication import handlers
from services.replication import schemas as s
from shared.api import CONFIG, DB, json_response
from shared.operations import Content, operation, page

routes = web.RouteTableDef()
PAGE = page(default_limit=20, max_limit=1000)
NO_REQUEST = {404: "no such replication request"}


@routes.post("/replication")
@operation("Replicate a prepared dataset, or a CAR file (registered as a one-chunk preparation), to providers "
           "matching a criteria", body=s.NEW_REPLICATION, responses={201: s.CREATED}, tags=("replication",))
async def create(request: web.Request, body: dict) -> web.Response:
    return json_response(await handlers.create(request.app[DB], request.app[CONFIG], body), status=201)


@routes.post("/replication/{id}")
@operation("Change a request's replicas, criteria or client; pause, resume or remove it", path={"id": s.ID},
           body=s.UPDATE, responses={200: s.UPDATED}, errors=NO_REQUEST, tags=("replication",))
async def update(request: web.Request, id: str, body: dict) -> web.Response:
    return json_response(await handlers.update(request.app[DB], request.app[CONFIG], id, body))


@routes.get("/replications")
@operation("A page of the replication requests, by id, with what their last round found", query=PAGE,
           responses={200: s.REPLICATIONS}, tags=("replication",))
async def list_all(request: web.Request, offset: int, limit: int) -> web.Response:
    return json_response(await handlers.list_page(request.app[DB], offset, limit))


@routes.get("/replication/{id}")
@operation("One request with a page of its dataset's chunks, each with its deals", path={"id": s.ID}, query=PAGE,
           responses={200: s.DETAILS}, errors=NO_REQUEST, tags=("replication",))
async def details(request: web.Request, id: str, offset: int, limit: int) -> web.Response:
    return json_response(await handlers.details(request.app[DB], id, offset, limit))


@routes.get("/replication/{id}/csv")
@operation("The offline-import list of the request's proposed deals, as Singularity v1 wrote it", path={"id": s.ID},
           query={"provider": s.PROVIDER},
           responses={200: Content("text/csv", "a header line, then one line per proposed deal: "
                                   + ", ".join(handlers.CSV_COLUMNS))},
           errors=NO_REQUEST, tags=("replication",))
async def csv_list(request: web.Request, id: str, provider: str | None) -> web.StreamResponse:
    rows = handlers.csv_rows(request.app[DB], id, provider)
    first = await anext(rows)  # raises NotFound before any byte is sent
    response = web.StreamResponse(headers={"Content-Type": "text/csv; charset=utf-8",
                                           "Content-Disposition": f'attachment; filename="{id}.csv"'})
    await response.prepare(request)
    await response.write(first.encode())
    async for part in rows:
        await response.write(part.encode())
    await response.write_eof()
    return response
