"""datacapstats (`GET /api/v2/getMiners?limit=&page=`): verified-deal activity per provider."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from services.ranking.sources.base import Round, Source, SourceError, get_json, to_number
from shared.metric_catalog import METRICS

PAGE = 100
MAX_PAGES = 2000

FIELDS = {
    "datacapstats.verified_deals": "noOfVerifiedDeals",
    "datacapstats.verified_bytes": "verifiedDealsTotalSize",
    "datacapstats.clients": "noOfClients",
    "datacapstats.last_deal_height": "lastDealHeight",
}


class DataCapStats(Source):
    name = "datacapstats"
    metrics = METRICS[name]
    lists_providers = True

    async def collect(self, ctx: Round) -> dict[str, dict[str, Any]]:
        settings = ctx.config.ranking_service
        base = settings.datacapstats_api.rstrip("/") + "/api/v2/getMiners?"
        headers = {"X-API-KEY": settings.datacapstats_api_key} if settings.datacapstats_api_key else None
        out: dict[str, dict[str, Any]] = {}
        seen = 0
        for page_number in range(1, MAX_PAGES + 1):
            url = base + urlencode({"limit": PAGE, "page": page_number})
            page = await get_json(ctx.session, url, settings.timeout, headers)
            rows = page.get("data") if isinstance(page, dict) else None
            if not isinstance(rows, list):
                raise SourceError(f"{url}: no data list in the answer")
            for row in rows:
                provider = row.get("provider") if isinstance(row, dict) else None
                if isinstance(provider, str) and provider[:2] in ("f0", "t0"):
                    out[provider] = {name: row.get(key) for name, key in FIELDS.items()}
            seen += len(rows)
            count = to_number(page.get("count"))
            if not rows or count is None or seen >= count:
                break
        return out
