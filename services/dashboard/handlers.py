"""One function per page (and action) of the dashboard: each asks the APIs for what the page
shows, a page of it at a time, and returns the template's values. A service that fails gives a
notice in place of its part of the page."""
from __future__ import annotations

import asyncio
import time

from services.dashboard import charts
from services.dashboard.client import SERVICES, ServiceError, Services, attempt, segment
from services.dashboard.views import Rates, preparation_progress

# The metrics the providers page shows as columns, when a source gives them (all are on a provider's own page).
PROVIDER_COLUMNS = ("deals.active", "deals.acceptance_rate", "deals.activation_rate", "retrieval.success_rate",
                    "retrieval.ttfb_ms", "filrep.score", "filrep.region", "filrep.price", "lotus.raw_power",
                    "ipni.active")
STATES = ("paused", "active", "removed")


async def preparations(services: Services, rates: Rates, offset: int, limit: int) -> dict:
    data, error = await attempt(services.get("preparation", "/preparations", offset=offset, limit=limit))
    rows = [] if data is None else [{**p, "progress": preparation_progress(p, rates)} for p in data["preparations"]]
    return {"rows": rows, "page": _page(data, offset, limit), "notices": [error] if error else []}


async def preparation(services: Services, rates: Rates, id: str, offset: int, limit: int, path: str | None,
                      file_offset: int) -> dict:
    prep_path = f"/preparation/{segment(id)}"
    calls = [services.get("preparation", prep_path, offset=offset, limit=limit)]
    if path is not None:
        calls.append(services.get("preparation", prep_path + "/files", path=path, offset=file_offset, limit=100))
    results = await asyncio.gather(*(attempt(call) for call in calls))
    (data, error), (files, files_error) = results[0], (results[1] if len(results) > 1 else (None, None))
    return {"id": id, "prep": data, "progress": preparation_progress(data, rates) if data else None,
            "chunks": (data or {}).get("generationRequests", []), "page": _page(data, offset, limit),
            "path": path, "files": files, "files_page": _page(files, file_offset, 100),
            "notices": [e for e in (error, files_error) if e]}


async def deals(services: Services, offset: int, limit: int, provider: str | None, state: str | None,
                deal_offset: int) -> dict:
    calls = [services.get("dealmaking", "/deals/providers", offset=offset, limit=limit)]
    if provider or state:
        calls.append(services.get("dealmaking", "/deals", provider=provider, state=state, offset=deal_offset, limit=50))
    results = await asyncio.gather(*(attempt(call) for call in calls))
    (data, error), (listed, list_error) = results[0], (results[1] if len(results) > 1 else (None, None))
    states = (data or {}).get("states") or []
    return {"providers": (data or {}).get("providers", []), "states": states, "page": _page(data, offset, limit),
            "provider": provider, "state": state, "deals": listed, "deals_page": _page(listed, deal_offset, 50),
            "notices": [e for e in (error, list_error) if e]}


async def replications(services: Services, offset: int, limit: int) -> dict:
    data, error = await attempt(services.get("replication", "/replications", offset=offset, limit=limit))
    return {"rows": (data or {}).get("replications", []), "page": _page(data, offset, limit),
            "notices": [error] if error else []}


async def replication(services: Services, id: str, offset: int, limit: int) -> dict:
    data, error = await attempt(services.get("replication", f"/replication/{segment(id)}", offset=offset, limit=limit))
    return {"id": id, "request": data, "chunks": (data or {}).get("replicationDetails", []),
            "page": _page(data, offset, limit), "notices": [error] if error else []}


async def providers(services: Services, offset: int, limit: int) -> dict:
    data, error = await attempt(services.get("ranking", "/providers", offset=offset, limit=limit))
    rows = (data or {}).get("providers", [])
    present = {key for row in rows for key, value in row.items() if value is not None}
    return {"rows": rows, "columns": [c for c in PROVIDER_COLUMNS if c in present], "page": _page(data, offset, limit),
            "notices": [error] if error else []}


async def provider(services: Services, id: str) -> dict:
    data, error = await attempt(services.get("ranking", f"/provider/{segment(id)}"))
    return {"id": id, "provider": data, "notices": [error] if error else []}


async def lookup(services: Services, criteria: str) -> dict:
    """The criteria preview: the providers the expression matches, as replication would see them."""
    # No `fields`: the answer holds the metrics the criteria name, which say why each one matched
    # (fields must be metrics of enabled sources, which the dashboard does not know).
    body: dict = {"limit": 100}
    if criteria.strip():
        body["criteria"] = criteria
    rows, error = await attempt(services.post("ranking", "/ranking/lookup", body))
    rows = rows or []
    columns = sorted({key for row in rows for key in row if key != "id"})
    return {"criteria": criteria, "rows": rows, "columns": columns, "notices": [error] if error else []}


async def workers(services: Services) -> dict:
    data, error = await attempt(services.get("preparation", "/status"))
    return {"status": data, "notices": [error] if error else []}


async def history(services: Services, days: int) -> dict:
    # Buckets in seconds; the services give at most 1,000 of them. Days end at midnight UTC.
    day = 86400
    now = int(time.time())
    until = (now // day + 1) * day
    since = until - days * day
    states_bucket = 3600 if days <= 7 else day
    (deals_data, deals_error), (prep_data, prep_error) = await asyncio.gather(
        attempt(services.get("dealmaking", "/deals/history", since=since, until=min(now, until), bucket=states_bucket)),
        attempt(services.get("preparation", "/preparations/history", since=since, until=until, bucket=day)))
    notices = [_older(e, "deal state history") for e in (deals_error,) if e]
    notices += [_older(e, "preparation history") for e in (prep_error,) if e]
    return {"days": days, "deal_chart": charts.deal_states(deals_data) if deals_data else None,
            "bytes_chart": charts.bytes_per_bucket(prep_data) if prep_data else None, "notices": notices}


async def set_state(services: Services, kind: str, id: str, state: str) -> dict:
    """Pause, resume or remove a preparation or a replication request: the CLI's own API call."""
    service = "preparation" if kind == "preparation" else "replication"
    return await services.post(service, f"/{kind}/{segment(id)}", {"state": state})


def _older(error: ServiceError, what: str) -> ServiceError:
    if error.kind == "missing":  # the route itself is unknown: a service from before the history was kept
        return ServiceError(error.service, "missing", f"The {SERVICES[error.service][2]} keeps no {what} "
                            "(it is older than the dashboard): upgrade it to see this chart.")
    return error


def _page(data: dict | None, offset: int, limit: int) -> dict:
    total = (data or {}).get("total", 0) or 0
    return {"offset": offset, "limit": limit, "total": total,
            "previous": max(0, offset - limit) if offset > 0 else None,
            "next": offset + limit if offset + limit < total else None,
            "last": max(0, (total - 1) // limit * limit)}
