"""The OpenAPI 3.1 document of a service, built from its route declarations, and the pages that
show it: `GET /openapi.json` and `GET /docs` (Swagger UI from the swagger-ui-bundle package, so the
page works offline and loads nothing from a CDN).

Both are public even when api_token is set: they describe the API and hold no data, and a browser
opening /docs cannot send a bearer token (the page's "Authorize" button takes it for the calls).
Which tokens each other operation takes comes from the service's token policy (shared/api.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata

from aiohttp import web

from shared.api import TokenPolicy
from shared.operations import ERROR, Content, Empty, Operation, declaration, operation
from shared.schema import Json, Obj, Schema, Str

DOCUMENT = web.AppKey("openapi", dict)
TITLE = web.AppKey("openapi_title", str)
POLICY = web.AppKey("openapi_token_policy", object)  # the app's TokenPolicy

_PARAM_RE = re.compile(r"\{(\w+)\}")
# The statuses every operation may answer, beside those it declares.
_INVALID = "invalid parameter or body (the error names the field)"
_NOT_FOUND = "no such resource (or a path parameter of the wrong form)"
_FORBIDDEN = "a Host or Origin not allowed (connection.allowed_hosts, allowed_origins): what a browser on " \
             "another site would send"
_UNSUPPORTED = "the request's Content-Type is not application/json"
_UNAVAILABLE = "the database did not answer in time: retry in a few seconds (Retry-After)"
# The security scheme of each token a policy names.
SCHEMES = {
    "connection.api_token": ("api_token", "`Authorization: Bearer <api_token>` with the [connection] api_token"),
    "http_hosting_service.token": ("hosting_token", "`Authorization: Bearer <token>` with the "
                                                    "[http_hosting_service] token, handed to providers with deals"),
}
STATE_CHANGING = ("post", "put", "patch", "delete")


@dataclass(frozen=True)
class _Probe:
    """What a token policy reads of a request: enough to ask it about a route."""
    method: str
    path: str


def _security(policy: TokenPolicy, method: str, template: str) -> list[dict]:
    """The tokens (any one of them) an operation takes: [] when it needs none."""
    probe = _Probe(method.upper(), _PARAM_RE.sub("x", template))
    return [{SCHEMES.get(key, (key.replace(".", "_"), ""))[0]: []} for key, token in policy(probe) if token]


def document(app: web.Application, title: str | None = None, policy: TokenPolicy | None = None) -> dict:
    """The document of `app` (made by create_app), with its title and token policy unless given."""
    title = app[TITLE] if title is None else title
    policy = app[POLICY] if policy is None else policy
    components: dict = {}
    ERROR.document(components)
    paths: dict = {}
    routes = [(route, declaration(route.handler)) for route in app.router.routes() if route.resource is not None]
    shortest: dict = {}
    for route, declared in routes:
        if declared is not None:
            key = (route.handler, route.method)
            count = len(_PARAM_RE.findall(route.resource.canonical))
            shortest[key] = min(shortest.get(key, count), count)
    for route, declared in routes:
        method = route.method.lower()
        if declared is None or (method == "head" and not declared.head):
            continue
        template = route.resource.canonical
        names = _PARAM_RE.findall(template)
        missing = set(names) - set(declared.path)
        if missing:
            raise ValueError(f"{route.method} {template}: path parameters not declared: {sorted(missing)}")
        base = route.handler.__name__
        if len(names) > shortest[(route.handler, route.method)]:
            base += "_with_" + "_".join(names[shortest[(route.handler, route.method)]:])
        security = [] if declared.public else _security(policy, method, template)
        paths.setdefault(template, {})[method] = _operation(
            declared, names, base + ("_head" if method == "head" else ""), method, security, components)
    used = {name for item in paths.values() for op in item.values() for option in op["security"] for name in option}
    needed = [op["security"] for item in paths.values() for op in item.values() if op["security"]]
    # One requirement for the whole service when every guarded operation takes the same tokens.
    common = needed[0] if needed and all(security == needed[0] for security in needed) else None
    for item in paths.values():
        for op in item.values():
            if op["security"] == common or (not op["security"] and not used):
                del op["security"]
    doc = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": _version(),
                 "description": "Errors answer `{\"error\", \"detail\"}` with a 4xx status "
                                "(components/schemas/Error); the README has the rules."},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": components,
            "securitySchemes": {name: {"type": "http", "scheme": "bearer", "description": description}
                                for name, description in [*SCHEMES.values()]
                                if name in used or name == "api_token"},
        },
    }
    if common:
        doc["security"] = common
    return doc


def _operation(declared: Operation, names: list[str], operation_id: str, method: str, security: list[dict],
               components: dict) -> dict:
    head = method == "head"
    out: dict = {"operationId": operation_id, "summary": declared.summary}
    if declared.description:
        out["description"] = declared.description
    if declared.tags:
        out["tags"] = list(declared.tags)
    parameters = [_parameter(name, "path", declared.path[name], True, components) for name in names]
    parameters += [_parameter(name, "query", schema, False, components) for name, schema in declared.query.items()]
    parameters += [_parameter(name, "header", schema, False, components) for name, schema in declared.headers.items()]
    if parameters:
        out["parameters"] = parameters
    if declared.body is not None:
        out["requestBody"] = {"required": True,
                              "content": {"application/json": {"schema": declared.body.document(components)}}}
    responses = {str(status): _response(answer, components) for status, answer in declared.responses.items()}
    errors = dict(declared.errors)
    if parameters or declared.body is not None:
        errors.setdefault(400, _INVALID)
    if names:
        errors.setdefault(404, _NOT_FOUND)
    if declared.body is not None:
        errors.setdefault(413, "request body over 1 MiB")
    if security:
        errors.setdefault(401, "missing or wrong token")
    errors.setdefault(403, _FORBIDDEN)  # browser_guard (shared/api.py) checks every request
    if method in STATE_CHANGING:
        errors.setdefault(415, _UNSUPPORTED)
    if not declared.public:
        errors.setdefault(503, _UNAVAILABLE)
    for status, description in errors.items():
        responses.setdefault(str(status), {"description": description, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
    if head:  # the same statuses and headers, never a body
        responses = {status: {"description": answer["description"]} for status, answer in responses.items()}
    out["responses"] = dict(sorted(responses.items()))
    out["security"] = security  # document() keeps it where it differs from the service's
    return out


def _parameter(name: str, where: str, schema: Schema, required: bool, components: dict) -> dict:
    out = {"name": name, "in": where, "required": required, "schema": schema.document(components)}
    if schema.description:  # said once, on the parameter
        out["description"] = out["schema"].pop("description", schema.description)
    return out


def _response(answer, components: dict) -> dict:
    if isinstance(answer, Empty):
        return {"description": answer.description}
    if isinstance(answer, Content):
        types = (answer.media_type,) if isinstance(answer.media_type, str) else answer.media_type
        return {"description": answer.description, "content": {t: {"schema": dict(answer.schema)} for t in types}}
    return {"description": answer.description or "the answer",
            "content": {"application/json": {"schema": answer.document(components)}}}


def _version() -> str:
    try:
        return metadata.version("singularity-suite")
    except metadata.PackageNotFoundError:
        return "0.0.0"


routes = web.RouteTableDef()


@routes.get("/openapi.json")
@operation("This service's OpenAPI 3.1 document", public=True, tags=("documentation",),
           responses={200: Obj({"openapi": Str(), "info": Json(), "paths": Json(), "components": Json()},
                               required=("openapi", "info", "paths"), description="the OpenAPI document")})
async def openapi_document(request: web.Request) -> web.Response:
    return web.json_response(request.app[DOCUMENT])


_ASSETS = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript"}
# Separate from the page so that a Content-Security-Policy of script-src 'self' still allows it.
_INIT = b'window.ui = SwaggerUIBundle({url: "openapi.json", dom_id: "#ui", deepLinking: true});\n'
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="docs/swagger-ui.css"></head>
<body><div id="ui"></div><script src="docs/swagger-ui-bundle.js"></script><script src="docs/init.js"></script></body>
</html>
"""


@routes.get("/docs")
@operation("The API documentation page (Swagger UI, served from this service)", public=True, tags=("documentation",),
           responses={200: Content("text/html", "the page", {"type": "string"})})
async def docs_page(request: web.Request) -> web.Response:
    from html import escape

    return web.Response(text=_PAGE.format(title=escape(request.app[TITLE])), content_type="text/html",
                        headers={"Cache-Control": "no-cache"})


@routes.get("/docs/{asset}")
@operation("A file of the documentation page", public=True, tags=("documentation",),
           path={"asset": Str("the file", enum=("init.js", *_ASSETS))},
           responses={200: Content(("text/css", "text/javascript"), "the file", {"type": "string"})})
async def docs_asset(request: web.Request, asset: str) -> web.StreamResponse:
    headers = {"Cache-Control": "public, max-age=86400"}
    if asset == "init.js":
        return web.Response(body=_INIT, content_type="text/javascript", headers=headers)
    from swagger_ui_bundle import swagger_ui_path  # the package's files: no CDN, works offline

    return web.FileResponse(swagger_ui_path / asset, headers={**headers, "Content-Type": _ASSETS[asset]})
