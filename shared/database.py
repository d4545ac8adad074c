"""Connecting to the suite's MongoDB (embedded `nx-27017` or a real server) with PyMongo's async API."""
from __future__ import annotations

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.uri_parser import parse_uri

from shared import metrics, models

DEFAULT_DATABASE = "singularity"


def database_name(url: str) -> str:
    return parse_uri(url).get("database") or DEFAULT_DATABASE


def client(url: str, **options) -> AsyncMongoClient:
    options.setdefault("serverSelectionTimeoutMS", 10_000)
    options.setdefault("tz_aware", True)
    options.setdefault("event_listeners", [metrics.DatabaseErrors()])
    return AsyncMongoClient(url, **options)


def address(url: str) -> str:
    """host:port of the server(s), without the credentials a URL may hold."""
    # By hand: parse_uri resolves mongodb+srv:// names through DNS.
    hosts = url.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0]
    return hosts.rsplit("@", 1)[-1]


async def ensure_indexes(db: AsyncDatabase) -> None:
    for collection, keys, options in models.INDEXES:
        await db[collection].create_index(keys, **options)
