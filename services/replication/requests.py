"""Checks on replication request bodies, before anything is written; every error names its field."""
from __future__ import annotations

from services.dealmaking import validation as deal
from services.ranking.sources import SOURCES
from services.replication import schemas
from shared import criteria
from shared.api import Body, InvalidParameter
from shared.config import Config

# Epochs a start may be delayed by: boost refuses starts further out than a few weeks anyway.
MAX_START_DELAY = 30 * deal.EPOCHS_PER_DAY
MAX_LIMIT = 10**6


def known_metrics() -> dict[str, str]:
    """Every metric a ranking source declares (whether or not this host's ranking enables it): the
    names criteria may use. The ranking service checks again against its enabled sources."""
    known: dict[str, str] = {}
    for source in SOURCES.values():
        known.update(source.metrics)
    return known


def check_criteria(value) -> object:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidParameter("missing field: criteria")
    if not isinstance(value, (str, list)):
        raise InvalidParameter("criteria must be a string or a list of entries")
    try:
        criteria.parse(value, known_metrics())
    except criteria.CriteriaError as exc:
        raise InvalidParameter(f"criteria: {exc.message}", exc.detail) from None
    return value


def replicas(body: Body, key: str, required: bool) -> int | None:
    value = body.int(key, required=required)
    if value is not None and not 1 <= value <= schemas.MAX_REPLICAS:
        raise InvalidParameter(f"{key} must be between 1 and {schemas.MAX_REPLICAS}", value)
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


def deal_parameters(body: Body, config: Config) -> dict:
    settings = config.replication_service
    out = {}
    verified = body.bool("verified", required=False)
    out["verified"] = settings.verified if verified is None else verified
    duration = body.int("duration", required=False)
    out["duration"] = deal.duration("duration", settings.duration if duration is None else duration)
    delay = body.int("startDelay", required=False, minimum=0)
    delay = settings.start_delay if delay is None else delay
    if delay > MAX_START_DELAY:
        raise InvalidParameter(f"startDelay must be at most {MAX_START_DELAY} epochs (30 days)", delay)
    out["startDelay"] = delay
    raw_price = body.data.get("price")
    out["price"] = deal.price("price", settings.price if raw_price is None else raw_price)
    for key, default in (("keepUnsealed", settings.keep_unsealed), ("announceToIpni", settings.announce_to_ipni)):
        value = body.bool(key, required=False)
        out[key] = default if value is None else value
    template = body.data.get("urlTemplate")
    out["urlTemplate"] = default_url_template(config) if template is None else url_template(template)
    for key, default in (("maxPendingPerProvider", settings.max_pending_per_provider),
                         ("dealsPerDay", settings.deals_per_day)):
        value = body.int(key, required=False, minimum=1)
        if value is not None and value > MAX_LIMIT:
            raise InvalidParameter(f"{key} must be at most {MAX_LIMIT}", value)
        out[key] = default if value is None else value
    return out


def new_request(body: Body, config: Config) -> dict:
    """The checked fields of POST /replication, less the dataset (see handlers)."""
    body.only(*schemas.NEW_REPLICATION)
    has_dataset, has_path = body.data.get("datasetId") is not None, body.data.get("path") is not None
    if has_dataset == has_path:
        raise InvalidParameter("give either datasetId (a prepared dataset) or path (a CAR file)")
    if has_dataset:
        for key in ("dataCid", "pieceCid", "pieceSize"):
            if body.data.get(key) is not None:
                raise InvalidParameter(f"{key} is only for a CAR file request (with path)")
    min_replicas = replicas(body, "minReplicas", True)
    max_replicas = replicas(body, "maxReplicas", False)
    max_replicas = min_replicas if max_replicas is None else max_replicas
    check_bounds(min_replicas, max_replicas)
    fields = {
        "minReplicas": min_replicas, "maxReplicas": max_replicas,
        "criteria": check_criteria(body.data.get("criteria")),
        "client": deal.wallet_address("client", body.str("client")),
    }
    key_path = body.str("keyPath")
    deal.key_path("keyPath", key_path, config.deal_making_service.key_dir)
    fields["keyPath"] = key_path
    fields.update(deal_parameters(body, config))
    return fields


def update(body: Body, request: dict, config: Config) -> dict:
    """The fields POST /replication/{id} changes ({"state": "removed"} is handled by the caller)."""
    body.only(*schemas.UPDATE)
    changes: dict = {}
    state = body.data.get("state")
    if state is not None and state not in schemas.STATES:
        raise InvalidParameter(f"state must be one of {', '.join(schemas.STATES)}", str(state)[:100])
    for key in ("minReplicas", "maxReplicas"):
        value = replicas(body, key, False)
        if value is not None:
            changes[key] = value
    if "minReplicas" in changes and "maxReplicas" not in changes and request["maxReplicas"] < changes["minReplicas"]:
        changes["maxReplicas"] = changes["minReplicas"]  # raising the floor raises a ceiling left at its default
    check_bounds(changes.get("minReplicas", request["minReplicas"]), changes.get("maxReplicas", request["maxReplicas"]))
    if body.data.get("criteria") is not None:
        changes["criteria"] = check_criteria(body.data["criteria"])
    if body.data.get("client") is not None:
        changes["client"] = deal.wallet_address("client", body.str("client"))
    if body.data.get("keyPath") is not None:
        key_path = body.str("keyPath")
        deal.key_path("keyPath", key_path, config.deal_making_service.key_dir)
        changes["keyPath"] = key_path
    if state is not None:
        changes["state"] = state
    return changes
