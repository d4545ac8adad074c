"""Sending a round's planned proposals: one at a time per provider, `concurrency` providers at once.

Before each proposal the request is re-read (a pause stops new proposals within one proposal's
time) and the piece is locked: a ReplicaLock document inserted with the piece as its unique _id.
Holding it, the replicator recounts the piece's live deals and proposes only while the count is
below both the request's minReplicas and the smallest maxReplicas, so replicators working the same
piece for several requests never pass maxReplicas. A lock left by a replicator that died (its
health report expired) or held past any proposal's time is taken over.
"""
from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict

import aiohttp
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.replication import backoff as backoff_module
from services.replication import clients
from services.replication.counting import FIELDS, Rules, piece_state
from services.replication.planner import Assignment, RoundData
from shared import jobs, models
from shared.config import Config

log = logging.getLogger(__name__)


def deal_url(template: str, chunk) -> str | None:
    if not template:
        return None  # an offline deal: the provider imports the CAR itself
    return (template.replace("{dataCid}", chunk.data_cid).replace("{pieceCid}", chunk.piece_cid)
            .replace("{PIECE_CID}", chunk.piece_cid))


def proposal_body(request: dict, chunk, provider: str, start_epoch: int | None) -> dict:
    url = deal_url(request["urlTemplate"], chunk)
    body = {"wallet": request["client"], "keyPath": request["keyPath"], "provider": provider,
            "pieceCid": chunk.piece_cid, "pieceSize": chunk.piece_size, "dataCid": chunk.data_cid,
            "verified": request["verified"], "duration": request["duration"], "price": request["price"],
            "keepUnsealed": request["keepUnsealed"], "announceToIpni": request["announceToIpni"]}
    if url is not None:
        body.update(url=url, carSize=chunk.car_size)
    if start_epoch is not None:
        body["startEpoch"] = start_epoch
    return body


class Proposer:
    def __init__(self, db: AsyncDatabase, session: aiohttp.ClientSession, config: Config, worker_id: str,
                 request: dict, data: RoundData, rules: Rules, start_epoch: int | None):
        self.db, self.session, self.config, self.worker_id = db, session, config, worker_id
        self.request, self.data, self.rules, self.start_epoch = request, data, rules, start_epoch
        settings = config.replication_service
        self.base, self.cap = settings.backoff_base, settings.backoff_cap
        self.concurrency = settings.concurrency
        self.lease = 2 * config.deal_making_service.timeout + 60
        self.worker_timeout = config.deal_preparation_service.worker_timeout
        self.error: str | None = None
        self.stopped = False
        self.proposed: Counter = Counter()  # new live proposals per piece
        self.outcomes: Counter = Counter()
        self._pieces: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._live: tuple[float, set[str]] | None = None

    async def run(self, assignments: list[Assignment]) -> None:
        by_provider: dict[str, list[Assignment]] = defaultdict(list)
        for item in assignments:
            by_provider[item.provider].append(item)
        gate = asyncio.Semaphore(self.concurrency)

        async def provider_queue(items: list[Assignment]) -> None:
            async with gate:
                for item in items:
                    if self.stopped:
                        return
                    if self.data.backoff.blocked(item.provider, item.chunk.piece_cid, models.now()):
                        self.outcomes["backoff"] += 1
                        continue
                    await self.one(item)

        await asyncio.gather(*(provider_queue(items) for items in by_provider.values()))

    async def _still_wanted(self) -> bool:
        doc = await self.db[models.REPLICATION].find_one({"_id": self.request["_id"]}, {"state": 1, "workerId": 1})
        if doc is None or doc.get("state") != "active" or doc.get("workerId") != self.worker_id:
            self.stopped = True  # paused, removed, or taken over by another replicator
            return False
        return True

    async def one(self, item: Assignment) -> None:
        piece = item.chunk.piece_cid
        async with self._pieces[piece]:
            if self.stopped or not await self._still_wanted():
                return
            if not await self._lock(piece, item.provider):
                self.outcomes["locked"] += 1
                return
            try:
                await self._propose_locked(item)
            finally:
                await self.db[models.REPLICA_LOCK].delete_one({"_id": piece, "workerId": self.worker_id})

    async def _propose_locked(self, item: Assignment) -> None:
        piece = item.chunk.piece_cid
        deals = await self.db[models.DEAL_STATE].find({"pieceCid": {"$eq": piece}}, FIELDS).to_list(None)
        self.rules.now = models.now()
        state = piece_state(deals, self.rules)
        if (item.provider in state.excluded or state.live >= self.request["minReplicas"]
                or state.live >= self.data.max_replicas):
            self.outcomes["not needed"] += 1
            return
        answer = await clients.propose(self.session, self.config,
                                       proposal_body(self.request, item.chunk, item.provider, self.start_epoch))
        if answer.accepted:
            await backoff_module.succeeded(self.db, self.data.backoff, piece, item.provider)
            self.proposed[piece] += 1
            self.outcomes["identical" if answer.body.get("identical") else "proposed"] += 1
            return
        if answer.status in (422, 502):  # refused by the provider, or boost failed to reach it
            wait = await backoff_module.failed(self.db, self.data.backoff, piece, item.provider, answer.message,
                                               self.base, self.cap)
            self.outcomes["rejected" if answer.status == 422 else "failed"] += 1
            log.info("replication %s: %s refused %s (%s); backing off %.0fs", self.request["_id"], item.provider,
                     piece, answer.message, wait)
            return
        if answer.status == 409:  # the deal making service is sending this very proposal already
            self.outcomes["in flight"] += 1
            return
        self.stopped = True
        if answer.status == 0:
            self.error = answer.message
        else:
            # 400 (it refuses our parameters, e.g. a keyPath outside its key_dir), 401, 503 (no boost).
            self.error = f"the deal making service refused the proposal (HTTP {answer.status}): {answer.message}"

    async def _lock(self, piece: str, provider: str) -> bool:
        doc = {"_id": piece, "workerId": self.worker_id, "requestId": self.request["_id"], "provider": provider,
               "at": models.now()}
        for _ in range(2):
            try:
                await self.db[models.REPLICA_LOCK].insert_one(doc)
                return True
            except DuplicateKeyError:
                held = await self.db[models.REPLICA_LOCK].find_one({"_id": piece})
                if held is None:
                    continue
                if held.get("workerId") == self.worker_id:
                    return False
                at = held.get("at") if isinstance(held.get("at"), (int, float)) else 0
                if held.get("workerId") in await self._live_workers() and models.now() - at < self.lease:
                    return False
                log.info("taking over the lock on %s left by %s", piece, held.get("workerId"))
                await self.db[models.REPLICA_LOCK].delete_one({"_id": piece, "workerId": held.get("workerId")})
        return False

    async def _live_workers(self) -> set[str]:
        now = models.now()
        if self._live is None or now - self._live[0] > 1.0:
            self._live = (now, await jobs.live_workers(self.db, self.worker_timeout))
        return self._live[1]


__all__ = ["Proposer", "proposal_body", "deal_url"]
