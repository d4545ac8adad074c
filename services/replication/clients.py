"""The two services a round talks to over HTTP: ranking (candidates) and deal making (proposals).

Replication never imports their handlers: the ranking service applies its own view of the
metrics, and the deal making service its validation and duplicate protection.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import aiohttp

from shared.config import Config

LOOKUP_LIMIT = 10_000


class RoundError(Exception):
    """The round cannot go on (a service unreachable, a refusal that concerns the whole request):
    recorded on the request as its error, retried next round."""


@dataclass
class DealAnswer:
    status: int  # HTTP status; 0 when the service could not be reached
    body: dict

    @property
    def accepted(self) -> bool:
        return self.status == 200

    @property
    def message(self) -> str:
        return str(self.body.get("error") or self.body.get("detail") or self.body)[:500]


def _headers(config: Config) -> dict:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if config.connection.api_token:
        headers["Authorization"] = f"Bearer {config.connection.api_token}"
    return headers


async def _json(response: aiohttp.ClientResponse) -> dict | list:
    try:
        return json.loads(await response.read() or b"null")
    except ValueError:
        return {"error": f"HTTP {response.status}, not JSON"}


async def candidates(session: aiohttp.ClientSession, config: Config, criteria) -> list[str]:
    """Provider ids matching `criteria`, best first, from POST /ranking/lookup."""
    url = config.connection.ranking_service.rstrip("/") + "/ranking/lookup"
    try:
        async with session.post(url, data=json.dumps({"criteria": criteria, "limit": LOOKUP_LIMIT}),
                                headers=_headers(config), timeout=aiohttp.ClientTimeout(total=30)) as response:
            body = await _json(response)
            status = response.status
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise RoundError(f"the ranking service at {url} cannot be reached: {type(exc).__name__}: {exc}") from None
    if status != 200 or not isinstance(body, list):
        error = body.get("error") if isinstance(body, dict) else None
        raise RoundError(f"the ranking service refused the lookup (HTTP {status}): {error or body}"[:500])
    return [row["id"] for row in body if isinstance(row, dict) and isinstance(row.get("id"), str)]


async def propose(session: aiohttp.ClientSession, config: Config, proposal: dict) -> DealAnswer:
    """POST /deal; a deal making service that cannot be reached is status 0."""
    url = config.connection.deal_making_service.rstrip("/") + "/deal"
    # Boost's own timeout twice (wallet import, deal) plus slack: the service answers within it.
    timeout = aiohttp.ClientTimeout(total=2 * config.deal_making_service.timeout + 30)
    try:
        async with session.post(url, data=json.dumps(proposal), headers=_headers(config), timeout=timeout) as response:
            body = await _json(response)
            return DealAnswer(response.status, body if isinstance(body, dict) else {"answer": body})
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return DealAnswer(0, {"error": f"the deal making service at {url} cannot be reached: {type(exc).__name__}: {exc}"})
