"""What every HTTP service shares: typed errors mapped to status codes in one place, the
`{"error", "detail"}` body, the checks every request passes (browser origin and host, content
type, tokens), reading the JSON body and serving. What each route accepts and answers is declared
beside it (shared/operations.py)."""
from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import ipaddress
import json
import logging
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

from aiohttp import hdrs, web, web_protocol
from pymongo.asynchronous.database import AsyncDatabase

from shared import metrics
from shared.config import Config
from shared.database import SERVICE_SELECTION_TIMEOUT_MS, UNAVAILABLE

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
    except UNAVAILABLE as exc:
        # Not a fault of the request nor a bug: the client is told to try again shortly.
        log.warning("database unavailable in %s %s: %s", request.method, request.path, str(exc).split(",")[0])
        response = error_response(503, "database unavailable", "the database did not answer within "
                                  f"{SERVICE_SELECTION_TIMEOUT_MS / 1000:g}s; retry in a few seconds")
        response.headers["Retry-After"] = "2"
        return response
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


# What a web page can make a browser send to another origin without asking it first (a "simple"
# request): a form post or fetch with these methods and a text/plain or form body.
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _hostname(host: str) -> str | None:
    """The name or address in a Host header ("[::1]:3001" -> "::1"); None when malformed."""
    if host.startswith("["):
        end = host.find("]")
        rest = host[end + 1:] if end > 0 else None
        if rest is None or (rest and not (rest[0] == ":" and rest[1:].isdigit())):
            return None
        return host[1:end]
    name, colon, port = host.partition(":")
    if colon and not port.isdigit():
        return None
    return name.lower().rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def configured_hosts(config: Config) -> set[str]:
    """The host names the configuration itself reaches the services by (the [connection] URLs, and
    the prefix of the deal URLs providers download from): the owner chose them, so they are not a
    rebinding attacker's, and a provider fetching <http_url_prefix>/<cid>.car needs no extra key."""
    urls = [config.connection.deal_preparation_service, config.connection.deal_making_service,
            config.connection.replication_service, config.connection.http_hosting_service,
            config.connection.ranking_service, config.connection.dashboard,
            config.replication_service.http_url_prefix]
    names = set()
    for url in urls:
        try:
            name = urlsplit(url).hostname
        except ValueError:
            continue
        if name:
            names.add(name.lower().rstrip("."))
    return names


def allowed_origins(config: Config) -> set[str]:
    """The web origins whose pages may call the services besides each one's own: the configured
    ones and the dashboard's (connection.dashboard), which is the suite's own page."""
    origins = {origin.rstrip("/").lower() for origin in config.connection.allowed_origins}
    try:
        parts = urlsplit(config.connection.dashboard)
        if parts.scheme and parts.netloc:
            origins.add(f"{parts.scheme}://{parts.netloc}".lower())
    except ValueError:
        pass
    return origins


def browser_guard(config: Config):
    """Refuses what a page from elsewhere could make the user's browser send to a service on this
    host: a request from a foreign Origin (CSRF), one addressed to a Host name that is not ours
    (DNS rebinding: evil.example resolving to 127.0.0.1 makes the page same-origin with us), and a
    state-changing request without a JSON body (a form or text/plain post needs no CORS preflight).
    Clients that are not browsers (the CLI, boost, curl) send neither Origin nor a foreign Host."""
    origins = allowed_origins(config)
    hosts = {host.lower().rstrip(".") for host in config.connection.allowed_hosts} | configured_hosts(config)

    @web.middleware
    async def guard(request: web.Request, handler):
        host = request.headers.get(hdrs.HOST)
        if host is not None:
            name = _hostname(host)
            if name is None or not (_is_ip(name) or name == "localhost" or name in hosts):
                return error_response(403, "host not allowed",
                                      {"host": host, "allow it with": "[connection] allowed_hosts"})
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is not None:
            own = f"{request.scheme}://{host}".lower() if host else None
            if origin.rstrip("/").lower() in origins:
                if request.method == "OPTIONS" and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers:
                    return web.Response(status=204, headers=_PREFLIGHT)  # the answer on_prepare completes
            elif origin.lower() != own:
                return error_response(403, "origin not allowed",
                                      {"origin": origin, "allow it with": "[connection] allowed_origins"})
        # A method or path that does not exist is answered as such (405 with Allow, 404): no handler runs.
        if (request.method in STATE_CHANGING and request.match_info.http_exception is None
                and request.content_type != "application/json"):
            return error_response(415, "Content-Type must be application/json",
                                  {"contentType": request.headers.get(hdrs.CONTENT_TYPE)})
        return await handler(request)

    return guard


_PREFLIGHT = {
    hdrs.ACCESS_CONTROL_ALLOW_METHODS: "GET, HEAD, POST, PUT, PATCH, DELETE",
    hdrs.ACCESS_CONTROL_ALLOW_HEADERS: "Authorization, Content-Type, Range",
    hdrs.ACCESS_CONTROL_MAX_AGE: "600",
}


def cors_headers(config: Config):
    """An on_response_prepare hook: answers to a page of an allowed origin carry the CORS headers
    that let the browser hand them to it (streamed answers too, whose headers go out early)."""
    origins = allowed_origins(config)

    async def add(request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is not None and origin.rstrip("/").lower() in origins:
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
            response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = "Content-Length, Content-Range, ETag"
            response.headers.add(hdrs.VARY, "Origin")

    return add


# For each request, the (config key, token) pairs of which one must be sent as a Bearer token;
# none (or only empty tokens) means the request needs no token. A policy reads only the request's
# method and path, so the OpenAPI document can tell which tokens each operation takes.
TokenPolicy = Callable[[web.Request], Iterable[tuple[str, str]]]


def api_token_policy(config: Config) -> TokenPolicy:
    """The management APIs: connection.api_token, when set."""
    required = (("connection.api_token", config.connection.api_token),)
    return lambda request: required


def auth_middleware(policy: TokenPolicy):
    @web.middleware
    async def check(request: web.Request, handler):
        if _is_public(request):
            return await handler(request)
        accepted = [(key, token) for key, token in policy(request) if token]
        if accepted:
            given = request.headers.get(hdrs.AUTHORIZATION, "").encode()
            # Every candidate is compared, so the time taken does not tell which one nearly matched.
            matches = [hmac.compare_digest(given, f"Bearer {token}".encode()) for _, token in accepted]
            if not any(matches):
                keys = " or ".join(key for key, _ in accepted)
                return error_response(401, "missing or wrong token", f"send 'Authorization: Bearer <{keys}>'")
        return await handler(request)

    return check


def _is_public(request: web.Request) -> bool:
    declared = getattr(request.match_info.handler, "operation", None)
    return declared is not None and declared.public


def create_app(config: Config, db: AsyncDatabase | None, routes: web.RouteTableDef,
               tokens: TokenPolicy | None = None, service: str = "api", title: str = "Singularity") -> web.Application:
    """Every service's app: measured, errors mapped to JSON, requests a browser was tricked into
    sending refused, the tokens of `tokens` (default: connection.api_token) checked, and its
    OpenAPI document at /openapi.json."""
    from shared import openapi  # it imports the declarations, which import this module

    policy = tokens or api_token_policy(config)
    # metrics.measure is outermost, so it sees the status every other middleware settled on.
    middlewares = [finish_writes_middleware, metrics.measure(service), errors_middleware, browser_guard(config),
                   auth_middleware(policy)]
    app = web.Application(middlewares=middlewares, client_max_size=1024**2)
    app.on_response_prepare.append(cors_headers(config))
    app[CONFIG] = config
    if db is not None:
        app[DB] = db
    # Behind the api_token like every route (the middlewares above apply to it).
    app.router.add_get("/metrics", metrics.scrape(db))
    app.add_routes(routes)
    app.add_routes(openapi.routes)
    app[openapi.TITLE] = title
    app[openapi.POLICY] = policy
    app[openapi.DOCUMENT] = {}

    async def build_document(app: web.Application) -> None:  # once every route is added
        app[openapi.DOCUMENT].update(openapi.document(app))

    app.on_startup.append(build_document)
    return app


class _JsonErrorHandler(web_protocol.RequestHandler):
    """aiohttp answers requests its HTTP parser refuses (a NUL in a header, an 8 KiB URL, a bad
    request line) in text/plain, before any middleware runs; these get the JSON error body too."""

    def handle_error(self, request, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs; refuses once a response started
        if status >= 500:
            response = error_response(status, "internal error", None)
        else:
            response = error_response(status, "malformed HTTP request", (message or str(exc or ""))[:300] or None)
        response.force_close()
        return response


class _JsonErrorServer(web.Server):
    def __call__(self) -> web_protocol.RequestHandler:
        return _JsonErrorHandler(self, loop=self._loop, **self._kwargs)


class _AppRunner(web.AppRunner):
    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _JsonErrorServer  # the same server, answering parser errors in JSON
        return server


def app_runner(app: web.Application) -> web.AppRunner:
    """The runner every service is served with (tests serve apps with it too)."""
    # handler_cancellation: a client that goes away cancels its handler (see finish_writes_middleware).
    return _AppRunner(app, access_log=None, handler_cancellation=True)


async def serve(app: web.Application, host: str, port: int) -> None:
    """Serve until cancelled, then close every connection and run the app's cleanups."""
    runner = app_runner(app)
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
