"""The providers x metrics table lookups read: loaded from ProviderMetric, updated by each round."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from shared import models


class Table:
    def __init__(self):
        # metric -> provider -> value: criteria are evaluated a column at a time.
        self.columns: dict[str, dict[str, Any]] = defaultdict(dict)
        # provider -> metric -> (source, updatedAt)
        self.meta: dict[str, dict[str, tuple[str, float]]] = defaultdict(dict)

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
        async for doc in db[models.PROVIDER_METRIC].find({}, batch_size=10_000):
            if isinstance(doc.get("provider"), str) and isinstance(doc.get("metricName"), str):
                value = models.metric_value(doc)
                table.put(doc["provider"], doc.get("dataProvider") or "", doc["metricName"],
                          value, doc.get("updatedAt") or 0.0)
        return table
