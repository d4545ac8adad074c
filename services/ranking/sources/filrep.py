"""filrep-style listing (`GET /api/v1/miners?offset=&limit=`): reachability, uptime, asks, region."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from services.ranking.sources.base import Round, Source, SourceError, get_json
from shared.metric_catalog import METRICS

PAGE = 100
MAX_PAGES = 2000

# metric -> its path in a miner entry (the types: shared/metric_catalog.py)
FIELDS = {
    "filrep.reachable": ("reachability",),
    "filrep.status": ("status",),
    "filrep.uptime": ("uptimeAverage",),
    "filrep.success_rate": ("storageDeals", "successRate"),
    "filrep.deals_total": ("storageDeals", "total"),
    "filrep.deals_slashed": ("storageDeals", "slashed"),
    "filrep.price": ("price",),
    "filrep.verified_price": ("verifiedPrice",),
    "filrep.min_piece_size": ("minPieceSize",),
    "filrep.max_piece_size": ("maxPieceSize",),
    "filrep.raw_power": ("rawPower",),
    "filrep.quality_adj_power": ("qualityAdjPower",),
    "filrep.free_space": ("freeSpace",),
    "filrep.score": ("score",),
    "filrep.rank": ("rank",),
    "filrep.region": ("region",),
    "filrep.iso_code": ("isoCode",),
}


def _dig(entry: dict, path: tuple) -> Any:
    for key in path:
        if not isinstance(entry, dict):
            return None
        entry = entry.get(key)
    return entry


class Filrep(Source):
    name = "filrep"
    metrics = METRICS[name]
    lists_providers = True

    async def collect(self, ctx: Round) -> dict[str, dict[str, Any]]:
        settings = ctx.config.ranking_service
        base = settings.filrep_api.rstrip("/") + "/api/v1/miners?"
        out: dict[str, dict[str, Any]] = {}
        offset = 0
        for _ in range(MAX_PAGES):
            query = urlencode({"offset": offset, "limit": PAGE, "sortBy": "score", "order": "desc"})
            page = await get_json(ctx.session, base + query, settings.timeout)
            miners = page.get("miners") if isinstance(page, dict) else None
            if not isinstance(miners, list):
                raise SourceError(f"{base}: no miners list in the answer")
            for miner in miners:
                address = miner.get("address") if isinstance(miner, dict) else None
                if isinstance(address, str) and address[:2] in ("f0", "t0"):
                    out[address] = self._values(miner)
            pagination = page.get("pagination")
            total = pagination.get("total") if isinstance(pagination, dict) else None
            offset += len(miners)
            if not miners or not isinstance(total, int) or offset >= total:
                break
        return out

    @staticmethod
    def _values(miner: dict) -> dict[str, Any]:
        values = {name: _dig(miner, path) for name, path in FIELDS.items()}
        reachability = values["filrep.reachable"]
        values["filrep.reachable"] = reachability == "reachable" if isinstance(reachability, str) else None
        return values
