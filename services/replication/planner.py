"""A round's reading and deciding: everything it needs in a fixed number of bulk queries
(whatever the number of chunks), then a plan of (chunk, provider) proposals computed in memory."""
from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from pymongo.asynchronous.database import AsyncDatabase

from services.replication import backoff as backoff_module
from services.replication.counting import FIELDS, PieceState, Rules, piece_state
from shared import models
from shared.models import DealStatus, Status

DAY = 86400.0
_CHUNK_FIELDS = {"index": 1, "status": 1, "dataCid": 1, "pieceCid": 1, "pieceSize": 1, "carSize": 1}
# Answered proposals that are deals (or still may become one): what dealsPerDay counts.
_NOT_DEALS = (DealStatus.REJECTED.value, DealStatus.ERROR.value)


@dataclass(frozen=True)
class Chunk:
    id: str
    index: int
    data_cid: str
    piece_cid: str
    piece_size: int
    car_size: int


@dataclass
class RoundData:
    preparation: dict | None
    chunks: list[Chunk] = field(default_factory=list)  # packed ones, by index
    total_chunks: int = 0
    generation_done: bool = False  # the dataset is scanned and every chunk packed
    pieces: dict[str, PieceState] = field(default_factory=dict)
    max_replicas: int = 0  # the smallest maxReplicas of the requests on this dataset
    pending_by_provider: Counter = field(default_factory=Counter)
    today_by_provider: Counter = field(default_factory=Counter)
    backoff: backoff_module.Backoff = field(default_factory=backoff_module.Backoff)
    pending_verified_bytes: int = 0
    queries: int = 0  # database queries the load made (bench/replication.py prints it)


async def _aggregate(db: AsyncDatabase, collection: str, pipeline: list) -> list[dict]:
    return await (await db[collection].aggregate(pipeline)).to_list(None)


async def load(db: AsyncDatabase, request: dict, rules: Rules) -> RoundData:
    preparation_id = request["preparationId"]
    preparation = await db[models.SCANNING].find_one({"_id": preparation_id}, {"status": 1, "name": 1})
    if preparation is None:
        return RoundData(None, queries=1)
    # {"$eq": x}: the embedded server uses an index only for that form (README).
    chunk_docs, siblings, backoff, today, pending_verified, *pending = await asyncio.gather(
        db[models.GENERATION].find({"preparationId": {"$eq": preparation_id}}, _CHUNK_FIELDS).to_list(None),
        db[models.REPLICATION].find({"preparationId": {"$eq": preparation_id}}, {"maxReplicas": 1}).to_list(None),
        backoff_module.load(db, rules.now),
        db[models.DEAL_STATE].find({"createdAt": {"$gte": rules.now - DAY}}, {"provider": 1, "state": 1}).to_list(None),
        db[models.DEAL_STATE].find({"client": {"$eq": request["client"]}, "verified": True,
                                    "state": {"$in": list(models.DEAL_PENDING_STATES)}}, {"pieceSize": 1}).to_list(None),
        *(_aggregate(db, models.DEAL_STATE, [{"$match": {"state": {"$eq": state}}},
                                             {"$group": {"_id": "$provider", "n": {"$sum": 1}}}])
          for state in models.DEAL_PENDING_STATES))
    data = RoundData(preparation, queries=6 + len(models.DEAL_PENDING_STATES))
    packed = [doc for doc in chunk_docs if doc.get("status") == Status.COMPLETED.value and doc.get("pieceCid")]
    data.chunks = sorted((Chunk(d["_id"], d["index"], d["dataCid"], d["pieceCid"], int(d["pieceSize"]),
                                int(d.get("carSize") or 0)) for d in packed), key=lambda c: c.index)
    data.total_chunks = len(chunk_docs)
    data.generation_done = preparation.get("status") == Status.COMPLETED.value and len(packed) == len(chunk_docs)
    data.max_replicas = min([request["maxReplicas"], *(s.get("maxReplicas") or request["maxReplicas"] for s in siblings)])
    data.backoff = backoff
    data.today_by_provider = Counter(d.get("provider") for d in today if d.get("state") not in _NOT_DEALS)
    data.pending_verified_bytes = sum(int(d.get("pieceSize") or 0) for d in pending_verified)
    for rows in pending:
        for row in rows:
            data.pending_by_provider[row["_id"]] += row["n"]
    by_piece: dict[str, list[dict]] = {c.piece_cid: [] for c in data.chunks}
    if by_piece:
        data.queries += 1
        async for deal in db[models.DEAL_STATE].find({"pieceCid": {"$in": list(by_piece)}}, FIELDS):
            by_piece[deal["pieceCid"]].append(deal)
    data.pieces = {piece: piece_state(deals, rules) for piece, deals in by_piece.items()}
    return data


@dataclass(frozen=True)
class Assignment:
    chunk: Chunk
    provider: str


@dataclass
class Plan:
    assignments: list[Assignment] = field(default_factory=list)
    waiting: str | None = None  # why proposals that are needed were held back (DataCap)


def plan(data: RoundData, request: dict, candidates: list[str], now: float,
         datacap: int | None = None) -> Plan:
    """Best-first providers for every chunk short of minReplicas, never past the smallest
    maxReplicas, skipping providers holding or having lost the piece, those in backoff and those
    at their pacing limits. `datacap`: bytes the client may still propose verified (None: unverified)."""
    out = Plan()
    minimum = request["minReplicas"]
    ceiling = min(minimum, data.max_replicas)
    capacity = {p: min(request["maxPendingPerProvider"] - data.pending_by_provider.get(p, 0),
                       request["dealsPerDay"] - data.today_by_provider.get(p, 0)) for p in candidates}
    budget = datacap
    for chunk in data.chunks:
        state = data.pieces.get(chunk.piece_cid) or PieceState()
        wanted = ceiling - state.live
        for provider in candidates:
            if wanted <= 0:
                break
            if provider in state.excluded or capacity[provider] <= 0 or data.backoff.blocked(provider, chunk.piece_cid, now):
                continue
            if budget is not None:
                if budget < chunk.piece_size:
                    out.waiting = (f"waiting for DataCap: {request['client']} has too little left for "
                                   f"a {chunk.piece_size}-byte verified deal ({max(datacap or 0, 0)} bytes available "
                                   f"after {data.pending_verified_bytes} bytes in pending verified proposals)")
                    return out
                budget -= chunk.piece_size
            capacity[provider] -= 1
            wanted -= 1
            out.assignments.append(Assignment(chunk, provider))
    return out


def summary(data: RoundData, minimum: int, proposed: Counter) -> dict:
    """The counters GET /replications shows; `proposed`: new live proposals per piece this round."""
    completed = in_progress = active = 0
    for chunk in data.chunks:
        state = data.pieces.get(chunk.piece_cid) or PieceState()
        active += state.active
        if state.active >= minimum:
            completed += 1
        elif state.pending + proposed.get(chunk.piece_cid, 0) > 0:
            in_progress += 1
    total = data.total_chunks
    return {"replicationFactor": round(active / total, 3) if total else 0.0, "replicationCompleted": completed,
            "replicationInProgress": in_progress, "replicationTotal": total,
            "complete": data.generation_done and total > 0 and completed == total}
