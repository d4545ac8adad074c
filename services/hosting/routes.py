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

from services.hosting import blocks, bundle, catalog, piece, trustless
from services.hosting import schemas as s
from shared import cars, chunkdata
from shared.api import CONFIG, DB, InvalidParameter, NotFound, json_response
from shared.operations import Content, Empty, operation
from shared.schema import Text

routes = web.RouteTableDef()

CAR_TYPE = "application/vnd.ipld.car"
RAW_TYPE = "application/vnd.ipld.raw"


def _car_dir(request: web.Request) -> str:
    return request.app[CONFIG].http_hosting_service.car_dir


def _roots(request: web.Request) -> list[str]:
    return request.app[CONFIG].deal_preparation_service.dataset_roots


@routes.get(r"/{cid:[a-z0-9]+}.car")
@operation("A CAR file", path={"cid": s.DATA_CID}, headers=s.RANGE_HEADERS, head=True,
           responses=s.file_answers(CAR_TYPE, "the CAR file"), errors=s.RANGE_ERRORS)
async def car_file(request: web.Request, cid: str) -> web.StreamResponse:
    data_cid = cid
    body = await catalog.car_file(request.app[DB], _car_dir(request), data_cid, _roots(request))
    if body is None:
        raise NotFound("no such CAR file", data_cid)
    # The same range handling as /piece (a multi-range or malformed Range gets the whole file, not
    # aiohttp's 416; "bytes=-0" is a 416), and an ETag that is the content address itself.
    return await piece.serve(request, body, body.size, body.size, f'"{data_cid}"', CAR_TYPE)


@routes.get("/piece/{cid}")
@operation("A piece: the CAR, then zeros up to the unpadded piece size", path={"cid": s.CID},
           headers=s.RANGE_HEADERS, head=True, responses=s.file_answers(piece.PIECE_TYPE, "the piece"),
           errors=s.RANGE_ERRORS)
async def piece_bytes(request: web.Request, cid: str) -> web.StreamResponse:
    piece_cid = cid
    if cars.valid_cid(piece_cid) is None:
        raise NotFound("no such piece", piece_cid)
    refused = None
    for gen in await catalog.chunks(request.app[DB], "pieceCid", piece_cid):
        car = catalog.chunk_body(request.app[DB], _car_dir(request), _roots(request), gen)
        if car is None or not gen.get("pieceSize") or gen.get("carSize") is None:
            continue
        try:
            return await piece.serve(request, car, int(gen["carSize"]), cars.unpadded(int(gen["pieceSize"])),
                                     f'"{piece_cid}"')
        except chunkdata.Unservable as exc:  # an inline copy whose source changed: another copy may serve
            refused = exc
    if refused is not None:
        raise refused
    raise NotFound("no such piece", piece_cid)


@routes.get("/ipfs/{cid}")
@routes.get("/ipfs/{cid}/{path:.*}")
@operation("A block, or a CAR of a path (trustless gateway)", path={"cid": s.CID, "path": s.DATASET_PATH},
           query={"format": Text("raw (one block) or car (the blocks of a path, see dag-scope)"),
                  "dag-scope": Text("car: block, entity or all (the default)"),
                  "entity-bytes": Text("car: from:to, the bytes of a file whose blocks to send (to may be *)")},
           headers={"Accept": Text("application/vnd.ipld.raw or application/vnd.ipld.car stand for ?format="),
                    "If-None-Match": s.RANGE_HEADERS["If-None-Match"]}, head=True,
           responses={200: Content((RAW_TYPE, trustless.CAR_CONTENT_TYPE), "the block's bytes, or a CARv1 "
                                   "in depth-first order without duplicates"),
                      304: Empty("the client's copy is current")},
           errors={400: "a bad CID, dag-scope or entity-bytes, or a path with format=raw",
                   404: "no such block or path on this host", 406: "a format other than raw or car"})
async def ipfs_content(request: web.Request, cid: str, path: str = "", format: str | None = None,
                       **car: str | None) -> web.StreamResponse:
    fmt = trustless.wanted_format(request)
    if fmt == "car":
        return await trustless.serve_car(request, request.app[DB], _car_dir(request), cid, path or "")
    if fmt != "raw":
        # Only verifiable responses are offered; a gateway answers 406 for what it cannot produce.
        return web.json_response({"error": "unsupported format: ask for ?format=raw or ?format=car "
                                  "(Accept: application/vnd.ipld.raw or application/vnd.ipld.car)",
                                  "detail": format}, status=406)
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
@operation("The root of a prepared dataset's index", path={"key": s.PREPARATION}, responses={200: s.INDEX},
           errors={404: "no such preparation, or no index yet"})
async def index_of(request: web.Request, key: str) -> web.Response:
    prep = await bundle.find_preparation(request.app[DB], key)
    if not prep.get("indexCid"):
        raise NotFound("this preparation has no index yet", {"status": prep.get("status"),
                                                              "indexError": prep.get("indexError")})
    return json_response({"id": prep["_id"], "name": prep["name"], "indexCid": prep["indexCid"],
                          "indexPin": prep.get("indexPin")})


@routes.get("/bundle/{key}")
@routes.get("/bundle/{key}/{path:.*}")
@operation("A tar of a dataset, or of a folder or file in it, assembled from the CARs as it streams",
           path={"key": s.PREPARATION, "path": s.DATASET_PATH},
           query={"filename": Text("the download's name (.tar is added)")}, head=True,
           responses={200: Content("application/x-tar", "the tar")},
           errors={404: "no such preparation or path, or a chunk of it not prepared or not on this host"})
async def bundle_tar(request: web.Request, key: str, filename: str | None, path: str = "") -> web.StreamResponse:
    return await bundle.serve(request, request.app[DB], _car_dir(request), key, path, filename)
