"""Lotus JSON-RPC (`StateMinerInfo`, `StateMinerPower`): peer id, sector size, power, HTTP endpoint."""
from __future__ import annotations

import asyncio
from typing import Any

from shared import multiaddr
from services.ranking.sources.base import Round, Source, SourceError
from shared.lotus import LotusClient, LotusError, LotusRpcError
from shared.metric_catalog import METRICS

CONCURRENCY = 8


class Lotus(Source):
    name = "lotus"
    metrics = METRICS[name]

    def __init__(self):
        # Providers the node knows nothing about (an RPC error for them alone), with the message.
        self.skipped: dict[str, str] = {}

    async def collect(self, ctx: Round) -> dict[str, dict[str, Any]]:
        connection = ctx.config.connection
        client = LotusClient(ctx.session, connection.full_node_api, connection.full_node_token,
                             timeout=ctx.config.ranking_service.timeout)
        gate = asyncio.Semaphore(CONCURRENCY)
        self.skipped = {}

        async def one(provider: str) -> tuple[str, dict | None]:
            async with gate:
                try:
                    info = await client.call("StateMinerInfo", provider, None)
                    power = await client.call("StateMinerPower", provider, None)
                except LotusRpcError as exc:
                    self.skipped[provider] = str(exc)
                    return provider, None
            return provider, _values(info, power)

        tasks = [asyncio.ensure_future(one(p)) for p in sorted(ctx.tracked)]
        try:
            results = await asyncio.gather(*tasks)
        except LotusError as exc:  # the node itself: down, refusing the token, or not speaking JSON-RPC
            raise SourceError(str(exc)) from None
        finally:
            for task in tasks:
                task.cancel()
        return {provider: values for provider, values in results if values is not None}


def _values(info: Any, power: Any) -> dict[str, Any]:
    info = info if isinstance(info, dict) else {}
    power = power if isinstance(power, dict) else {}
    miner = power.get("MinerPower") if isinstance(power.get("MinerPower"), dict) else {}
    return {
        "lotus.peer_id": info.get("PeerId"),
        "lotus.sector_size": info.get("SectorSize"),
        "lotus.raw_power": miner.get("RawBytePower"),
        "lotus.quality_adj_power": miner.get("QualityAdjPower"),
        "lotus.has_min_power": power.get("HasMinPower"),
        "lotus.http_endpoint": multiaddr.endpoint_of(info.get("Multiaddrs")),
    }
