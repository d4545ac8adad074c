"""Connecting to the suite's MongoDB (embedded `nx-27017` or a real server) with PyMongo's async API."""
from __future__ import annotations

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import AutoReconnect, ConnectionFailure, NetworkTimeout, ServerSelectionTimeoutError
from pymongo.uri_parser import parse_uri

from shared import metrics, models

DEFAULT_DATABASE = "singularity"

# How long an operation of a running module waits for an unreachable database before it fails:
# an API answers 503 within 2 s instead of holding its client for PyMongo's default, and a worker
# just tries again. A live server stays selectable however slow it is, so this only bites when
# the database is really away.
SERVICE_SELECTION_TIMEOUT_MS = 1000
# What PyMongo raises when it cannot reach the database (the last three are ConnectionFailures,
# named for the reader): the operation may be retried as it is once the database is back.
UNAVAILABLE = (ConnectionFailure, AutoReconnect, NetworkTimeout, ServerSelectionTimeoutError)


def unavailable(exc: BaseException) -> bool:
    return isinstance(exc, UNAVAILABLE)


def database_name(url: str) -> str:
    return parse_uri(url).get("database") or DEFAULT_DATABASE


def client(url: str, **options) -> AsyncMongoClient:
    options.setdefault("serverSelectionTimeoutMS", 10_000)
    options.setdefault("tz_aware", True)
    options.setdefault("event_listeners", [metrics.DatabaseErrors()])
    return AsyncMongoClient(url, **options)


def service_client(url: str) -> AsyncMongoClient:
    """The client of `singularity run`'s modules: fails fast while the database is away."""
    return client(url, serverSelectionTimeoutMS=SERVICE_SELECTION_TIMEOUT_MS)


def address(url: str) -> str:
    """host:port of the server(s), without the credentials a URL may hold."""
    # By hand: parse_uri resolves mongodb+srv:// names through DNS.
    hosts = url.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0]
    return hosts.rsplit("@", 1)[-1]


async def ensure_indexes(db: AsyncDatabase) -> None:
    for collection, keys, options in models.INDEXES:
        await db[collection].create_index(keys, **options)


async def count(collection: AsyncCollection, query: dict) -> int:
    """An exact count as an aggregation: the embedded server answers `count_documents` by scanning
    the collection, while a `$match` + `$count` pipeline runs in SQL over its indexes."""
    rows = await (await collection.aggregate([{"$match": query}, {"$count": "n"}])).to_list(None)
    return rows[0]["n"] if rows else 0
