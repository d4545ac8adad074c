"""Deal states over time, from DealTransition: how many deals were in each state at each bucket's end.

Every transition moves one deal out of `from` (none for its creation) into `to`, so the number of
deals in a state at a time is the number of transitions into it before then less the number out
of it. Two aggregations count both per state and per bucket (those before the window in one
bucket, -1); the running sums over at most MAX_BUCKETS buckets are done here.
"""
from __future__ import annotations

import asyncio
from collections import Counter

from pymongo.asynchronous.database import AsyncDatabase

from shared import models, timeline
from shared.models import DealStatus

STATES = tuple(s.value for s in DealStatus)


async def _per_bucket(db: AsyncDatabase, match: dict, window: timeline.Window, side: str) -> Counter:
    """(state, bucket) -> transitions whose `side` (`to` or `from`) is that state."""
    # One string key: nx-27017 does not evaluate the expressions of a compound group _id.
    key = {"$concat": [f"${side}", "|", {"$toString": window.number("time")}]}
    rows = await (await db[models.DEAL_TRANSITION].aggregate(
        [{"$match": match}, {"$project": {"k": key}}, {"$group": {"_id": "$k", "n": {"$sum": 1}}}])).to_list(None)
    counts: Counter = Counter()
    for row in rows:
        if isinstance(row["_id"], str):  # None: a creation's missing `from`
            state, bucket = row["_id"].rsplit("|", 1)
            counts[state, timeline.bucket_of(bucket)] += row["n"]
    return counts


async def states_over_time(db: AsyncDatabase, window: timeline.Window, provider: str | None) -> dict:
    match: dict = {"time": {"$lt": window.until}}
    if provider is not None:
        match["provider"] = {"$eq": provider}
    into, out_of = await asyncio.gather(_per_bucket(db, match, window, "to"), _per_bucket(db, match, window, "from"))
    states = list(STATES) + sorted({state for state, _ in into} - set(STATES))
    running = dict.fromkeys(states, 0)
    deltas: dict[int, Counter] = {}
    for sign, counts in ((1, into), (-1, out_of)):
        for (state, bucket), n in counts.items():
            deltas.setdefault(bucket, Counter())[state] += sign * n
    points = []
    for number in range(-1, window.count):
        for state, n in deltas.get(number, {}).items():
            running[state] = running.get(state, 0) + n
        if number >= 0:
            points.append({"time": window.end(number), "counts": {s: running.get(s, 0) for s in states}})
    return {**window.answer(), "states": states, "points": points}


def public(transition: dict) -> dict:
    return {"id": transition["_id"], **{k: transition.get(k) for k in
                                        ("deal", "dealId", "provider", "pieceCid", "client", "from", "to",
                                         "epoch", "time")}}
