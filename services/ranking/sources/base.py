"""What every metric source is: a name, the metrics it declares with their types, and `collect`.

A source returns raw values per provider; `convert` turns them into the declared type (numbers
often arrive as strings) and drops what cannot be read. A source that cannot do its job raises
`SourceError`: the round records the message and keeps the values it stored before.
"""
from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from pymongo.asynchronous.database import AsyncDatabase

from shared.config import Config
from shared.criteria import BOOL, NUMBER, STRING

# The largest answer read from a source: a full IPNI /providers listing is a few MiB.
MAX_BODY = 64 * 2**20
_INT64 = 2**63 - 1


class SourceError(Exception):
    """The source is down, refused us, timed out or answered something unusable."""


@dataclass
class Round:
    """What a source sees of the round it runs in."""
    config: Config
    db: AsyncDatabase
    session: aiohttp.ClientSession
    tracked: set[str]
    # Values stored before this round, and those collected so far in it: provider -> metric -> value.
    stored: dict[str, dict[str, Any]]
    fresh: dict[str, dict[str, Any]] = field(default_factory=dict)

    def value(self, provider: str, metric: str) -> Any:
        fresh = self.fresh.get(provider, {})
        return fresh[metric] if metric in fresh else self.stored.get(provider, {}).get(metric)


class Source:
    name: str = ""
    metrics: dict[str, str] = {}  # metric name -> number, bool or string
    # Whether the providers it returns become tracked (a listing), besides giving their metrics.
    lists_providers = False

    async def collect(self, ctx: Round) -> dict[str, dict[str, Any]]:
        raise NotImplementedError


def convert(kind: str, raw: Any) -> Any:
    """`raw` as a value of `kind`, or None when it is missing or unreadable."""
    if raw is None:
        return None
    if kind == NUMBER:
        return to_number(raw)
    if kind == BOOL:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
            return raw.strip().lower() == "true"
        return None
    if kind == STRING:
        return raw if isinstance(raw, str) else None
    return None


def to_number(raw: Any) -> int | float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        text = raw.strip()
        if not text or len(text) > 100:
            return None
        try:
            raw = int(text)
        except ValueError:
            try:
                raw = float(text)
            except ValueError:
                return None
    if isinstance(raw, int):
        # BSON integers are 64-bit; a larger count is kept as a float rather than refused.
        return raw if -_INT64 <= raw <= _INT64 else float(raw)
    if isinstance(raw, float):
        # 12 significant digits: nx-27017 keeps about 15 for a float written by $set, so a value
        # rounded here reads back exactly and a later round sees it unchanged.
        return float(f"{raw:.12g}") if math.isfinite(raw) else None
    return None


async def get_json(session: aiohttp.ClientSession, url: str, timeout: float, headers: dict | None = None) -> Any:
    """One GET answered with JSON; every way it can fail is a SourceError saying which."""
    try:
        async with session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            if response.status in (401, 403):
                raise SourceError(f"{url}: HTTP {response.status}: refused (check the API key)")
            if response.status != 200:
                raise SourceError(f"{url}: HTTP {response.status}")
            raw = await response.content.read(MAX_BODY + 1)
            if len(raw) > MAX_BODY:
                raise SourceError(f"{url}: answer larger than {MAX_BODY} bytes")
    except (TimeoutError, asyncio.TimeoutError):
        raise SourceError(f"{url}: timed out after {timeout:g} s") from None
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        raise SourceError(f"{url}: unreachable: {type(exc).__name__}: {exc}") from None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise SourceError(f"{url}: the answer is not JSON") from None
