"""Prometheus metrics, defined in this one place: the process's counters, and gauges of stored state.

Counters (bytes scanned and packed, jobs claimed and released, proposals, HTTP requests, database
errors) count what this process did: each `singularity run` exposes its own, and Prometheus sums
them over its targets. Gauges of stored state (preparations, chunks and deals by state) are read from
the database at every scrape, one `$group` per collection, so every process reports the same
figures for the whole suite, whichever modules it runs.
"""
from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, ProcessCollector,
                               disable_created_metrics)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from pymongo import monitoring
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from shared import models, stats

log = logging.getLogger(__name__)

# A `_created` series per counter doubles the output and tells nothing the process start time does not.
disable_created_metrics()
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)

SCANNED_BYTES = Counter("singularity_scanned_bytes", "Dataset bytes placed in committed chunks by scans",
                        registry=REGISTRY)
SCANNED_FILES = Counter("singularity_scanned_files", "Dataset files placed in committed chunks by scans",
                        registry=REGISTRY)
PACKED_BYTES = Counter("singularity_packed_bytes", "Source bytes of chunks packed into CAR files",
                       registry=REGISTRY)
CAR_BYTES = Counter("singularity_car_bytes", "Bytes of CAR files written for completed chunks", registry=REGISTRY)
PACKED_CHUNKS = Counter("singularity_packed_chunks", "Chunks packed into CAR files", registry=REGISTRY)
JOBS_CLAIMED = Counter("singularity_jobs_claimed", "Jobs claimed by workers of this process", ["collection"],
                       registry=REGISTRY)
JOBS_RELEASED = Counter("singularity_jobs_released", "Jobs given back: completed, error, handed_back "
                        "(interrupted) or expired (taken from a silent worker)", ["collection", "outcome"],
                        registry=REGISTRY)
DEAL_PROPOSALS = Counter("singularity_deal_proposals", "Deal proposals sent through boost, by outcome "
                         "(proposed, rejected, error, unavailable)", ["outcome"], registry=REGISTRY)
HTTP_REQUESTS = Counter("singularity_http_requests", "HTTP requests answered, by route template and status",
                        ["service", "method", "route", "status"], registry=REGISTRY)
HTTP_LATENCY = Histogram("singularity_http_request_duration_seconds", "Time to answer an HTTP request",
                         ["service", "method", "route"], registry=REGISTRY)
DB_ERRORS = Counter("singularity_database_errors", "Failed database commands and unanswered heartbeats",
                    ["operation"], registry=REGISTRY)

METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
SCRAPE_TIMEOUT = 5.0  # seconds the state gauges may take; Prometheus gives up at 10 by default


class DatabaseErrors(monitoring.CommandListener, monitoring.ServerHeartbeatListener):
    """Given to every client (shared.database.client): counts what failed, wherever it was called.
    Write errors such as a duplicate key come in a successful reply and are the code's business."""

    def started(self, event) -> None:
        pass

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        if isinstance(event, monitoring.ServerHeartbeatFailedEvent):
            DB_ERRORS.labels("heartbeat").inc()
        else:
            DB_ERRORS.labels(event.command_name).inc()


def _route(request: web.Request) -> str:
    """The route's template (`/preparation/{id}`), never the raw path: one series per route."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def measure(service: str):
    @web.middleware
    async def middleware(request: web.Request, handler):
        started = time.perf_counter()
        status = "500"
        try:
            response = await handler(request)
            status = str(response.status)
            return response
        except web.HTTPException as exc:
            status = str(exc.status)
            raise
        except asyncio.CancelledError:
            status = "499"  # the client went away
            raise
        finally:
            method = request.method if request.method in METHODS else "other"
            route = _route(request)
            HTTP_REQUESTS.labels(service, method, route, status).inc()
            HTTP_LATENCY.labels(service, method, route).observe(time.perf_counter() - started)

    return middleware


async def state_families(db: AsyncDatabase) -> list:
    up = GaugeMetricFamily("singularity_database_up", "1 when the state gauges could be read from the database")
    try:
        counts, version = await asyncio.wait_for(asyncio.gather(
            stats.state_counts(db),
            db[models.SCHEMA_VERSION].find_one({"_id": models.SCHEMA_VERSION_ID}, {"version": 1})), SCRAPE_TIMEOUT)
    except (PyMongoError, asyncio.TimeoutError) as exc:
        log.warning("metrics: cannot read state from the database: %s", exc)
        up.add_metric([], 0)
        return [up]
    up.add_metric([], 1)
    families = [up]
    for name, label, help_text in (("preparations", "status", "Preparations by scan status"),
                                   ("chunks", "status", "Chunks (generation requests) by status"),
                                   ("deals", "state", "Deals by state")):
        family = GaugeMetricFamily(f"singularity_{name}", help_text, labels=[label])
        for state, count in sorted(counts[name].items()):
            family.add_metric([state], count)
        families.append(family)
    schema = GaugeMetricFamily("singularity_schema_version", "Schema version the database holds")
    schema.add_metric([], (version or {}).get("version", 0))
    families.append(schema)
    return families


class _Families:
    def __init__(self, families: list):
        self.families = families

    def collect(self):
        return self.families


def scrape(db: AsyncDatabase | None):
    from shared.operations import Content, operation  # they import shared.api, which imports this module

    @operation("Prometheus metrics of this process, and gauges of the suite's stored state", tags=("operations",),
               responses={200: Content("text/plain", "the Prometheus text exposition format", {"type": "string"})})
    async def metrics(request: web.Request) -> web.Response:
        body = generate_latest(REGISTRY)
        if db is not None:
            registry = CollectorRegistry(auto_describe=False)
            registry.register(_Families(await state_families(db)))
            body += generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return metrics
