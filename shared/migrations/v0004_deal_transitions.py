"""Deal history: a creation transition for every existing deal, and a completion time for every packed chunk.

DealTransition (shared/deal_transitions.py) starts empty, so without this the charts of
deal states over time would not count the deals made before it. Each deal gets one transition from
nothing to its current state, at its creation time (the states it went through before are not
recorded anywhere). Chunks packed by the worker already hold `completedAt`; a completed chunk
without it (an imported CAR before this version) gets the time it was claimed or created, so
the bytes-prepared chart counts it. Both steps go in batches by _id and write only what is
missing (the transitions are upserts by `<deal>|`, set on insert), so a run killed midway repeats
nothing when it resumes.
"""
from pymongo import UpdateOne

from shared import models

VERSION = 4

BATCH = 1000


async def up(ctx) -> None:
    async def backfill_transitions() -> None:
        deals = ctx.db[models.DEAL_STATE]
        last = None
        fields = {"state": 1, "createdAt": 1, "updatedAt": 1, "provider": 1, "pieceCid": 1, "client": 1,
                  "dealId": 1}
        while True:
            query = {} if last is None else {"_id": {"$gt": last}}
            batch = await deals.find(query, fields).sort("_id", 1).limit(BATCH).to_list(None)
            if not batch:
                return
            docs = []
            for deal in batch:
                if not isinstance(deal.get("state"), str):
                    continue
                at = next((t for t in (deal.get("createdAt"), deal.get("updatedAt")) if isinstance(t, (int, float))),
                          models.now())
                docs.append(models.deal_transition(deal, models.state_change(None, deal["state"], at=at)))
            if docs:
                await ctx.db[models.DEAL_TRANSITION].bulk_write(
                    [UpdateOne({"_id": d["_id"]}, {"$setOnInsert": {k: v for k, v in d.items() if k != "_id"}},
                               upsert=True) for d in docs], ordered=False)
            last = batch[-1]["_id"]
            await ctx.renew()

    async def backfill_completion() -> None:
        chunks = ctx.db[models.GENERATION]
        while batch := await chunks.find(
                {"status": {"$eq": models.Status.COMPLETED.value}, "completedAt": {"$exists": False}},
                {"claimedAt": 1, "createdAt": 1}).limit(BATCH).to_list(None):
            await chunks.bulk_write([UpdateOne({"_id": c["_id"]}, {"$set": {"completedAt": next(
                (t for t in (c.get("claimedAt"), c.get("createdAt")) if isinstance(t, (int, float))), models.now())}})
                for c in batch], ordered=False)
            await ctx.renew()

    await ctx.step("deal-transitions", backfill_transitions)
    await ctx.step("chunk-completion-times", backfill_completion)
