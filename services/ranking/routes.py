"""HTTP routes of the ranking service; each delegates to its handler."""
from __future__ import annotations

from aiohttp import web

from services.ranking import handlers
from services.ranking import schemas as s
from services.ranking.ranking import Ranking
from shared.api import json_response
from shared.operations import operation, page

RANKING = web.AppKey("ranking", Ranking)
routes = web.RouteTableDef()
LOADING = {503: "the metrics are still loading (seconds after start), or the database is unavailable"}


@routes.post("/ranking/lookup")
@operation("The providers matching a criteria, best first by a metric", body=s.LOOKUP, responses={200: s.MATCHES},
           errors=LOADING, tags=("ranking",))
async def lookup(request: web.Request, body: dict) -> web.Response:
    return json_response(await handlers.lookup(request.app[RANKING], body))


@routes.get("/providers")
@operation("A page of the tracked providers with their metric values, by id", query=page(),
           responses={200: s.PROVIDERS}, errors=LOADING, tags=("ranking",))
async def list_providers(request: web.Request, offset: int, limit: int) -> web.Response:
    return json_response(await handlers.list_providers(request.app[RANKING], offset, limit))


@routes.get("/provider/{id}")
@operation("One provider: each metric with its source and age, and each source's state", path={"id": s.PROVIDER_ID},
           responses={200: s.PROVIDER}, errors={404: "the provider is not tracked", **LOADING}, tags=("ranking",))
async def get_provider(request: web.Request, id: str) -> web.Response:
    return json_response(await handlers.get_provider(request.app[RANKING], id))


@routes.post("/ranking/refresh")
@operation("Collect the metrics now (or wait for the round under way); what changed", body=s.NO_FIELDS,
           responses={200: s.ROUND}, errors={503: "the database cannot be written"}, tags=("ranking",))
async def refresh(request: web.Request, body: dict) -> web.Response:
    return json_response(await handlers.refresh(request.app[RANKING]))


@routes.get("/ranking/report")
@operation("What our own deals and retrieval checks tell of each provider, for others to consume", query=page(),
           responses={200: s.REPORT}, errors=LOADING, tags=("ranking",))
async def report(request: web.Request, offset: int, limit: int) -> web.Response:
    return json_response(await handlers.report(request.app[RANKING], offset, limit))
