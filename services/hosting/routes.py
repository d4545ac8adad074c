"""The hosting service's endpoints.

    GET|HEAD /{dataCid}.car            the CAR file (aiohttp FileResponse: ranges, sendfile)
    GET|HEAD /piece/{pieceCid}         the piece: CAR + zero padding to the unpadded piece size
    GET|HEAD /ipfs/{cid}?format=raw    one block (trustless gateway)
    GET|HEAD /ipfs/{cid}[/path]?format=car[&dag-scope=&entity-bytes=]   a CAR (trustless.py)
    GET      /index/{name or id}       {"id", "name", "indexCid", "indexPin"} of a preparation
    GET|HEAD /bundle/{name or id}[/{path}]?filename=x.tar   a tar of a folder or file

Only what belongs to an existing preparation is served (catalog.py); who needs which token is
access.py's policy.
"""
from __future__ import annotations

from aiohttp import web

from services.hosting import blocks, bundle, catalog, paths, piece, trustless
from shared.api import CONFIG, DB, InvalidParameter, NotFound, json_response

routes = web.RouteTableDef()

CAR_TYPE = "application/vnd.ipld.car"
RAW_TYPE = "application/vnd.ipld.raw"


def _car_dir(request: web.Request) -> str:
    return request.app[CONFIG].http_hosting_service.car_dir


def _roots(request: web.Request) -> list[str]:
    return request.app[CONFIG].deal_preparation_service.dataset_roots


@routes.get(r"/{cid:[a-z0-9]+}.car")
async def car_file(request: web.Request) -> web.StreamResponse:
    data_cid = request.match_info["cid"]
    path = await catalog.car_file(request.app[DB], _car_dir(request), data_cid, _roots(request))
    if path is None:
        raise NotFound("no such CAR file", data_cid)
    # The same range handling as /piece (a multi-range or malformed Range gets the whole file, not
    # aiohttp's 416; "bytes=-0" is a 416), and an ETag that is the content address itself.
    size = path.stat().st_size
    return await piece.serve(request, path, size, size, f'"{data_cid}"', CAR_TYPE)


@routes.get("/piece/{cid}")
async def piece_bytes(request: web.Request) -> web.StreamResponse:
    piece_cid = request.match_info["cid"]
    if paths.valid_cid(piece_cid) is None:
        raise NotFound("no such piece", piece_cid)
    for gen in await catalog.chunks(request.app[DB], "pieceCid", piece_cid):
        car = catalog.chunk_car(_car_dir(request), _roots(request), gen)
        if car is None or not gen.get("pieceSize") or gen.get("carSize") is None:
            continue
        return await piece.serve(request, car, int(gen["carSize"]), piece.unpadded(int(gen["pieceSize"])),
                                 f'"{piece_cid}"')
    raise NotFound("no such piece", piece_cid)


@routes.get("/ipfs/{cid}")
@routes.get("/ipfs/{cid}/{path:.*}")
async def ipfs_content(request: web.Request) -> web.StreamResponse:
    cid = request.match_info["cid"]
    path = request.match_info.get("path", "")
    fmt = trustless.wanted_format(request)
    if fmt == "car":
        return await trustless.serve_car(request, request.app[DB], _car_dir(request), cid, path)
    if fmt != "raw":
        # Only verifiable responses are offered; a gateway answers 406 for what it cannot produce.
        return web.json_response({"error": "unsupported format: ask for ?format=raw or ?format=car "
                                  "(Accept: application/vnd.ipld.raw or application/vnd.ipld.car)",
                                  "detail": request.query.get("format")}, status=406)
    if path:
        raise InvalidParameter("a raw block is addressed by its CID alone, without a path", path)
    data = await blocks.find_block(request.app[DB], _car_dir(request), cid)
    if data is None:
        raise NotFound("no such block", cid)
    headers = {"Content-Type": RAW_TYPE, "ETag": f'"{cid}.raw"', "X-Content-Type-Options": "nosniff",
               "Cache-Control": "public, max-age=29030400, immutable"}
    if piece._etag_matches(request.headers.get("If-None-Match"), headers["ETag"]):
        return web.Response(status=304, headers={k: headers[k] for k in ("ETag", "Cache-Control")})
    # aiohttp answers HEAD with the headers of this response (Content-Length included) and no body.
    return web.Response(body=data, headers=headers)


@routes.get("/index/{key}")
async def index_of(request: web.Request) -> web.Response:
    prep = await bundle.find_preparation(request.app[DB], request.match_info["key"])
    if not prep.get("indexCid"):
        raise NotFound("this preparation has no index yet", {"status": prep.get("status"),
                                                              "indexError": prep.get("indexError")})
    return json_response({"id": prep["_id"], "name": prep["name"], "indexCid": prep["indexCid"],
                          "indexPin": prep.get("indexPin")})


@routes.get("/bundle/{key}")
@routes.get("/bundle/{key}/{path:.*}")
async def bundle_tar(request: web.Request) -> web.StreamResponse:
    return await bundle.serve(request, request.app[DB], _car_dir(request), request.match_info["key"],
                              request.match_info.get("path", ""))
