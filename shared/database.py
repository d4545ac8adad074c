"""Connecting to the suite's MongoDB (embedded `nx-27017` or a real server) with PyMongo's async API."""
from __future__ import annotations

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.uri_parser import parse_uri

from shared import models

DEFAULT_DATABASE = "singularity"


def database_name(url: str) -> str:
    return parse_uri(url).get("database") or DEFAULT_DATABASE


def client(url: str, **options) -> AsyncMongoClient:
    options.setdefault("serverSelectionTimeoutMS", 10_000)
    options.setdefault("tz_aware", True)
    return AsyncMongoClient(url, **options)


async def ensure_indexes(db: AsyncDatabase) -> None:
    for collection, keys, options in models.INDEXES:
        await db[collection].create_index(keys, **options)


async def count(collection: AsyncCollection, query: dict) -> int:
    """An exact count as an aggregation: the embedded server answers `count_documents` by scanning
    the collection, while a `$match` + `$count` pipeline runs in SQL over its indexes."""
    rows = await (await collection.aggregate([{"$match": query}, {"$count": "n"}])).to_list(None)
    return rows[0]["n"] if rows else 0
