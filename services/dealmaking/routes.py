"""HTTP routes of the deal making service; each delegates to its handler."""
from __future__ import annotations

from aiohttp import web

from services.dealmaking import handlers
from services.dealmaking import schemas as s
from shared import timeline
from shared.api import CONFIG, DB, json_response
from shared.operations import operation, page

routes = web.RouteTableDef()


@routes.post("/deal")
@operation("Send a deal proposal through boost, or return the one pending for this client, provider and piece",
           body=s.PROPOSAL, responses={200: s.PROPOSED},
           errors={409: "an identical proposal is still being sent", 422: "the provider rejected the proposal",
                   502: "boost failed", 503: "boost cannot be run"})
async def make_deal(request: web.Request, body: dict) -> web.Response:
    return json_response(await handlers.make_deal(request.app[DB], request.app[CONFIG], body))


@routes.get("/deals")
@operation("Deals, filtered and paged, in creation order", query={**s.DEAL_FILTERS, **page()},
           responses={200: s.DEALS})
async def list_deals(request: web.Request, state: str | None, provider: str | None, piece: str | None,
                     client: str | None, offset: int, limit: int) -> web.Response:
    return json_response(await handlers.list_deals(request.app[DB], state, provider, piece, client, offset, limit))


@routes.get("/deals/history")
@operation("Deals in each state over time: the counts at the end of each bucket of a window",
           query={"provider": s.DEAL_FILTERS["provider"], **timeline.QUERY}, responses={200: s.HISTORY},
           errors={400: "a bad parameter, since not before until, or more than 1000 buckets"})
async def deal_history(request: web.Request, provider: str | None, since: int | None, until: int | None,
                       bucket: int) -> web.Response:
    return json_response(await handlers.deal_history(request.app[DB], provider, since, until, bucket))


@routes.get("/deals/transitions")
@operation("Deal state changes, oldest first", query={**s.TRANSITION_FILTERS, **page(max_limit=1000)},
           responses={200: s.TRANSITIONS})
async def list_transitions(request: web.Request, deal: str | None, provider: str | None, offset: int,
                           limit: int) -> web.Response:
    return json_response(await handlers.list_transitions(request.app[DB], deal, provider, offset, limit))


@routes.get("/deal/{id}")
@operation("One deal and its tracked state", path={"id": s.ID}, responses={200: s.DEAL}, errors={404: "no such deal"})
async def get_deal(request: web.Request, id: str) -> web.Response:
    return json_response(await handlers.get_deal(request.app[DB], id))
