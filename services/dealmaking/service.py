"""The deal making module: its HTTP API, started by `singularity run`."""
from __future__ import annotations

from aiohttp import web

from services.dealmaking.routes import routes
from shared.api import create_app, serve
from shared.runtime import Runtime

TITLE = "Singularity deal making service"


def make_app(runtime: Runtime) -> web.Application:
    return create_app(runtime.config, runtime.db, routes, service="dealmaking", title=TITLE)


async def run(runtime: Runtime) -> None:
    settings = runtime.config.deal_making_service
    await serve(make_app(runtime), settings.bind, settings.port)
