"""Who may read what on the hosting service.

Pieces, CARs and blocks are what storage providers download: public by default, or guarded by
[http_hosting_service] token, which deal making hands to providers with each deal. Bundles and
/index are the owner's view of a dataset by name: they follow connection.api_token like the
management APIs, unless public_bundles is set. /metrics is a management endpoint like on every
service: the api_token only. The api_token, the owner's key, opens everything; the hosting token
opens content only, so a provider holding it cannot use any management API.
"""
from __future__ import annotations

from aiohttp import web

from shared.api import TokenPolicy
from shared.config import Config

OWNER_PREFIXES = ("/bundle/", "/index/")
MANAGEMENT = ("/metrics",)


def policy(config: Config) -> TokenPolicy:
    owner = ("connection.api_token", config.connection.api_token)
    hosting = ("http_hosting_service.token", config.http_hosting_service.token)
    public_bundles = config.http_hosting_service.public_bundles

    def tokens(request: web.Request) -> tuple[tuple[str, str], ...]:
        if request.path in MANAGEMENT:
            return (owner,)
        if request.path.startswith(OWNER_PREFIXES) or request.path in ("/bundle", "/index"):
            return () if public_bundles else (owner,)
        return (hosting, owner) if hosting[1] else ()

    return tokens
