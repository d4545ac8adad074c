"""One function per API action of the deal making service, each validating its input first."""
from __future__ import annotations

import asyncio
import logging
import weakref

from pymongo.asynchronous.database import AsyncDatabase

from services.dealmaking import boost, history
from services.dealmaking import proposal as proposal_module
from shared import database, metrics, models, timeline
from shared import deal_pending as pending, deal_transitions as transitions
from shared.api import ApiError, Conflict, NotFound, Unavailable
from shared.config import Config
from shared.models import DealStatus

log = logging.getLogger(__name__)

# How often a request that found a deal being sent checks whether it has been answered.
POLL_INTERVAL = 0.1


class DealRejected(ApiError):
    status = 422


class DealFailed(ApiError):
    status = 502


# One bound per event loop (tests run several loops): [deal_making_service] max_concurrent boost
# runs at once, so a burst of proposals (a replication round) cannot start hundreds of processes.
_SLOTS: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]" = weakref.WeakKeyDictionary()


def _slots(limit: int) -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slots = _SLOTS.get(loop)
    if slots is None or getattr(slots, "limit", None) != limit:
        slots = _SLOTS[loop] = asyncio.Semaphore(limit)
        slots.limit = limit  # type: ignore[attr-defined]
    return slots


# Bookkeeping of the state changes, which GET /deals/transitions serves.
_INTERNAL = ("_id", "changedFrom", "changedAt", "changedEpoch", "historyPending")


def public(deal: dict) -> dict:
    return {"id": deal["_id"], **{k: v for k, v in deal.items() if k not in _INTERNAL}}


def _answer(deal: dict, existing: bool) -> dict:
    state = deal["state"]
    detail = {"id": deal["_id"], "state": state, "message": deal.get("message")}
    if state == DealStatus.REJECTED.value:
        raise DealRejected(f"deal proposal rejected: {deal.get('message')}", detail)
    if state == DealStatus.ERROR.value:
        raise DealFailed(f"deal proposal failed: {deal.get('message')}", detail)
    answer = {"proposalCid": deal["proposalCid"], "id": deal["_id"], "state": state, "existing": existing}
    if deal.get("identical"):
        answer["identical"] = True
    return answer


async def make_deal(db: AsyncDatabase, config: Config, body: dict) -> dict:
    """POST /deal: send a proposal through boost, or return the one already pending for this piece."""
    proposal = proposal_module.parse(body, config.deal_making_service.key_dir)
    settings = config.deal_making_service
    pending_key = pending.key(proposal.wallet, proposal.provider, proposal.piece_cid)
    # A few attempts: a retry follows a key released meanwhile or left behind by a crashed sender.
    for _ in range(3):
        deal_id = models.new_id()
        holder = await pending.claim(db, pending_key, deal_id)
        if holder is None:
            return await _send(db, config, proposal, deal_id)
        existing = await _wait_for_holder(db, holder, settings.timeout)
        if existing is not None:
            return _answer(existing, existing=True)
    raise Conflict("another proposal for this client, provider and piece is being sent", {"key": pending_key})


async def _wait_for_holder(db: AsyncDatabase, holder: dict, timeout: float) -> dict | None:
    """The holder's deal once boost has answered for it; None if the key was stale and is now cleared."""
    # Two boost runs (wallet import, then deal) each bounded by the timeout, plus slack for the database.
    give_up = asyncio.get_running_loop().time() + 2 * timeout + 10
    while True:
        if not holder.get("dealStateId"):
            return None  # the key was released meanwhile: claim it afresh
        deal = await db[models.DEAL_STATE].find_one({"_id": holder["dealStateId"]})
        if deal is not None and deal["state"] != DealStatus.SENDING.value:
            return deal
        created = holder.get("createdAt")
        if not isinstance(created, (int, float)) or models.now() - created > 2 * timeout + 30:
            await _clear_stale(db, holder, deal)
            return None
        if asyncio.get_running_loop().time() > give_up:
            raise Conflict("a proposal for this client, provider and piece is still being sent",
                           {"id": holder.get("dealStateId")})
        await asyncio.sleep(POLL_INTERVAL)
        holder = await db[models.DEAL_PENDING].find_one({"_id": holder["_id"]}) or {
            "_id": holder["_id"], "dealStateId": None, "createdAt": None}


async def _clear_stale(db: AsyncDatabase, holder: dict, deal: dict | None) -> None:
    if deal is not None:
        change = models.state_change(DealStatus.SENDING.value, DealStatus.ERROR.value)
        written = {**transitions.fields(change), "updatedAt": models.now(),
                   "message": "the deal making service stopped while boost was running"}
        result = await db[models.DEAL_STATE].update_one({"_id": deal["_id"], "state": DealStatus.SENDING.value},
                                                        {"$set": written})
        if result.modified_count == 1:
            await transitions.copy(db, [transitions.to_copy(deal, written, change)])
    # Only that holder's key: a newer request may already hold the same key.
    await db[models.DEAL_PENDING].delete_one({"_id": holder["_id"], "dealStateId": holder["dealStateId"]})


async def _send(db: AsyncDatabase, config: Config, proposal, deal_id: str) -> dict:
    created = models.now()
    deal = {
        "_id": deal_id, "datasetId": None, **proposal.record(), "state": DealStatus.SENDING.value,
        "proposalCid": None, "startEpoch": proposal.start_epoch, "endEpoch": None, "message": None,
        "dealId": None, "sectorId": None, "sectorStartEpoch": None, "activation": None, "expiration": None,
        "slashEpoch": None, "trackedHeight": None, "createdAt": created, "updatedAt": created,
    }
    creation = models.state_change(None, DealStatus.SENDING.value, at=created)
    deal.update(transitions.fields(creation))
    outcome: dict
    try:
        # Inside the try: a failed insert must release the pending key like any other failure.
        await db[models.DEAL_STATE].insert_one(dict(deal))
        await transitions.copy(db, [(deal, [creation])])
        deal.pop("historyPending")  # copied and cleared
        async with _slots(config.deal_making_service.max_concurrent):
            answer = await boost.send_deal(config, proposal)
        outcome = {"state": DealStatus.PROPOSED.value, "proposalCid": answer["dealUuid"],
                   "startEpoch": answer.get("startEpoch", proposal.start_epoch),
                   "endEpoch": answer.get("endEpoch"),
                   "providerCollateral": answer.get("providerCollateral")}
        if outcome["endEpoch"] is None and outcome["startEpoch"] is not None:
            outcome["endEpoch"] = outcome["startEpoch"] + proposal.duration
    except boost.BoostIdentical as exc:
        # Counted as proposed (so it is neither re-sent nor replaced at once); tracking confirms it
        # or, past its start epoch, it becomes proposal_expired like any unpublished proposal.
        end = None if proposal.start_epoch is None else proposal.start_epoch + proposal.duration
        outcome = {"state": DealStatus.PROPOSED.value, "identical": True, "message": str(exc), "endEpoch": end}
    except boost.BoostRejected as exc:
        outcome = {"state": DealStatus.REJECTED.value, "message": str(exc)}
    except boost.BoostFailed as exc:
        outcome = {"state": DealStatus.ERROR.value, "message": str(exc)}
    except boost.BoostUnavailable as exc:
        await _finish(db, deal, {"state": DealStatus.ERROR.value, "message": str(exc)})
        metrics.DEAL_PROPOSALS.labels("unavailable").inc()
        raise Unavailable("the boost client cannot be run", str(exc)) from None
    except BaseException as exc:  # cancellation or a bug: never leave the key held by a dead request
        await asyncio.shield(_finish(db, deal, {"state": DealStatus.ERROR.value,
                                                   "message": f"interrupted: {type(exc).__name__}"}))
        raise
    metrics.DEAL_PROPOSALS.labels(outcome["state"]).inc()
    deal.update(await _finish(db, deal, outcome))
    log.info("deal %s to %s for %s: %s", deal_id, proposal.provider, proposal.piece_cid, deal["state"])
    return _answer(deal, existing=False)


async def _finish(db: AsyncDatabase, deal: dict, outcome: dict) -> dict:
    """Boost's answer for a deal being sent: its state leaves `sending`."""
    outcome = {**outcome, "updatedAt": models.now()}
    change = models.state_change(DealStatus.SENDING.value, outcome["state"])
    written = {**outcome, **transitions.fields(change)}
    result = await db[models.DEAL_STATE].update_one({"_id": deal["_id"]}, {"$set": written})
    if result.matched_count == 1:  # none when the insert itself failed
        # With the creation if copying it failed (`deal` still holds its token then).
        await transitions.copy(db, [transitions.to_copy(deal, written, change)])
    if outcome["state"] not in models.DEAL_PENDING_STATES:
        await pending.release(db, [deal["_id"]])
    return outcome


async def list_deals(db: AsyncDatabase, state: str | None, provider: str | None, piece: str | None,
                     client: str | None, offset: int, limit: int) -> dict:
    """GET /deals (the route's declaration has checked `state`)"""
    query: dict = {}
    # {"$eq": v}: a bare value is "v or an array holding v" to the embedded server, which no index serves.
    for field, value in (("state", state), ("provider", provider), ("pieceCid", piece), ("client", client)):
        if value is not None:
            query[field] = {"$eq": value}
    total = await database.count(db[models.DEAL_STATE], query)
    cursor = db[models.DEAL_STATE].find(query).sort("_id", 1).skip(offset).limit(limit)
    deals = [public(d) async for d in cursor]
    return {"deals": deals, "total": total, "offset": offset, "limit": limit}


async def get_deal(db: AsyncDatabase, deal_id: str) -> dict:
    """GET /deal/{id}"""
    deal = await db[models.DEAL_STATE].find_one({"_id": deal_id})
    if deal is None:
        raise NotFound(f"no deal {deal_id}")
    return public(deal)


async def deal_history(db: AsyncDatabase, provider: str | None, since: int | None, until: int | None,
                       bucket: int) -> dict:
    """GET /deals/history"""
    return await history.states_over_time(db, timeline.window(since, until, bucket), provider)


async def list_transitions(db: AsyncDatabase, deal: str | None, provider: str | None, offset: int,
                           limit: int) -> dict:
    """GET /deals/transitions"""
    query: dict = {}
    for field, value in (("deal", deal), ("provider", provider)):
        if value is not None:
            query[field] = {"$eq": value}
    total = await database.count(db[models.DEAL_TRANSITION], query)
    cursor = db[models.DEAL_TRANSITION].find(query).sort([("time", 1), ("_id", 1)]).skip(offset).limit(limit)
    return {"transitions": [history.public(t) async for t in cursor], "total": total, "offset": offset,
            "limit": limit}
