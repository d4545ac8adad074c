from aiohttp import web

from services.preparation import handlers
from services.preparation import schemas as s
from shared import timeline
from shared.api import CONFIG, DB, json_response
from shared.operations import operation, page

routes = web.RouteTableDef()


@routes.post("/preparation")
@operation("Start preparing a dataset: scan it into chunks, then pack each into a CAR", body=s.NEW_PREPARATION,
           responses={201: s.CREATED}, errors={409: "a preparation with this name exists"})
async def create(request: web.Request, body: dict) -> web.Response:
    return json_response(await handlers.create(request.app[DB], request.app[CONFIG], body), status=201)


@routes.post("/preparation/{id}")
@operation("Pause, resume (retrying failed chunks, refreshing those whose files changed), remove or rescan a "
           "preparation", path={"id": s.ID}, body=s.NEW_STATE, responses={200: s.STATE},
           errors={404: "no such preparation", 409: "a rescan of a preparation whose first scan is still running"})
async def set_state(request: web.Request, id: str, body: dict) -> web.Response:
    return json_response(await handlers.change(request.app[DB], id, body))


@routes.post("/preparation/{id}/materialize")
@operation("Write the CAR files of an inline preparation's chunks (worker jobs on the host with out_dir)",
           path={"id": s.ID}, body=s.MATERIALIZE, responses={200: s.QUEUED},
           errors={404: "no such preparation or chunk", 409: "the chunk is not completed or already has a CAR"})
async def materialize(request: web.Request, id: str, body: dict) -> web.Response:
    return json_response(await handlers.materialize(request.app[DB], id, body.get("chunk")))


@routes.post("/preparation/{id}/prune-cars")
@operation("Remove the CAR files of chunks whose deals are active at minActive providers or more, "
           "serving them inline from the dataset (when the source files are unchanged)",
           path={"id": s.ID}, body=s.PRUNE, responses={200: s.QUEUED}, errors={404: "no such preparation"})
async def prune_cars(request: web.Request, id: str, body: dict) -> web.Response:
    min_active = body.get("minActive")
    return json_response(await handlers.prune_cars(request.app[DB], id, 3 if min_active is None else min_active))


@routes.get("/preparation/{id}/conversions")
@operation("The materialize and prune jobs of a preparation", path={"id": s.ID},
           query=page(default_limit=100, max_limit=1000), responses={200: s.CONVERSIONS},
           errors={404: "no such preparation"})
async def conversion_list(request: web.Request, id: str, offset: int, limit: int) -> web.Response:
    return json_response(await handlers.conversion_list(request.app[DB], id, offset, limit))


@routes.get("/preparations")
@operation("A page of the preparations, oldest first, with their progress",
           query=page(default_limit=20, max_limit=1000), responses={200: s.PREPARATIONS})
async def list_all(request: web.Request, offset: int, limit: int) -> web.Response:
    return json_response(await handlers.list_page(request.app[DB], offset, limit))


@routes.get("/preparations/history")
@operation("Bytes prepared over time: the chunks packed into CARs in each bucket of a window",
           query={"preparation": s.ID, **timeline.QUERY}, responses={200: s.HISTORY},
           errors={400: "a bad parameter, since not before until, or more than 1000 buckets"})
async def history(request: web.Request, preparation: str | None, since: int | None, until: int | None,
                  bucket: int) -> web.Response:
    return json_response(await handlers.prepared_history(request.app[DB], preparation, since, until, bucket))


@routes.get("/preparation/{id}")
@operation("One preparation with a page of its chunks and its first problems", path={"id": s.ID},
           query=page(default_limit=20, max_limit=1000), responses={200: s.DETAILS},
           errors={404: "no such preparation"})
async def details(request: web.Request, id: str, offset: int, limit: int) -> web.Response:
    return json_response(await handlers.details(request.app[DB], id, offset, limit))


@routes.get("/generation/{id}")
@operation("One chunk with a page of its files", path={"id": s.ID}, query=page(default_limit=100),
           responses={200: s.GENERATION}, errors={404: "no such chunk"})
async def generation(request: web.Request, id: str, offset: int, limit: int) -> web.Response:
    return json_response(await handlers.generation(request.app[DB], id, offset, limit))


@routes.get("/preparation/{id}/files")
@operation("The file -> CID -> piece mapping of a dataset, by path", path={"id": s.ID},
           query={"path": s.PATH_PREFIX, **page(default_limit=100)}, responses={200: s.FILES},
           errors={404: "no such preparation"})
async def files(request: web.Request, id: str, path: str, offset: int, limit: int) -> web.Response:
    return json_response(await handlers.files(request.app[DB], id, path, offset, limit))


@routes.get("/status")
@operation("The suite at a glance: modules by host, workers and their jobs, the database, counts by state",
           responses={200: s.STATUS})
async def status(request: web.Request) -> web.Response:
    return json_response(await handlers.status(request.app[DB], request.app[CONFIG]))
