"""The replicator: claims due replication requests one at a time (the shared claim), runs a round
for each, and gives it back with what the round found and when the next one is due.

A round: load (planner.load), ask ranking for candidates with the request's criteria, check the
wallet's DataCap for verified deals, plan, propose (proposer), summarise. Nothing is guessed:
ranking or Lotus unreachable fails the round with that error recorded, and the next round retries.
Completed requests are still checked every round, so a lost deal puts them back to work.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter

import aiohttp
from pymongo.asynchronous.database import AsyncDatabase

from services.replication import clients, planner
from services.replication.clients import RoundError
from services.replication.counting import Rules
from services.replication.proposer import Proposer
from shared import database, jobs, models
from shared.config import Config
from shared.deal_params import EPOCHS_PER_DAY
from shared.lotus import LotusClient, LotusError
from shared.models import Status

log = logging.getLogger(__name__)

CLAIM_SORT = [("nextRoundAt", 1)]


async def rules(db: AsyncDatabase, config: Config) -> Rules:
    tracked = await db[models.DEAL_TRACKER].find_one({"_id": models.DEAL_TRACKER_ID}, {"height": 1})
    return Rules(models.now(), int(config.replication_service.renew_before * EPOCHS_PER_DAY),
                 2 * config.deal_making_service.timeout + 30, tracked.get("height") if tracked else None)


async def run_round(db: AsyncDatabase, session: aiohttp.ClientSession, config: Config, worker_id: str,
                    request: dict) -> dict:
    """One round of `request` (claimed by `worker_id`); the fields to store on it."""
    round_rules = await rules(db, config)
    data = await planner.load(db, request, round_rules)
    if data.preparation is None:
        return {"status": Status.ERROR.value, "error": "the dataset no longer exists"}
    error = None
    proposer = None
    minimum = request["minReplicas"]
    needed = any((data.pieces[c.piece_cid].live < min(minimum, data.max_replicas)) for c in data.chunks)
    if needed:
        try:
            candidates = await clients.candidates(session, config, request["criteria"])
            connection = config.connection
            lotus = LotusClient(session, connection.full_node_api, connection.full_node_token, timeout=30)
            start_epoch, datacap = None, None
            try:
                height, _ = await lotus.chain_head()
                start_epoch = height + request["startDelay"]
                if request["verified"]:
                    granted = await lotus.verified_client_status(request["client"])
                    datacap = (granted or 0) - data.pending_verified_bytes
            except LotusError as exc:
                if request["verified"]:
                    raise RoundError(f"cannot check the wallet's DataCap on Lotus ({connection.full_node_api}): {exc}")
                # An unverified deal needs no chain read: boost picks the start epoch itself.
            chosen = planner.plan(data, request, candidates, models.now(), datacap)
            error = chosen.waiting
            proposer = Proposer(db, session, config, worker_id, request, data, round_rules, start_epoch)
            await proposer.run(chosen.assignments)
            error = proposer.error or error
            if proposer.outcomes:
                log.info("replication %s round: %s", request["_id"], dict(proposer.outcomes))
        except RoundError as exc:
            error = str(exc)
    counters = planner.summary(data, minimum, proposer.proposed if proposer else Counter())
    complete = counters.pop("complete")
    status = Status.ERROR.value if error else Status.COMPLETED.value if complete else Status.ACTIVE.value
    return {"status": status, "error": error, **counters}


class Replicator:
    def __init__(self, db: AsyncDatabase, config: Config, session: aiohttp.ClientSession):
        self.db, self.config, self.session = db, config, session
        self.worker_id = f"replicator-{uuid.uuid4()}"

    async def claim(self) -> dict | None:
        return await jobs.claim(self.db, models.REPLICATION, self.worker_id, sort=CLAIM_SORT,
                                when={"state": "active", "nextRoundAt": {"$lte": models.now()}})

    async def one(self) -> bool:
        """Claim a due request and run its round; False when none was due."""
        request = await self.claim()
        if request is None:
            return False
        try:
            fields = await run_round(self.db, self.session, self.config, self.worker_id, request)
        except database.UNAVAILABLE:
            await asyncio.shield(self._hand_back(request))
            raise
        except asyncio.CancelledError:
            await asyncio.shield(self._hand_back(request))
            raise
        except Exception as exc:  # a bug: recorded, and the request is tried again next round
            log.exception("replication round of %s crashed", request["_id"])
            fields = {"status": Status.ERROR.value, "error": f"internal error: {type(exc).__name__}: {exc}"}
        now = models.now()
        await jobs.release(self.db, models.REPLICATION, request["_id"], self.worker_id, **fields,
                           lastRoundAt=now, nextRoundAt=now + self.config.replication_service.interval)
        return True

    async def _hand_back(self, request: dict) -> None:
        try:
            await jobs.release(self.db, models.REPLICATION, request["_id"], self.worker_id)
        except Exception:  # the maintenance task hands it back once our health report expires
            pass

    async def run_forever(self, poll: float) -> None:
        stopping = asyncio.Event()
        beat = asyncio.create_task(jobs.heartbeat(
            self.db, self.worker_id, self.config.deal_preparation_worker.heartbeat_interval, stopping,
            kind="replicator", startedAt=models.now()))
        try:
            while True:
                try:
                    if await self.one():
                        continue
                except database.UNAVAILABLE as exc:
                    log.warning("replicator paused, the database is unavailable: %s", str(exc).split(",")[0])
                await asyncio.sleep(poll)
        finally:
            stopping.set()
            await asyncio.gather(beat, return_exceptions=True)
            try:
                await self.db[models.HEALTH].delete_one({"_id": self.worker_id})
            except Exception:
                pass
