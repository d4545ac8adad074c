"""The ranking module: provider metrics collected every refresh_interval, and the lookup API."""
from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from services.ranking.ranking import Ranking
from services.ranking.routes import RANKING, routes
from shared.api import create_app, serve
from shared.runtime import Runtime

TITLE = "Singularity storage provider ranking service"


def make_app(runtime: Runtime, ranking: Ranking) -> web.Application:
    app = create_app(runtime.config, runtime.db, routes, service="ranking", title=TITLE)
    app[RANKING] = ranking
    return app


async def run(runtime: Runtime) -> None:
    settings = runtime.config.ranking_service
    async with aiohttp.ClientSession() as session:
        # Serving starts at once; lookups answer 503 while the table loads (seconds per 100,000 values).
        ranking = Ranking(runtime.config, runtime.db, session)
        rounds = asyncio.create_task(ranking.start())
        try:
            await serve(make_app(runtime, ranking), settings.bind, settings.port)
        finally:
            rounds.cancel()
            await asyncio.gather(rounds, return_exceptions=True)
