"""Time windows cut into buckets, for the history charts (deal states, bytes prepared).

A window is `[since, until)` in Unix seconds, cut into buckets of `bucket` seconds from `since`
(the last one ends at `until`, shorter if need be). `per_bucket` sorts documents into buckets with
one `$bucket` stage, so a chart costs a fixed number of queries whatever its length: a `$bucket`
rather than a bucket number computed by expressions, which nx-27017 evaluates document by
document in Python (ten times slower, bench/history.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from pymongo.asynchronous.collection import AsyncCollection

from shared import models
from shared.api import InvalidParameter
from shared.schema import Int

DEFAULT_BUCKET = 86_400
DEFAULT_SPAN = 30 * 86_400
MAX_BUCKETS = 1000
# Unix seconds up to the year 5138: far beyond any deal, and exact as a double in the database.
MAX_TIME = 10**11

QUERY = {
    "since": Int("start of the window, Unix seconds (default: until minus 30 days)", minimum=0, maximum=MAX_TIME),
    "until": Int("end of the window, Unix seconds (default: now)", minimum=0, maximum=MAX_TIME),
    "bucket": Int(f"bucket length in seconds; at most {MAX_BUCKETS} buckets per window", minimum=1,
                  maximum=MAX_TIME, default=DEFAULT_BUCKET),
}


@dataclass(frozen=True)
class Window:
    since: int
    until: int
    bucket: int

    @property
    def count(self) -> int:
        return math.ceil((self.until - self.since) / self.bucket)

    def end(self, number: int) -> int:
        """When bucket `number` (from 0) ends."""
        return min(self.since + (number + 1) * self.bucket, self.until)

    def answer(self) -> dict:
        return {"bucket": self.bucket, "since": self.since, "until": self.until}

    async def per_bucket(self, collection: AsyncCollection, match: dict, field: str, output: dict) -> list[dict]:
        """One `$bucket` aggregation of the documents matching `match` inside the window, by
        `field` (a time): the `output` accumulators per bucket, {} for a bucket where none fell."""
        starts = [self.since + n * self.bucket for n in range(self.count)]
        rows = await (await collection.aggregate([
            {"$match": {**match, field: {"$gte": self.since, "$lt": self.until}}},
            {"$bucket": {"groupBy": f"${field}", "boundaries": starts + [self.until], "output": output}},
        ])).to_list(None)
        found = {row.pop("_id"): row for row in rows}
        return [found.get(start, {}) for start in starts]


def window(since: int | None, until: int | None, bucket: int) -> Window:
    """The window the query asked for (QUERY's values), or a 400 naming the parameter at fault."""
    if until is None:
        until = min(math.ceil(models.now()), MAX_TIME)
    if since is None:
        since = max(0, until - DEFAULT_SPAN)
    if since >= until:
        raise InvalidParameter("since must be before until", {"since": since, "until": until})
    result = Window(since, until, bucket)
    if result.count > MAX_BUCKETS:
        raise InvalidParameter(f"bucket: the window holds {result.count} buckets of {bucket} s, at most "
                               f"{MAX_BUCKETS}; use a longer bucket or a shorter window",
                               {"buckets": result.count, "max": MAX_BUCKETS})
    return result
