"""Provider metrics, written by the ranking service's sources."""
from __future__ import annotations

INDEXES: list[tuple[str, list[tuple[str, int]], dict]] = []

# --- Provider metrics (ranking service) ---
# One document per (provider, dataProvider, metricName): {provider, dataProvider, metricName,
# metricValue (number, bool or string), updatedAt}. The _id is built from the three, so storing a
# value is one upsert by _id (nx-27017 scans the collection for an upsert by any other filter).
PROVIDER_METRIC = "ProviderMetric"
# One document per source (dataProvider): when it last ran, succeeded, and its last error.
PROVIDER_SOURCE = "ProviderSource"

INDEXES += [
    (PROVIDER_METRIC, [("provider", 1)], {}),
    # Ranking hosts re-read the values stored since their last read (services/ranking/table.py).
    (PROVIDER_METRIC, [("updatedAt", 1)], {}),
]


def provider_metric_id(provider: str, data_provider: str, metric_name: str) -> str:
    # Provider ids and source names hold no "|", so the three parts never run into each other.
    return f"{provider}|{data_provider}|{metric_name}"


def provider_metric(provider: str, data_provider: str, metric_name: str, value, updated_at: float) -> dict:
    # metricType travels with the value: nx-27017 stores a bool written by $set over an existing
    # document as 0 or 1, so readers restore it with `metric_value`.
    kind = "bool" if isinstance(value, bool) else "string" if isinstance(value, str) else "number"
    return {"_id": provider_metric_id(provider, data_provider, metric_name), "provider": provider,
            "dataProvider": data_provider, "metricName": metric_name, "metricValue": value,
            "metricType": kind, "updatedAt": updated_at}


def metric_value(doc: dict):
    """A ProviderMetric's value in its own type (bool, int, float or str)."""
    value = doc.get("metricValue")
    if doc.get("metricType") == "bool" and isinstance(value, (bool, int)):
        return bool(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)  # bson.Int64 back to a plain int
    return value
