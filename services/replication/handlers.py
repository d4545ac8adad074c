"""One function per replication API action; the routes only translate HTTP to these."""
from __future__ import annotations

import asyncio
import csv
import io

from pymongo.asynchronous.database import AsyncDatabase

from services.replication import carimport, requests
from services.replication.proposer import deal_url
from services.replication.planner import Chunk
from shared import database, models
from shared.api import InvalidParameter, NotFound
from shared.config import Config

CSV_COLUMNS = ("miner_id", "deal_cid", "filename", "data_cid", "piece_cid", "start_epoch", "full_url", "client")
CSV_PAGE = 1000
DEAL_VIEW = ("client", "provider", "proposalCid", "dataCid", "dealId", "sectorId", "activation", "expiration",
             "state", "startEpoch", "endEpoch")


def view(doc: dict) -> dict:
    out = {"id": doc["_id"], "datasetId": doc["preparationId"]}
    for key in ("minReplicas", "maxReplicas", "client", "criteria", "state", "status", "error", "verified",
                "duration", "startDelay", "price", "keepUnsealed", "announceToIpni", "urlTemplate",
                "maxPendingPerProvider", "dealsPerDay", "createdAt", "lastRoundAt", "replicationFactor",
                "replicationCompleted", "replicationInProgress", "replicationTotal"):
        out[key] = doc.get(key)
    return out


async def _dataset(db: AsyncDatabase, key: str) -> dict:
    if not isinstance(key, str) or not key.strip():
        raise InvalidParameter("datasetId must be a non-empty string")
    scan = await db[models.SCANNING].find_one({"_id": key}, {"_id": 1})
    if scan is None:
        scan = await db[models.SCANNING].find_one({"name": {"$eq": key}}, {"_id": 1})
    if scan is None:
        raise InvalidParameter("unknown datasetId: no preparation has this id or name", key[:200])
    return scan


async def create(db: AsyncDatabase, config: Config, body: dict) -> dict:
    """POST /replication: for a prepared dataset, or for a CAR file (registered as a preparation)."""
    fields = requests.new_request(body, config)
    if body.get("datasetId") is not None:
        scan = await _dataset(db, body["datasetId"])
        doc = models.replication_request({"preparationId": scan["_id"], **fields})
        await db[models.REPLICATION].insert_one(doc)
        return {"id": doc["_id"], "datasetId": scan["_id"]}
    car = await carimport.inspect(body, config.deal_preparation_service.dataset_roots)
    scan, chunk = carimport.records(car)
    doc = models.replication_request({"preparationId": scan["_id"], **fields})
    # The preparation first: a crash between the writes leaves an idle imported dataset, never a
    # request without its dataset.
    await db[models.SCANNING].insert_one(scan)
    await db[models.GENERATION].insert_one(chunk)
    await db[models.REPLICATION].insert_one(doc)
    return {"id": doc["_id"], "datasetId": scan["_id"], "dataCid": car.data_cid, "pieceCid": car.piece_cid,
            "pieceSize": car.piece_size, "carSize": car.size}


async def find(db: AsyncDatabase, request_id: str) -> dict:
    doc = await db[models.REPLICATION].find_one({"_id": request_id})
    if doc is None:
        raise NotFound(f"no replication request with id {request_id[:100]!r}")
    return doc


async def update(db: AsyncDatabase, config: Config, request_id: str, body: dict) -> dict:
    """POST /replication/{id}: change its replicas, criteria or client; pause, resume or remove it."""
    request = await find(db, request_id)
    changes = requests.update(body, request, config)
    if changes.get("state") == "removed":
        # Its deals stay recorded (DealState); only the request goes.
        await db[models.REPLICATION].delete_one({"_id": request_id})
        return {"id": request_id, "state": "removed"}
    if changes:
        # Due at once: a resumed or changed request should not wait out the interval.
        await db[models.REPLICATION].update_one({"_id": request_id}, {"$set": {**changes, "nextRoundAt": 0.0}})
    return view({**request, **changes})


async def list_page(db: AsyncDatabase, offset: int, limit: int) -> dict:
    docs, total = await asyncio.gather(
        db[models.REPLICATION].find({}).sort("_id", 1).skip(offset).limit(limit).to_list(None),
        database.count(db[models.REPLICATION], {}))
    return {"replications": [view(d) for d in docs], "total": total, "offset": offset, "limit": limit}


def deal_view(deal: dict) -> dict:
    return {"id": deal["_id"], **{key: deal.get(key) for key in DEAL_VIEW}}


async def _deals_of(db: AsyncDatabase, pieces: list[str], query: dict | None = None) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {piece: [] for piece in pieces}
    if pieces:  # never `$in: []`, which the embedded server answers by reading everything
        async for deal in db[models.DEAL_STATE].find({"pieceCid": {"$in": pieces}, **(query or {})}).sort("_id", 1):
            out[deal["pieceCid"]].append(deal)
    return out


async def details(db: AsyncDatabase, request_id: str, offset: int, limit: int) -> dict:
    """GET /replication/{id}: the request and a page of its chunks, each with its deals."""
    request = await find(db, request_id)
    owned = {"preparationId": {"$eq": request["preparationId"]}}
    chunks, total = await asyncio.gather(
        db[models.GENERATION].find(owned, {"index": 1, "dataCid": 1, "pieceCid": 1, "pieceSize": 1, "status": 1}).sort(
            "index", 1).skip(offset).limit(limit).to_list(None),
        database.count(db[models.GENERATION], owned))
    deals = await _deals_of(db, list({c["pieceCid"] for c in chunks if c.get("pieceCid")}))
    page = [{"generationRequestId": c["_id"], "index": c["index"], "status": c.get("status"),
             "dataCid": c.get("dataCid"), "pieceCid": c.get("pieceCid"), "pieceSize": c.get("pieceSize"),
             "deals": [deal_view(d) for d in deals.get(c.get("pieceCid"), [])]} for c in chunks]
    return {**view(request), "replicationDetails": page, "total": total,
            "offset": offset, "limit": limit}


async def csv_rows(db: AsyncDatabase, request_id: str, provider: str | None):
    """GET /replication/{id}/csv: the offline-import list Singularity v1 wrote, one line per deal
    of this request's client still `proposed`, a page of chunks at a time."""
    request = await find(db, request_id)
    if provider is not None and not provider.strip():
        provider = None
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    yield out.getvalue()
    last = -1
    while True:
        chunks = await db[models.GENERATION].find(
            {"preparationId": {"$eq": request["preparationId"]}, "index": {"$gt": last}},
            {"index": 1, "dataCid": 1, "pieceCid": 1, "pieceSize": 1, "carSize": 1}).sort(
            "index", 1).limit(CSV_PAGE).to_list(None)
        if not chunks:
            return
        last = chunks[-1]["index"]
        by_piece = {c["pieceCid"]: c for c in chunks if c.get("pieceCid")}
        query = {"client": {"$eq": request["client"]}, "state": {"$eq": models.DealStatus.PROPOSED.value}}
        if provider:
            query["provider"] = {"$eq": provider}
        deals = await _deals_of(db, list(by_piece), query)
        out = io.StringIO()
        writer = csv.writer(out)
        for piece, found in deals.items():
            c = by_piece[piece]
            chunk = Chunk(c["_id"], c["index"], c.get("dataCid") or "", piece, c.get("pieceSize") or 0, c.get("carSize") or 0)
            for deal in found:
                writer.writerow([deal.get("provider"), deal.get("proposalCid") or "", f"{chunk.data_cid}.car",
                                 chunk.data_cid, piece, deal.get("startEpoch") if deal.get("startEpoch") is not None else "",
                                 deal.get("url") or deal_url(request.get("urlTemplate") or "", chunk) or "",
                                 deal.get("client")])
        if out.getvalue():
            yield out.getvalue()
        if len(chunks) < CSV_PAGE:
            return
