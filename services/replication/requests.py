"""Checks on replication request bodies beyond their declared shape (schemas.py), before anything
is written; every error names its field. The body is the dict the declaration checked (absent
fields are None)."""
from __future__ import annotations

from services.replication import schemas
from shared import criteria
from shared import deal_params as deal
from shared.api import InvalidParameter
from shared.config import Config
from shared.metric_catalog import every_metric


def check_criteria(value) -> object:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidParameter("missing field: criteria")
    try:
        criteria.parse(value, every_metric())
    except criteria.CriteriaError as exc:
        raise InvalidParameter(f"criteria: {exc.message}", exc.detail) from None
    return value


def check_bounds(min_replicas: int, max_replicas: int) -> None:
    if max_replicas < min_replicas:
        raise InvalidParameter("maxReplicas must not be below minReplicas",
                               {"minReplicas": min_replicas, "maxReplicas": max_replicas})


def url_template(value) -> str:
    if not isinstance(value, str):
        raise InvalidParameter("urlTemplate must be a string (empty for offline deals)")
    if value == "":
        return value
    sample = value.replace("{dataCid}", "bafy").replace("{pieceCid}", "baga").replace("{PIECE_CID}", "baga")
    if "{" in sample or "}" in sample:
        raise InvalidParameter("urlTemplate knows only {dataCid}, {pieceCid} and {PIECE_CID}", value[:300])
    deal.http_url("urlTemplate", sample)
    return value


def default_url_template(config: Config) -> str:
    prefix = config.replication_service.http_url_prefix or config.connection.http_hosting_service
    return prefix.rstrip("/") + "/{dataCid}.car"


def deal_parameters(body: dict, config: Config) -> dict:
    """The deal fields, each given or the [replication_service] default; types and ranges are declared."""
    settings = config.replication_service
    defaults = {"verified": settings.verified, "duration": settings.duration, "startDelay": settings.start_delay,
                "price": settings.price, "keepUnsealed": settings.keep_unsealed,
                "announceToIpni": settings.announce_to_ipni,
                "maxPendingPerProvider": settings.max_pending_per_provider, "dealsPerDay": settings.deals_per_day}
    out = {key: default if body.get(key) is None else body[key] for key, default in defaults.items()}
    out["duration"] = deal.duration("duration", out["duration"])
    if out["startDelay"] > schemas.MAX_START_DELAY:  # a configured default too (a given one is declared)
        raise InvalidParameter(f"startDelay must be at most {schemas.MAX_START_DELAY} epochs (30 days)",
                               out["startDelay"])
    out["price"] = deal.price("price", out["price"])
    template = body.get("urlTemplate")
    out["urlTemplate"] = default_url_template(config) if template is None else url_template(template)
    return out


def new_request(body: dict, config: Config) -> dict:
    """The checked fields of POST /replication, less the dataset (see handlers)."""
    has_dataset, has_path = body.get("datasetId") is not None, body.get("path") is not None
    if has_dataset == has_path:
        raise InvalidParameter("give either datasetId (a prepared dataset) or path (a CAR file)")
    if has_dataset:
        for key in ("dataCid", "pieceCid", "pieceSize"):
            if body.get(key) is not None:
                raise InvalidParameter(f"{key} is only for a CAR file request (with path)")
    min_replicas = body["minReplicas"]
    max_replicas = min_replicas if body.get("maxReplicas") is None else body["maxReplicas"]
    check_bounds(min_replicas, max_replicas)
    fields = {
        "minReplicas": min_replicas, "maxReplicas": max_replicas,
        "criteria": check_criteria(body["criteria"]),
        "client": deal.wallet_address("client", body["client"]),
    }
    deal.key_path("keyPath", body["keyPath"], config.deal_making_service.key_dir)
    fields["keyPath"] = body["keyPath"]
    fields.update(deal_parameters(body, config))
    return fields


def update(body: dict, request: dict, config: Config) -> dict:
    """The fields POST /replication/{id} changes ({"state": "removed"} is handled by the caller)."""
    changes = {key: body[key] for key in ("minReplicas", "maxReplicas") if body.get(key) is not None}
    if "minReplicas" in changes and "maxReplicas" not in changes and request["maxReplicas"] < changes["minReplicas"]:
        changes["maxReplicas"] = changes["minReplicas"]  # raising the floor raises a ceiling left at its default
    check_bounds(changes.get("minReplicas", request["minReplicas"]), changes.get("maxReplicas", request["maxReplicas"]))
    if body.get("criteria") is not None:
        changes["criteria"] = check_criteria(body["criteria"])
    if body.get("client") is not None:
        changes["client"] = deal.wallet_address("client", body["client"])
    if body.get("keyPath") is not None:
        deal.key_path("keyPath", body["keyPath"], config.deal_making_service.key_dir)
        changes["keyPath"] = body["keyPath"]
    if body.get("state") is not None:
        changes["state"] = body["state"]
    return changes
