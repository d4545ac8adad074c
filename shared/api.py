"""What every HTTP service shares: typed errors mapped to status codes in one place, the
`{"error", "detail"}` body, the api_token check, request-body validation and serving."""
from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import json
import logging
from typing import Any

from aiohttp import web
from pymongo.asynchronous.database import AsyncDatabase

from shared.config import Config, parse_size

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
        return error_response(exc.status, exc.reason, None)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "internal error", None)


# Requests that change state, finishing after their client went away (referenced so that they
# are not garbage-collected mid-way).
_FINISHING: set[asyncio.Task] = set()
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


@web.middleware
async def finish_writes_middleware(request: web.Request, handler):
    """The server cancels a handler whose client disconnected (so abandoned reads stop costing
    database time); a request that changes state is shielded from that and runs to its end, so a
    dropped connection never leaves half a change behind."""
    if request.method in SAFE_METHODS:
        return await handler(request)
    task = asyncio.ensure_future(handler(request))
    _FINISHING.add(task)
    task.add_done_callback(_FINISHING.discard)
    return await asyncio.shield(task)


def auth_middleware(token: str):
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def check(request: web.Request, handler):
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return error_response(401, "missing or wrong api token", "send 'Authorization: Bearer <api_token>'")
        return await handler(request)

    return check


def create_app(config: Config, db: AsyncDatabase | None, routes: web.RouteTableDef) -> web.Application:
    middlewares = [finish_writes_middleware, errors_middleware]
    if config.connection.api_token:
        middlewares.append(auth_middleware(config.connection.api_token))
    app = web.Application(middlewares=middlewares, client_max_size=1024**2)
    app[CONFIG] = config
    if db is not None:
        app[DB] = db
    app.add_routes(routes)
    return app


async def serve(app: web.Application, host: str, port: int) -> None:
    """Serve until cancelled, then close every connection and run the app's cleanups."""
    # handler_cancellation: a client that goes away cancels its handler (see finish_writes_middleware).
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        log.info("listening on http://%s:%d", host, port)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


async def read_body(request: web.Request) -> "Body":
    raw = await request.read()
    try:
        data = json.loads(raw or b"null")
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError, UnicodeDecodeError and integers past Python's digit
        # limit; RecursionError, arrays or objects nested thousands deep.
        raise InvalidParameter("request body is not valid JSON", str(exc)[:200]) from None
    if not isinstance(data, dict):
        raise InvalidParameter("request body must be a JSON object")
    return Body(data)


class Body:
    """A JSON object read field by field; each getter names the field in its error."""

    def __init__(self, data: dict):
        self.data = data

    def only(self, *allowed: str) -> "Body":
        unknown = sorted(set(self.data) - set(allowed))
        if unknown:
            raise InvalidParameter(f"unknown field: {unknown[0]}", {"allowed": list(allowed)})
        return self

    def _get(self, key: str, required: bool):
        value = self.data.get(key)
        if value is None and required:
            raise InvalidParameter(f"missing field: {key}")
        return value

    def str(self, key: str, required: bool = True) -> str | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise InvalidParameter(f"{key} must be a non-empty string")
        # JSON can carry lone surrogates ("\udcff") and NULs; neither can be stored (BSON strings
        # are UTF-8) or used as a path, so they are bad input here rather than a 500 later.
        if "\x00" in value or not _is_utf8(value):
            raise InvalidParameter(f"{key} must be valid UTF-8 text without NUL characters")
        return value

    def int(self, key: str, required: bool = True, minimum: int | None = None) -> int | None:
        value = self._get(key, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidParameter(f"{key} must be an integer")
        if minimum is not None and value < minimum:
            raise InvalidParameter(f"{key} must be at least {minimum}")
        return value

    def bool(self, key: str, required: bool = True) -> bool | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise InvalidParameter(f"{key} must be true or false")
        return value

    def size(self, key: str, required: bool = True) -> int | None:
        value = self._get(key, required)
        if value is None:
            return None
        try:
            return parse_size(value)
        except ValueError as exc:
            raise InvalidParameter(f"{key}: {exc}") from None


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Offsets travel as 64-bit integers to the database: beyond this, pymongo cannot even encode them.
MAX_OFFSET = 2**63 - 1


def pagination(request: web.Request, default_limit: int = 100, max_limit: int = 10_000) -> tuple[int, int]:
    """`?offset=&limit=` as two integers: a bad or out-of-range value is a 400 naming it."""
    def number(name: str, default: int, maximum: int) -> int:
        raw = request.query.get(name)
        if raw is None:
            return default
        text = raw.strip()
        # ASCII digits only: int() would also take "1_000" and digits of other scripts. A length
        # check first, so a megabyte of digits is refused without being converted.
        if text.startswith("-") and text[1:].isascii() and text[1:].isdigit():
            raise InvalidParameter(f"{name} must not be negative", raw[:100])
        if not (text.isascii() and text.isdigit()):
            raise InvalidParameter(f"{name} must be an integer", raw[:100])
        digits = text.lstrip("0") or "0"
        if len(digits) > len(str(maximum)) or int(digits) > maximum:
            raise InvalidParameter(f"{name} must be at most {maximum}", raw[:100])
        return int(digits)

    offset = number("offset", 0, MAX_OFFSET)
    limit = number("limit", default_limit, max_limit)
    if limit == 0:
        raise InvalidParameter(f"limit must be between 1 and {max_limit}", limit)
    return offset, limit
