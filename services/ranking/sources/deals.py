"""Our own deal history (DealState): what each provider did with the proposals we sent it."""
from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from services.ranking.sources.base import Round, Source
from shared import models
from shared.metric_catalog import METRICS
from shared.models import DealStatus

# A proposal the provider answered: everything but one still being sent or never sent (error).
_UNSENT = {DealStatus.SENDING.value, DealStatus.ERROR.value}
# Published on chain, or past its start: the deals that had their chance to activate.
_DUE = {DealStatus.PUBLISHED.value, DealStatus.ACTIVE.value, DealStatus.EXPIRED.value,
        DealStatus.SLASHED.value, DealStatus.PROPOSAL_EXPIRED.value}


class Deals(Source):
    name = "deals"
    metrics = METRICS[name]
    lists_providers = True

    async def collect(self, ctx: Round) -> dict[str, dict[str, Any]]:
        return await deal_statistics(ctx.db)


async def deal_statistics(db) -> dict[str, dict[str, Any]]:
    """Per provider, from one pass over DealState (no query per provider)."""
    states: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    hours: dict[str, list[float]] = defaultdict(list)
    cursor = db[models.DEAL_STATE].find(
        {}, {"provider": 1, "state": 1, "createdAt": 1, "activation": 1, "_id": 0})
    async for deal in cursor:
        provider, state = deal.get("provider"), deal.get("state")
        if not isinstance(provider, str) or not isinstance(state, str):
            continue
        states[provider][state] += 1
        activation, created = deal.get("activation"), deal.get("createdAt")
        if _number(activation) and _number(created) and state in _DUE:
            states[provider]["_activated"] += 1
            hours[provider].append(max(0.0, (activation - created) / 3600))
    out = {}
    for provider, counts in states.items():
        sent = sum(n for s, n in counts.items() if not s.startswith("_") and s not in _UNSENT)
        due = sum(counts.get(s, 0) for s in _DUE)
        values: dict[str, Any] = {
            "deals.proposed": sent,
            "deals.rejected": counts.get(DealStatus.REJECTED.value, 0),
            "deals.active": counts.get(DealStatus.ACTIVE.value, 0),
            "deals.slashed": counts.get(DealStatus.SLASHED.value, 0),
            "deals.expired": counts.get(DealStatus.EXPIRED.value, 0),
            "deals.acceptance_rate": (sent - counts.get(DealStatus.REJECTED.value, 0)) / sent if sent else None,
            "deals.activation_rate": counts.get("_activated", 0) / due if due else None,
            "deals.median_hours_to_activation": statistics.median(hours[provider]) if hours[provider] else None,
        }
        out[provider] = values
    return out


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
