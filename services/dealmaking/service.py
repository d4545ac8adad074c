"""The deal making module: its HTTP API, started by `singularity run`."""
from __future__ import annotations

import logging

from aiohttp import web
from pymongo.errors import PyMongoError

from shared import deal_transitions as transitions
from services.dealmaking.routes import routes
from shared.api import create_app, serve
from shared.runtime import Runtime

TITLE = "Singularity deal making service"

log = logging.getLogger(__name__)


def make_app(runtime: Runtime) -> web.Application:
    return create_app(runtime.config, runtime.db, routes, service="dealmaking", title=TITLE)


async def run(runtime: Runtime) -> None:
    settings = runtime.config.deal_making_service
    try:
        # State changes a killed predecessor stored but did not copy to DealTransition.
        await transitions.repair(runtime.db)
    except PyMongoError as exc:  # not a reason to refuse deals: tracking repairs them every round too
        log.warning("could not copy pending deal state changes: %s", exc)
    await serve(make_app(runtime), settings.bind, settings.port)
