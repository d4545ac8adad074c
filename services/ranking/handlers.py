"""One function per API action of the ranking service. Lookups read the in-memory table only."""
from __future__ import annotations

import re
from typing import Any

from pymongo.errors import PyMongoError

from services.ranking import store
from services.ranking.ranking import Ranking
from shared import criteria, models
from shared.api import InvalidParameter, NotFound, Unavailable

_PROVIDER_ID = re.compile(r"^[ft]0\d{1,20}$")


def _ready(ranking: Ranking) -> None:
    if not ranking.loaded.is_set():
        raise Unavailable("the ranking service is still loading its metrics; try again in a few seconds")


def _metric_name(ranking: Ranking, name: Any, field: str) -> str:
    known = ranking.known_metrics
    if not isinstance(name, str) or (name not in known and name not in criteria.PROVIDER_NAMES):
        raise InvalidParameter(f"{field}: unknown metric {str(name)[:80]!r}",
                               {"known": sorted([*criteria.PROVIDER_NAMES, *known])})
    return "provider" if name in criteria.PROVIDER_NAMES else name


def parse_lookup(ranking: Ranking, body: dict) -> tuple[criteria.Node | None, int, str | None, bool, list[str]]:
    """`body` has the shape of schemas.LOOKUP (limit in range, defaults filled in); here the metric
    names, which depend on the enabled sources."""
    tree = None
    if body["criteria"] is not None:
        try:
            tree = criteria.parse(body["criteria"], ranking.known_metrics)
        except criteria.CriteriaError as exc:
            raise InvalidParameter(exc.message, exc.detail) from None
    sort, descending = None, False
    if body["sort"] is not None:
        descending = body["sort"].startswith("-")
        sort = _metric_name(ranking, body["sort"].removeprefix("-").removeprefix("+"), "sort")
    fields = [_metric_name(ranking, f, f"fields[{i}]") for i, f in enumerate(body["fields"] or [])]
    return tree, body["limit"], sort, descending, fields


def _order(ranking: Ranking, providers: set[str], sort: str | None, descending: bool) -> list[str]:
    ordered = sorted(providers)
    if sort is None or sort == "provider":
        return ordered[::-1] if descending else ordered
    column = ranking.table.columns.get(sort, {})
    having = [p for p in ordered if column.get(p) is not None]
    lacking = [p for p in ordered if column.get(p) is None]
    # Stable sort: providers with equal values stay in id order; those lacking the metric go last.
    # (is a string, value): a column holding numbers and, from an older version, strings still sorts.
    having.sort(key=lambda p: (isinstance(column[p], str), column[p]), reverse=descending)
    return having + lacking


async def lookup(ranking: Ranking, body: dict) -> list[dict]:
    """POST /ranking/lookup: the providers matching the criteria, best first by `sort`."""
    tree, limit, sort, descending, fields = parse_lookup(ranking, body)
    _ready(ranking)
    everyone = ranking.everyone()
    chosen = everyone if tree is None else criteria.select(tree, ranking.table.columns, everyone)
    shown = list(dict.fromkeys([*(criteria.metrics_of(tree) if tree else []),
                                *([sort] if sort and sort != "provider" else []),
                                *[f for f in fields if f != "provider"]]))
    answer = []
    for provider in _order(ranking, chosen, sort, descending)[:limit]:
        answer.append({"id": provider, **{m: ranking.table.get(provider, m) for m in shown}})
    return answer


async def list_providers(ranking: Ranking, offset: int, limit: int) -> dict:
    """GET /providers: every tracked provider with its metric values, by id."""
    _ready(ranking)
    everyone = sorted(ranking.everyone())
    page = [{"id": p, **dict(sorted(ranking.table.row(p).items()))} for p in everyone[offset:offset + limit]]
    return {"providers": page, "total": len(everyone), "offset": offset, "limit": limit}


async def get_provider(ranking: Ranking, provider: str) -> dict:
    """GET /provider/{id}: each metric with its source and age, and each source's state."""
    _ready(ranking)
    if not _PROVIDER_ID.match(provider) or provider not in ranking.everyone():
        raise NotFound(f"no provider {provider[:40]!r} is tracked")
    now = models.now()
    statuses = await _statuses(ranking)
    metrics = []
    for name, (source, updated_at) in sorted(ranking.table.meta.get(provider, {}).items()):
        metrics.append({"name": name, "value": ranking.table.get(provider, name), "source": source,
                        "updatedAt": updated_at, "ageSeconds": round(max(0.0, now - updated_at), 1),
                        "sourceError": (statuses.get(source) or {}).get("error")})
    return {"id": provider, "metrics": metrics, "sources": statuses}


async def _statuses(ranking: Ranking) -> dict:
    found = await store.statuses(ranking.db)
    return {name: found.get(name) for name in ranking.sources}


async def refresh(ranking: Ranking) -> dict:
    """POST /ranking/refresh: a round now; what it changed."""
    try:
        return await ranking.refresh()
    except PyMongoError as exc:
        raise Unavailable("the database cannot be written: the round did not finish", str(exc)[:300]) from None


REPORT_METRICS = ("deals.proposed", "deals.rejected", "deals.active", "deals.slashed", "deals.expired",
                  "deals.acceptance_rate", "deals.activation_rate", "deals.median_hours_to_activation",
                  "retrieval.success_rate", "retrieval.checked", "retrieval.ttfb_ms")


async def report(ranking: Ranking, offset: int, limit: int) -> dict:
    """GET /ranking/report: what our own deals and retrieval checks taught us, per provider."""
    _ready(ranking)
    rows = []
    for provider in sorted(ranking.table.providers):
        values = {m: ranking.table.get(provider, m) for m in REPORT_METRICS
                  if ranking.table.get(provider, m) is not None}
        if any(m.startswith("deals.") for m in values):
            rows.append({"id": provider, **values})
    return {"generatedAt": models.now(), "providers": rows[offset:offset + limit], "total": len(rows),
            "offset": offset, "limit": limit}
