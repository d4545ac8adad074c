"""One declaration per route: its parameters, body and responses.

    @routes.get("/preparation/{id}")
    @operation("One preparation with a page of its chunks", path={"id": ID}, query=page(1000),
               responses={200: schemas.DETAILS}, errors={404: "no such preparation"})
    async def details(request, id, offset, limit): ...

The wrapper checks the path and query parameters and the body against the declaration (errors
name the field) and calls the handler with the checked values as keyword arguments (the body as
`body`); shared/openapi.py builds the service's OpenAPI document from the same declarations.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from aiohttp import web

from shared.api import InvalidParameter, read_body
from shared.schema import Arr, Int, Json, Obj, Schema, Text

ERROR = Obj({"error": Text("what went wrong"), "detail": Json("the value at fault or more context", nullable=True)},
            required=("error", "detail"), name="Error", description="Every error answer has this body.")


@dataclass(frozen=True)
class Content:
    """A response body that is not JSON (a CAR, a tar, a page): its media type and, if any, schema."""
    media_type: str | tuple[str, ...]  # several when the parameters choose one
    description: str
    schema: dict = field(default_factory=lambda: {"type": "string", "format": "binary"})


@dataclass(frozen=True)
class Empty:
    """A response without a body (304 Not Modified)."""
    description: str


Response = Schema | Content | Empty


@dataclass(frozen=True)
class Operation:
    summary: str
    path: dict[str, Schema]
    query: dict[str, Schema]
    headers: dict[str, Schema]
    body: Obj | None
    responses: dict[int, Response]
    errors: dict[int, str]
    description: str | None
    head: bool  # HEAD is documented too (aiohttp answers it for every GET)
    public: bool  # answered without the api_token
    tags: tuple[str, ...]

    async def arguments(self, request: web.Request) -> dict[str, Any]:
        args: dict[str, Any] = {}
        for name, schema in self.path.items():
            raw = request.match_info.get(name)
            if raw is not None:  # a handler serving two paths gets only the parameters of the one matched
                args[name] = schema.parse_text(name, raw)
        unknown = sorted(set(request.query) - set(self.query))
        if unknown:  # a misspelt ?ofset= would otherwise be ignored without a word
            raise InvalidParameter(f"unknown query parameter: {unknown[0]}", {"allowed": list(self.query)})
        for name, schema in self.query.items():
            raw = request.query.get(name)
            args[name] = schema.default if raw is None else schema.parse_text(name, raw)
        for name, schema in self.headers.items():
            raw = request.headers.get(name)
            if raw is not None:  # handlers read headers themselves; this only refuses what is malformed
                schema.parse_text(name, raw)
        if self.body is not None:
            args["body"] = self.body.check("", await read_body(request))
        return args


def operation(summary: str, *, responses: dict[int, Response], path: dict[str, Schema] | None = None,
              query: dict[str, Schema] | None = None, headers: dict[str, Schema] | None = None,
              body: Obj | None = None, errors: dict[int, str] | None = None, description: str | None = None,
              head: bool = False, public: bool = False, tags: tuple[str, ...] = ()):
    if body is not None and not body.closed:
        raise ValueError("a request body must be a closed Obj: unknown fields are refused")
    overlap = set(path or {}) & set(query or {})
    if overlap or "body" in (query or {}):
        raise ValueError(f"parameter names used twice: {sorted(overlap) or ['body']}")
    declared = Operation(summary, dict(path or {}), dict(query or {}), dict(headers or {}), body, dict(responses),
                         dict(errors or {}), description, head, public, tags)

    def wrap(handler: Callable[..., Awaitable[web.StreamResponse]]):
        @functools.wraps(handler)
        async def checked(request: web.Request) -> web.StreamResponse:
            return await handler(request, **await declared.arguments(request))

        checked.operation = declared  # type: ignore[attr-defined]
        return checked

    return wrap


def declaration(handler: Any) -> Operation | None:
    return getattr(handler, "operation", None)


# Offsets travel to the database as 64-bit integers: beyond this pymongo cannot even encode them.
# Any offset up to it is an answer (past the end, an empty page), never a 500.
MAX_OFFSET = 2**63 - 1


def page(default_limit: int = 100, max_limit: int = 10_000) -> dict[str, Schema]:
    """The `offset` and `limit` query parameters of a paged list."""
    return {
        "offset": Int("items to skip", minimum=0, maximum=MAX_OFFSET, default=0),
        "limit": Int("items to return at most", minimum=1, maximum=max_limit, default=default_limit),
    }


def paged(items: str, schema: Schema, total: str = "how many there are in all") -> dict[str, Schema]:
    """The fields of an answer that is a page of a list: the items, the list's total and the page."""
    return {items: Arr(schema), "total": Int(total, minimum=0), "offset": Int(minimum=0, maximum=MAX_OFFSET),
            "limit": Int(minimum=1)}


def undeclared(app: web.Application) -> list[str]:
    """The routes of `app` without a declaration, as "METHOD path" (none in a correct service)."""
    return [f"{route.method} {route.resource.canonical}" for route in app.router.routes()
            if route.resource is not None and declaration(route.handler) is None]

