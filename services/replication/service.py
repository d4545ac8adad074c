"""The replication module: its API, the replicator's rounds, and the maintenance task that hands
a dead replicator's requests back (it runs wherever claimed jobs run)."""
from __future__ import annotations

import aiohttp
from aiohttp import web

from services.replication.replicator import Replicator
from services.replication.routes import routes
from shared import maintenance
from shared.api import create_app, serve
from shared.runtime import Runtime, run_together


def make_app(runtime: Runtime) -> web.Application:
    return create_app(runtime.config, runtime.db, routes, service="replication")


async def run(runtime: Runtime) -> None:
    config = runtime.config
    settings = config.replication_service
    prep = config.deal_preparation_service
    async with aiohttp.ClientSession() as session:
        replicator = Replicator(runtime.db, config, session)
        await run_together(
            serve(make_app(runtime), settings.bind, settings.port),
            replicator.run_forever(poll=min(1.0, settings.interval)),
            maintenance.run(runtime.db, prep.worker_timeout, prep.maintenance_interval),
        )
