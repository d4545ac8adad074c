"""Who may use the dashboard, and what a page elsewhere cannot make a browser do to it.

With `connection.api_token` set, a person logs in once with that token; the browser then holds a
session cookie (HttpOnly: no script reads it; SameSite=Strict: no other site's page or link sends
it). The cookie holds a value derived from the token, not the token itself, so a copy of it opens
the dashboard only, never the APIs directly. Without the cookie no page, fragment or action answers.

Every POST also carries the page's CSRF token in `X-CSRF-Token` (derived from the session, so it
cannot be guessed by a page that cannot read ours), on top of the Origin, Host and JSON checks of
shared/api.py's browser_guard that every service applies.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

from aiohttp import web

from shared.api import error_response
from shared.config import Config

COOKIE = "singularity_session"
CSRF_HEADER = "X-CSRF-Token"
SECRET = web.AppKey("csrf_secret", bytes)


def session_value(token: str) -> str:
    return hmac.new(token.encode(), b"singularity dashboard session", hashlib.sha256).hexdigest()


def logged_in(request: web.Request, config: Config) -> bool:
    if not config.connection.api_token:
        return True
    given = request.cookies.get(COOKIE, "")
    return hmac.compare_digest(given.encode(), session_value(config.connection.api_token).encode())


def csrf_token(request: web.Request) -> str:
    session = request.cookies.get(COOKIE, "")
    return hmac.new(request.app[SECRET], session.encode(), hashlib.sha256).hexdigest()


def new_secret() -> bytes:
    return secrets.token_bytes(32)


def check_token(config: Config, given: str) -> bool:
    expected = config.connection.api_token
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def set_session(response: web.StreamResponse, config: Config) -> None:
    response.set_cookie(COOKIE, session_value(config.connection.api_token), httponly=True, samesite="Strict",
                        path="/")


def clear_session(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/")


def is_page(request: web.Request) -> bool:
    """A page a person opens (sent to the login page), rather than a fragment or action (a 401)."""
    return request.method == "GET" and not request.path.startswith(("/live/", "/action/"))


def middleware(config: Config):
    @web.middleware
    async def check(request: web.Request, handler):
        # Answered without a session: the login page and the static files (they hold no data).
        public = request.path == "/login" or request.path.startswith("/static/")
        if not public and not logged_in(request, config):
            if is_page(request):
                raise web.HTTPSeeOther(f"/login?next={_quote(request.path_qs)}")
            return error_response(401, "log in first", {"login": "/login"})
        if request.method == "POST":
            given = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(given.encode(), csrf_token(request).encode()):
                return error_response(403, "missing or stale CSRF token: reload the page", {"header": CSRF_HEADER})
        return await handler(request)

    return check


def _quote(path: str) -> str:
    from urllib.parse import quote
    return quote(path, safe="")


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path of ours only (never `//evil.example` or a URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@web.middleware
async def security_headers(request: web.Request, handler):
    response = await handler(request)
    # Only our own files run or style a page; nothing is loaded from anywhere else, nor framed.
    response.headers.setdefault("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; "
                                "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cache-Control", "no-store")
    return response
