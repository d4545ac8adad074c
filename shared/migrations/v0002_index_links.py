"""Dataset indexes become one IPLD DAG: their source CIDs are rebuilt as links (tag 42).

Indexes written before this version hold `__source.cid` and `dataCid` as strings, so a gateway
cannot walk from the index to a file and a pin of the index reaches none of the data. Rebuilding
needs the chunk CARs and the worker's out_dir, which belong to the indexer, not to the migration:
this marks every existing index stale, and the indexer rebuilds each one on its next pass. The old
index keeps being served until its successor is saved, and its index CID changes then.
"""
from shared import models

VERSION = 2


async def up(ctx) -> None:
    async def mark() -> None:
        # Idempotent: marking again only asks for a rebuild that is due anyway. Preparations are
        # few; they are filtered here because null-matching differs between servers.
        async for prep in ctx.db[models.SCANNING].find({}, {"indexCid": 1}):
            if prep.get("indexCid"):
                await ctx.db[models.SCANNING].update_one({"_id": prep["_id"]}, {"$set": {"indexStale": True}})

    await ctx.step("mark-indexes-stale", mark)
