"""A migration one version past the real ones, for the tests: one step that must run exactly once (a counter), then a
batched, naturally idempotent backfill that can be made to fail or to kill its process midway."""
from __future__ import annotations

import os
import signal
import sys

from shared import models
from shared.migrations import MIGRATIONS, Migration

FAIL: str | None = None  # "raise" or "kill" after the first batch; also $SAMPLE_MIGRATION_FAIL
PAUSE = 0.0  # seconds to sleep per batch, so a concurrent start has to wait


async def up(ctx) -> None:
    async def count() -> None:
        await ctx.db["SampleCounter"].update_one({"_id": "runs"}, {"$inc": {"n": 1}}, upsert=True)

    async def mark() -> None:
        import asyncio
        batches = 0
        files = ctx.db[models.GENERATION_FILES]
        while ids := [d["_id"] async for d in files.find({"sampleMark": {"$exists": False}}, {"_id": 1}).limit(2)]:
            for doc_id in ids:
                await files.update_one({"_id": doc_id}, {"$set": {"sampleMark": True}})
            batches += 1
            await ctx.renew()
            await asyncio.sleep(PAUSE)
            mode = FAIL or os.environ.get("SAMPLE_MIGRATION_FAIL")
            if batches == 1 and mode == "raise":
                raise RuntimeError("injected failure")
            if batches == 1 and mode == "kill":
                sys.stdout.flush()
                os.kill(os.getpid(), signal.SIGKILL)

    await ctx.step("count", count)
    await ctx.step("mark", mark)


SAMPLE = Migration(MIGRATIONS[-1].version + 1, "sample", "A test migration: count once, then mark every GenerationFile", up)
WITH_SAMPLE = [*MIGRATIONS, SAMPLE]


if __name__ == "__main__":  # python -m tests.ops.sample_migration URL: apply up to SAMPLE
    import asyncio

    from shared import database
    from shared.migrations import apply

    async def main(url: str) -> None:
        client = database.client(url)
        await apply(client[database.database_name(url)], WITH_SAMPLE)

    asyncio.run(main(sys.argv[1]))
