"""The hosting service's endpoints.

    GET|HEAD /{dataCid}.car            the CAR file (aiohttp FileResponse: ranges, sendfile)
    GET|HEAD /piece/{pieceCid}         the piece: CAR + zero padding to the unpadded piece size
    GET|HEAD /ipfs/{cid}?format=raw    one block (trustless gateway subset)
    GET      /index/{name or id}       {"id", "name", "indexCid", "indexPin"} of a preparation
    GET|HEAD /bundle/{name or id}[/{path}]?filename=x.tar   a tar of a folder or file

Only what belongs to an existing preparation is served (catalog.py); who needs which token is
access.py's policy.
"""
from __future__ import annotations

from aiohttp import web

from services.hosting import blocks, bundle, catalog, paths, piece
from services.hosting import schemas as s
from shared.api import CONFIG, DB, NotFound, json_response
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
    path = await catalog.car_file(request.app[DB], _car_dir(request), data_cid, _roots(request))
    if path is None:
        raise NotFound("no such CAR file", data_cid)
    # The same range handling as /piece (a multi-range or malformed Range gets the whole file, not
    # aiohttp's 416; "bytes=-0" is a 416), and an ETag that is the content address itself.
    size = path.stat().st_size
    return await piece.serve(request, path, size, size, f'"{data_cid}"', CAR_TYPE)


@routes.get("/piece/{cid}")
@operation("A piece: the CAR, then zeros up to the unpadded piece size", path={"cid": s.CID},
           headers=s.RANGE_HEADERS, head=True, responses=s.file_answers(piece.PIECE_TYPE, "the piece"),
           errors=s.RANGE_ERRORS)
async def piece_bytes(request: web.Request, cid: str) -> web.StreamResponse:
    piece_cid = cid
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
@operation("One block, as a trustless gateway serves it", path={"cid": s.CID},
           query={"format": Text("raw: the only format offered")},
           headers={"Accept": Text("application/vnd.ipld.raw stands for ?format=raw"),
                    "If-None-Match": s.RANGE_HEADERS["If-None-Match"]},
           responses={200: Content(RAW_TYPE, "the block's bytes"), 304: Empty("the client's copy is current")},
           errors={404: "no such block on this host", 406: "a format other than raw was asked for"})
async def ipfs_block(request: web.Request, cid: str, format: str | None) -> web.StreamResponse:
    fmt = format
    accept = request.headers.get("Accept", "")
    if fmt != "raw" and RAW_TYPE not in accept:
        # Only single blocks are offered; a gateway answers 406 for what it cannot produce.
        return web.json_response({"error": "only ?format=raw (Accept: application/vnd.ipld.raw) is supported",
                                  "detail": None}, status=406)
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
