"""The dashboard's client of the suite's HTTP APIs (the same ones the CLI calls, with the same
api_token): every answer it cannot use becomes a `ServiceError` whose message a page shows in
place of the data, so a service that is down, disabled or older than the dashboard costs that
part of the page only."""
from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

import aiohttp

from shared.config import Config

# name -> (the [connection] key of its URL, the config section that enables it, what people call it)
SERVICES = {
    "preparation": ("deal_preparation_service", "deal_preparation_service", "preparation service"),
    "dealmaking": ("deal_making_service", "deal_making_service", "deal making service"),
    "replication": ("replication_service", "replication_service", "replication service"),
    "ranking": ("ranking_service", "ranking_service", "ranking service"),
}


class ServiceError(Exception):
    """An answer the page cannot show: `kind` is down (unreachable, timed out), refused (401),
    missing (404), invalid (another 4xx: the request was wrong) or failed (5xx, not JSON)."""

    def __init__(self, service: str, kind: str, message: str, status: int | None = None, detail: Any = None):
        super().__init__(message)
        self.service, self.kind, self.message, self.status, self.detail = service, kind, message, status, detail


def segment(value: str) -> str:
    """One path segment of an API URL: quoted, so an id can never add a segment or a query."""
    return quote(value, safe="")


class Services:
    def __init__(self, config: Config, session: aiohttp.ClientSession | None):
        self.config = config
        self.session = session
        self.timeout = aiohttp.ClientTimeout(total=config.dashboard.timeout)

    def url(self, service: str) -> str:
        return getattr(self.config.connection, SERVICES[service][0]).rstrip("/")

    async def get(self, service: str, path: str, /, **query: Any) -> Any:
        return await self.request(service, "GET", path, query=query)

    async def post(self, service: str, path: str, body: dict) -> Any:
        return await self.request(service, "POST", path, body=body)

    async def request(self, service: str, method: str, path: str, query: dict | None = None,
                      body: dict | None = None) -> Any:
        headers = {"Accept": "application/json"}
        if self.config.connection.api_token:
            headers["Authorization"] = f"Bearer {self.config.connection.api_token}"
        params = {k: str(v) for k, v in (query or {}).items() if v is not None and v != ""}
        base, label = self.url(service), SERVICES[service][2]
        try:
            async with self.session.request(method, base + path, params=params, json=body, headers=headers,
                                            timeout=self.timeout, allow_redirects=False) as response:
                raw = await response.read()
                status = response.status
        except asyncio.TimeoutError:
            raise ServiceError(service, "down", f"the {label} at {base} did not answer within "
                               f"{self.config.dashboard.timeout:g} s") from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            section = SERVICES[service][1]
            enabled = getattr(self.config, section).enabled
            hint = ("is `singularity run` started?" if enabled else
                    f"it is not enabled here: [{section}] enabled = true, or run it on another host "
                    f"and set [connection] {SERVICES[service][0]}")
            raise ServiceError(service, "down", f"the {label} at {base} does not answer ({type(exc).__name__}); {hint}") from None
        try:
            data = json.loads(raw or b"null")
        except ValueError:
            raise ServiceError(service, "failed", f"the {label} answered HTTP {status} with something that is not JSON",
                               status) from None
        if status < 400:
            return data
        error = data.get("error") if isinstance(data, dict) else None
        detail = data.get("detail") if isinstance(data, dict) else None
        if status == 401:
            raise ServiceError(service, "refused", f"the {label} refused the dashboard's token: give the dashboard "
                               "the same [connection] api_token as the services", status)
        kind = "missing" if status == 404 else "invalid" if status < 500 else "failed"
        raise ServiceError(service, kind, f"{label}: {error or f'HTTP {status}'}", status, detail)


async def attempt(call) -> tuple[Any, ServiceError | None]:
    """(answer, None), or (None, the error) for the page to show as a notice."""
    try:
        return await call, None
    except ServiceError as exc:
        return None, exc
