"""The providers x metrics table lookups read: loaded from ProviderMetric, updated by each round,
and re-read every `reload_interval` for what other ranking hosts stored (only the values stamped
since the last read, by the updatedAt index)."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from shared import models

# nx-27017 keeps about 15 significant digits of a float: a stamp read back may differ from the one
# written in its last digits (microseconds of a Unix time), so stamps this close count as the same.
_SAME_STAMP = 1e-3


class Table:
    def __init__(self):
        # metric -> provider -> value: criteria are evaluated a column at a time.
        self.columns: dict[str, dict[str, Any]] = defaultdict(dict)
        # provider -> metric -> (source, updatedAt)
        self.meta: dict[str, dict[str, tuple[str, float]]] = defaultdict(dict)
        # When the last read of ProviderMetric began, by this host's clock (None: never read).
        self.read_at: float | None = None

    @property
    def providers(self) -> set[str]:
        return set(self.meta)

    def row(self, provider: str) -> dict[str, Any]:
        return {metric: self.columns[metric][provider] for metric in self.meta.get(provider, {})}

    def rows(self) -> dict[str, dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = defaultdict(dict)
        for metric, column in self.columns.items():
            for provider, value in column.items():
                rows[provider][metric] = value
        return rows

    def get(self, provider: str, metric: str) -> Any:
        return self.columns.get(metric, {}).get(provider)

    def put(self, provider: str, source: str, metric: str, value: Any, updated_at: float) -> None:
        self.columns[metric][provider] = value
        self.meta[provider][metric] = (source, updated_at)

    @classmethod
    async def load(cls, db: AsyncDatabase) -> "Table":
        table = cls()
        await table._read(db, {})
        return table

    async def catch_up(self, db: AsyncDatabase, margin: float) -> int:
        """Apply the values stored since the last read began, less `margin` seconds (another host's
        clock may run behind ours, and its values are stamped before they are written); returns
        how many were newer than ours. Read twice, a value is applied once."""
        if self.read_at is None:
            return await self._read(db, {})
        return await self._read(db, {"updatedAt": {"$gte": self.read_at - margin}})

    async def _read(self, db: AsyncDatabase, query: dict) -> int:
        began = models.now()
        applied = 0
        async for doc in db[models.PROVIDER_METRIC].find(query, batch_size=10_000):
            provider, metric = doc.get("provider"), doc.get("metricName")
            if not isinstance(provider, str) or not isinstance(metric, str):
                continue
            updated_at = doc.get("updatedAt") or 0.0
            ours = self.meta.get(provider, {}).get(metric)
            # The later stamp wins, so a value of ours stored after the other host's is kept.
            if ours is None or updated_at > ours[1] + _SAME_STAMP:
                self.put(provider, doc.get("dataProvider") or "", metric, models.metric_value(doc), updated_at)
                applied += 1
        self.read_at = began
        return applied
