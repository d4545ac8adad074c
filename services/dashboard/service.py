"""The dashboard module: web pages over the suite's HTTP APIs (never the database), served on
[dashboard] bind/port. The browser talks to the dashboard only; the dashboard calls the services
server to server with the api_token, so the token never reaches a page."""
from __future__ import annotations

import aiohttp
from aiohttp import web

from services.dashboard import auth, routes as dashboard_routes
from services.dashboard.client import Services
from services.dashboard.views import Rates, environment
from shared.api import CONFIG, browser_guard, errors_middleware, serve
from shared.config import Config
from shared.runtime import Runtime


def make_app(config: Config) -> web.Application:
    """The app; its client session to the services opens with it and closes with it."""
    app = web.Application(middlewares=[auth.security_headers, errors_middleware, browser_guard(config),
                                       auth.middleware(config)], client_max_size=64 * 1024)
    app[CONFIG] = config
    app[auth.SECRET] = auth.new_secret()
    app[dashboard_routes.RATES] = Rates()
    app[dashboard_routes.ENV] = environment()
    app[dashboard_routes.SERVICES] = services = Services(config, None)
    app.add_routes(dashboard_routes.routes)

    async def session(app: web.Application):
        async with aiohttp.ClientSession() as client:
            services.session = client
            yield

    app.cleanup_ctx.append(session)
    return app


async def run(runtime: Runtime) -> None:
    settings = runtime.config.dashboard
    await serve(make_app(runtime.config), settings.bind, settings.port)
