"""Recording deal state changes in DealTransition, written by deal making and tracking.

The update that changes a DealState's state also stores the change on it (`changedFrom`,
`changedAt`, `changedEpoch`) with a `historyPending` token; then the change is copied to
DealTransition (an upsert by `<deal>|<from>`, so copying twice is harmless) and the token is
cleared if it is still the one written. A writer killed, or a database lost, between the two
leaves the token behind: the next writer of that deal copies that change too (it read the deal
with its token), and `repair` (each tracking round, deal making's start) copies every deal still
holding one. No change is lost and none is counted twice.
"""
from __future__ import annotations

import logging

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from shared import models

log = logging.getLogger(__name__)

BATCH = 1000

# What copying needs of a DealState.
FIELDS = {"state": 1, "changedFrom": 1, "changedAt": 1, "changedEpoch": 1, "historyPending": 1, "provider": 1,
          "pieceCid": 1, "client": 1, "dealId": 1}


def fields(change: dict) -> dict:
    """The `$set` fields that store `change` (models.state_change) on its deal, with a fresh token.
    (Flat fields: nx-27017 stores a document pushed onto an array as a string.)"""
    return {"state": change["to"], "changedFrom": change["from"], "changedAt": change["time"],
            "changedEpoch": change["epoch"], "historyPending": models.new_id()}


def stored(deal: dict) -> dict | None:
    """The last change stored on `deal`, if it may not have been copied yet (its token is set)."""
    if not deal.get("historyPending") or "changedAt" not in deal:
        return None
    return models.state_change(deal.get("changedFrom"), deal["state"], deal.get("changedEpoch"), deal["changedAt"])


def to_copy(before: dict, written: dict, change: dict) -> tuple[dict, list[dict]]:
    """For `copy`: the deal after `written` ($set fields) recorded `change` on the deal that was
    `before` (as its writer read it); with `before`'s own change when it was not copied yet."""
    earlier = stored(before)
    return {**before, **written}, ([earlier] if earlier else []) + [change]


async def copy(db: AsyncDatabase, deals: list[tuple[dict, list[dict]]]) -> None:
    """Write these changes of these deals to DealTransition, then clear each deal's token.

    Each deal holds `_id`, `provider`, `pieceCid`, `client`, `dealId` and the `historyPending`
    token written with its last change (none: nothing to clear)."""
    docs = [models.deal_transition(deal, change) for deal, changes in deals for change in changes]
    for i in range(0, len(docs), BATCH):
        await db[models.DEAL_TRANSITION].bulk_write(
            [UpdateOne({"_id": d["_id"]}, {"$set": {k: v for k, v in d.items() if k != "_id"}}, upsert=True)
             for d in docs[i:i + BATCH]], ordered=False)
    # Guarded by the token: a change recorded meanwhile keeps its own until it is copied.
    clears = [UpdateOne({"_id": deal["_id"], "historyPending": deal["historyPending"]},
                        {"$unset": {"historyPending": ""}}) for deal, _ in deals if deal.get("historyPending")]
    for i in range(0, len(clears), BATCH):
        await db[models.DEAL_STATE].bulk_write(clears[i:i + BATCH], ordered=False)


async def repair(db: AsyncDatabase) -> int:
    """Copy the last change of every deal still holding a token; returns how many there were."""
    done = 0
    last = None
    while True:
        query: dict = {"historyPending": {"$exists": True}}
        if last is not None:
            query["_id"] = {"$gt": last}
        batch = await db[models.DEAL_STATE].find(query, FIELDS).sort("_id", 1).limit(BATCH).to_list(None)
        if not batch:
            break
        await copy(db, [(deal, [change]) for deal in batch if (change := stored(deal))])
        done += len(batch)
        last = batch[-1]["_id"]
    if done:
        log.info("copied the last state change of %d deals to %s", done, models.DEAL_TRANSITION)
    return done
