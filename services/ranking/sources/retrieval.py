"""Our own retrieval probe: range requests for pieces we made deals for, checked byte for byte.

Providers holding active deals of ours, with an HTTP endpoint from `lotus.http_endpoint`, get
`GET /piece/{pieceCid}` range requests (at most `retrieval_probes` per round, shared round-robin)
for pieces we still hold. Each answer is compared with our own copy of the piece (the CAR, then
zeros). A provider serving the wrong bytes, a 404 or a short body scores lower, and
`retrieval.last_error` names the piece and range that failed.
"""
from __future__ import annotations

import asyncio
import logging
import random
import statistics
import time
from collections import defaultdict
from typing import Any

import aiohttp

from services.ranking import pieces
from services.ranking.sources.base import Round, Source
from shared import chunkdata, models
from shared.metric_catalog import METRICS

log = logging.getLogger(__name__)


class Retrieval(Source):
    name = "retrieval"
    metrics = METRICS[name]

    def __init__(self, seed: int | None = None):
        self.random = random.Random(seed)

    async def collect(self, ctx: Round) -> dict[str, dict[str, Any]]:
        settings = ctx.config.ranking_service
        held = await _active_pieces(ctx.db)
        local = await pieces.locate_many(ctx.db, ctx.config.http_hosting_service.car_dir,
                                         {p for ps in held.values() for p in ps})
        plan: list[tuple[str, str, str]] = []  # (provider, endpoint, piece)
        queues = {}
        for provider in sorted(held):
            endpoint = ctx.value(provider, "lotus.http_endpoint")
            candidates = [p for p in sorted(held[provider]) if p in local]
            if isinstance(endpoint, str) and endpoint and candidates:
                self.random.shuffle(candidates)
                queues[provider] = (endpoint, candidates)
        # Round-robin over providers, each piece at most once, so a bounded number of probes
        # still reaches every provider.
        depth = 0
        while len(plan) < settings.retrieval_probes and any(depth < len(c) for _, c in queues.values()):
            for provider, (endpoint, candidates) in queues.items():
                if depth < len(candidates) and len(plan) < settings.retrieval_probes:
                    plan.append((provider, endpoint, candidates[depth]))
            depth += 1
        results = await asyncio.gather(*(self._probe(ctx.session, endpoint, local[piece], settings)
                                         for _, endpoint, piece in plan))
        by_provider: dict[str, list[tuple[float | None, str | None]]] = defaultdict(list)
        for (provider, _, _), result in zip(plan, results):
            if result is not None:  # None: our own copy could not be read, nothing to compare with
                by_provider[provider].append(result)
        out = {}
        for provider, outcomes in by_provider.items():
            good = [ttfb for ttfb, error in outcomes if error is None]
            errors = [error for _, error in outcomes if error is not None]
            out[provider] = {
                "retrieval.checked": len(outcomes),
                "retrieval.success_rate": len(good) / len(outcomes),
                "retrieval.ttfb_ms": round(statistics.median(good), 1) if good else None,
                "retrieval.last_error": errors[-1] if errors else "",
            }
        return out

    async def _probe(self, session: aiohttp.ClientSession, endpoint: str, piece: "pieces.LocalPiece",
                     settings) -> tuple[float | None, str | None] | None:
        """(time to first byte in ms, None) when the bytes match; (None, what went wrong) otherwise;
        None when our own copy (an inline chunk whose source changed) cannot be read."""
        length = min(settings.probe_bytes, piece.size)
        start = self.random.randrange(0, piece.size - length + 1) if length else 0
        end = start + length  # exclusive
        where = f"piece {piece.piece_cid} range {start}-{end - 1}"
        try:
            expected = await pieces.read(piece, start, end)
        except (chunkdata.Unservable, OSError, LookupError) as exc:
            log.warning("retrieval probe: our copy of %s is unreadable: %s", where, exc)
            return None
        url = f"{endpoint.rstrip('/')}/piece/{piece.piece_cid}"
        began = time.monotonic()
        try:
            async with session.get(url, headers={"Range": f"bytes={start}-{end - 1}"},
                                   timeout=aiohttp.ClientTimeout(total=settings.timeout)) as response:
                if response.status not in (200, 206):
                    return None, f"{where}: HTTP {response.status}"
                first = await response.content.read(1)
                ttfb = (time.monotonic() - began) * 1000
                if response.status == 200 and start != 0:
                    return None, f"{where}: the whole piece came back (HTTP 200) instead of the range"
                body = first
                while len(body) < length:
                    more = await response.content.read(length - len(body))
                    if not more:
                        break
                    body += more
        except (TimeoutError, asyncio.TimeoutError):
            return None, f"{where}: timed out after {settings.timeout:g} s"
        except aiohttp.ClientPayloadError as exc:
            return None, f"{where}: truncated body ({exc})"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return None, f"{where}: {type(exc).__name__}: {exc}"
        body = body[:length]
        if len(body) < length:
            return None, f"{where}: truncated body: {len(body)} of {length} bytes"
        if body != expected:
            offset = next(i for i, (a, b) in enumerate(zip(body, expected)) if a != b)
            return None, f"{where}: wrong bytes from offset {start + offset}"
        return ttfb, None


async def _active_pieces(db) -> dict[str, set[str]]:
    held: dict[str, set[str]] = defaultdict(set)
    cursor = db[models.DEAL_STATE].find({"state": models.DealStatus.ACTIVE.value},
                                        {"provider": 1, "pieceCid": 1, "_id": 0})
    async for deal in cursor:
        if isinstance(deal.get("provider"), str) and isinstance(deal.get("pieceCid"), str):
            held[deal["provider"]].add(deal["pieceCid"])
    return held
