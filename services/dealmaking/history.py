"""Deal states over time, from DealTransition: how many deals were in each state at each bucket's end.

Every transition moves one deal out of `from` (none for its creation) into `to`, so the number of
deals in a state at a time is the number of transitions into it before then less the number out
of it. The database groups the transitions before the window's end per state, with their times
(two `$group`s with `$push`: nx-27017 runs them in its database, while it evaluates a computed
bucket number document by document in Python, ten times slower); they are placed in buckets here.
Past PUSH_LIMIT transitions (a `$push` of one state's times must fit in a 16 MiB document) the
database counts them instead: a `$group` per side for those before the window and a `$bucket`
per state and side inside it. Either way a fixed number of queries whatever the number of deals.
"""
from __future__ import annotations

import asyncio
import bisect

from pymongo.asynchronous.database import AsyncDatabase

from shared import database, models, timeline
from shared.models import DealStatus

STATES = tuple(s.value for s in DealStatus)
PUSH_LIMIT = 200_000
SIDES = ("to", "from")


async def _group(transitions, match: dict, side: str, accumulator: dict) -> dict:
    rows = await (await transitions.aggregate([{"$match": match}, {"$group": {"_id": f"${side}", "v": accumulator}}])
                  ).to_list(None)
    return {row["_id"]: row["v"] for row in rows if isinstance(row["_id"], str)}  # None: a creation's `from`


async def _from_times(transitions, upto: dict, window: timeline.Window) -> list[dict[str, list[int]]]:
    # Bucket 0 of these lists holds what came before the window, bucket n + 1 the window's n-th.
    starts = [window.since + n * window.bucket for n in range(window.count)]
    out = []
    for times in await asyncio.gather(*(_group(transitions, upto, side, {"$push": "$time"}) for side in SIDES)):
        side: dict[str, list[int]] = {}
        for state, values in times.items():
            counts = side[state] = [0] * (window.count + 1)
            for t in values:
                counts[bisect.bisect_right(starts, t)] += 1
        out.append(side)
    return out


async def _from_counts(transitions, match: dict, window: timeline.Window) -> list[dict[str, list[int]]]:
    before = {**match, "time": {"$lt": window.since}}
    earlier = await asyncio.gather(*(_group(transitions, before, side, {"$sum": 1}) for side in SIDES))
    inside = await _group(transitions, {**match, "time": {"$gte": window.since, "$lt": window.until}}, "to",
                          {"$sum": 1})
    keys = [(i, state) for state in sorted(set(inside) | set(earlier[0])) for i in range(len(SIDES))]
    rows = await asyncio.gather(*(window.per_bucket(transitions, {**match, SIDES[i]: {"$eq": state}}, "time",
                                                    {"n": {"$sum": 1}}) for i, state in keys))
    out: list[dict[str, list[int]]] = [{}, {}]
    for (i, state), buckets in zip(keys, rows):
        out[i][state] = [earlier[i].get(state, 0)] + [row.get("n", 0) for row in buckets]
    return out


async def states_over_time(db: AsyncDatabase, window: timeline.Window, provider: str | None) -> dict:
    transitions = db[models.DEAL_TRANSITION]
    match: dict = {} if provider is None else {"provider": {"$eq": provider}}
    # Only `$lt`: nx-27017 answers a range ($gte with $lt) on the time several times slower.
    upto = {**match, "time": {"$lt": window.until}}
    if await database.count(transitions, upto) <= PUSH_LIMIT:
        into, out = await _from_times(transitions, upto, window)
    else:
        into, out = await _from_counts(transitions, match, window)
    states = list(STATES) + sorted(set(into) - set(STATES))
    none = [0] * (window.count + 1)
    points = [{"time": window.end(n), "counts": {}} for n in range(window.count)]
    for state in states:
        entered, left = into.get(state, none), out.get(state, none)
        running = entered[0] - left[0]
        for n, point in enumerate(points, start=1):
            running += entered[n] - left[n]
            point["counts"][state] = running
    return {**window.answer(), "states": states, "points": points}


def public(transition: dict) -> dict:
    return {"id": transition["_id"], **{k: transition.get(k) for k in
                                        ("deal", "dealId", "provider", "pieceCid", "client", "from", "to",
                                         "epoch", "time")}}
