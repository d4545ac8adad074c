"""What every HTTP service shares: typed errors mapped to status codes in one place, the
`{"error", "detail"}` body, the api_token check, reading the JSON body and serving. What each
route accepts and answers is declared beside it (shared/operations.py)."""
from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import json
import logging
from typing import Any

from aiohttp import web
from pymongo.asynchronous.database import AsyncDatabase

from shared.config import Config

log = logging.getLogger(__name__)

DB = web.AppKey("db", AsyncDatabase)
CONFIG = web.AppKey("config", Config)


class ApiError(Exception):
    status = 400

    def __init__(self, message: str, detail: Any = None):
        super().__init__(message)
        self.message = message
        self.detail = detail


class InvalidParameter(ApiError):
    status = 400


class NotFound(ApiError):
    status = 404


class Duplicate(ApiError):
    status = 409


class Conflict(ApiError):
    status = 409


class Unavailable(ApiError):
    status = 503


def _default(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else str(value)


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, default=_default))


def error_response(status: int, error: str, detail: Any = None) -> web.Response:
    return json_response({"error": error, "detail": detail}, status=status)


@web.middleware
async def errors_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.message, exc.detail)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error_response(exc.status, exc.reason, None)
        if "Allow" in exc.headers:  # a 405 says which methods the path has
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "internal error", None)


def auth_middleware(token: str):
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def check(request: web.Request, handler):
        if _is_public(request):
            return await handler(request)
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return error_response(401, "missing or wrong api token", "send 'Authorization: Bearer <api_token>'")
        return await handler(request)

    return check


def _is_public(request: web.Request) -> bool:
    declared = getattr(request.match_info.handler, "operation", None)
    return declared is not None and declared.public


def create_app(config: Config, db: AsyncDatabase | None, routes: web.RouteTableDef,
               title: str = "Singularity") -> web.Application:
    from shared import openapi  # it imports the declarations, which import this module

    middlewares = [errors_middleware]
    if config.connection.api_token:
        middlewares.append(auth_middleware(config.connection.api_token))
    app = web.Application(middlewares=middlewares, client_max_size=1024**2)
    app[CONFIG] = config
    if db is not None:
        app[DB] = db
    app.add_routes(routes)
    app.add_routes(openapi.routes)
    app[openapi.TITLE] = title
    app[openapi.DOCUMENT] = {}

    async def build_document(app: web.Application) -> None:  # once every route is added
        app[openapi.DOCUMENT].update(openapi.document(app, title, bool(config.connection.api_token)))

    app.on_startup.append(build_document)
    return app


async def serve(app: web.Application, host: str, port: int) -> None:
    """Serve until cancelled, then close every connection and run the app's cleanups."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        log.info("listening on http://%s:%d", host, port)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


async def read_body(request: web.Request) -> dict:
    """The request's JSON object; its fields are checked by the route's declared body."""
    raw = await request.read()
    try:
        data = json.loads(raw or b"null")
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError, UnicodeDecodeError and integers past Python's digit
        # limit; RecursionError, arrays or objects nested thousands deep.
        raise InvalidParameter("request body is not valid JSON", str(exc)[:200]) from None
    if not isinstance(data, dict):
        raise InvalidParameter("request body must be a JSON object")
    return data
