"""Every metric the ranking sources declare, by source, with its type: the names criteria may use.

The sources (services/ranking/sources/) collect their values under these names; the ranking service
checks criteria against the sources it enables, replication against all of them (a request is
checked before it is stored, with no ranking service asked).
"""
from __future__ import annotations

from shared.criteria import BOOL, NUMBER, STRING

METRICS: dict[str, dict[str, str]] = {
    "lotus": {
        "lotus.peer_id": STRING, "lotus.sector_size": NUMBER, "lotus.raw_power": NUMBER,
        "lotus.quality_adj_power": NUMBER, "lotus.has_min_power": BOOL, "lotus.http_endpoint": STRING,
    },
    "deals": {f"deals.{name}": NUMBER for name in (
        "proposed", "rejected", "active", "slashed", "expired", "acceptance_rate", "activation_rate",
        "median_hours_to_activation")},
    "retrieval": {"retrieval.success_rate": NUMBER, "retrieval.checked": NUMBER, "retrieval.ttfb_ms": NUMBER,
                  "retrieval.last_error": STRING},
    "filrep": {
        "filrep.reachable": BOOL, "filrep.status": BOOL, "filrep.uptime": NUMBER, "filrep.success_rate": NUMBER,
        "filrep.deals_total": NUMBER, "filrep.deals_slashed": NUMBER, "filrep.price": NUMBER,
        "filrep.verified_price": NUMBER, "filrep.min_piece_size": NUMBER, "filrep.max_piece_size": NUMBER,
        "filrep.raw_power": NUMBER, "filrep.quality_adj_power": NUMBER, "filrep.free_space": NUMBER,
        "filrep.score": NUMBER, "filrep.rank": NUMBER, "filrep.region": STRING, "filrep.iso_code": STRING,
    },
    "datacapstats": {f"datacapstats.{name}": NUMBER for name in (
        "verified_deals", "verified_bytes", "clients", "last_deal_height")},
    "ipni": {"ipni.active": BOOL, "ipni.last_advertisement": NUMBER, "ipni.last_error": STRING, "ipni.http": BOOL},
}


def every_metric() -> dict[str, str]:
    """The metrics of every source, whether or not a host's ranking enables it."""
    return {name: kind for metrics in METRICS.values() for name, kind in metrics.items()}
