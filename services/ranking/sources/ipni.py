"""IPNI (cid.contact `GET /providers`): whether a provider announces content and how recently.

IPNI knows providers by libp2p peer id; `lotus.peer_id` maps them to provider ids, so only
providers whose peer id is known get these metrics (ipni.active false when IPNI lists none).
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

from services.ranking.sources.base import Round, Source, SourceError, get_json
from shared.metric_catalog import METRICS

_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$")


def _unix(text: Any) -> float | None:
    """RFC 3339 time as Go writes it (up to nanoseconds) to Unix seconds; None for Go's zero time."""
    match = _RFC3339.match(text) if isinstance(text, str) else None
    if match is None or text.startswith("0001-01-01"):
        return None
    whole, fraction, zone = match.groups()
    try:
        parsed = dt.datetime.fromisoformat(whole + (zone or "Z").replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.timestamp() + (int(fraction[:6].ljust(6, "0")) / 1e6 if fraction else 0.0)


class Ipni(Source):
    name = "ipni"
    metrics = METRICS[name]

    async def collect(self, ctx: Round) -> dict[str, dict[str, Any]]:
        url = ctx.config.connection.ipni_api.rstrip("/") + "/providers"
        listing = await get_json(ctx.session, url, ctx.config.ranking_service.timeout)
        if not isinstance(listing, list):
            raise SourceError(f"{url}: expected a list of providers")
        by_peer: dict[str, dict] = {}
        for info in listing:
            addr = info.get("AddrInfo") if isinstance(info, dict) else None
            if isinstance(addr, dict) and isinstance(addr.get("ID"), str):
                by_peer[addr["ID"]] = info
        out: dict[str, dict[str, Any]] = {}
        for provider in ctx.tracked:
            peer = ctx.value(provider, "lotus.peer_id")
            if not isinstance(peer, str):
                continue
            info = by_peer.get(peer)
            if info is None:
                out[provider] = {"ipni.active": False}
                continue
            addrs = info["AddrInfo"].get("Addrs") or []
            error = info.get("LastError")
            out[provider] = {
                "ipni.active": not info.get("Inactive") and info.get("FrozenAt") is None,
                "ipni.last_advertisement": _unix(info.get("LastAdvertisementTime")),
                "ipni.last_error": error if isinstance(error, str) else "",
                "ipni.http": any(isinstance(a, str) and ("/http" in a) for a in addrs),
            }
        return out
