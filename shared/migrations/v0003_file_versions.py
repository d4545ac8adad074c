"""Files have versions: every GenerationFile of an existing preparation becomes version 1.

A rescan (services/worker/rescan.py) adds the next version of a path that changed and a tombstone
(`deleted: true`, no chunk) for one that is gone; the index, bundles and retrievals use the newest
version of each path (shared/models/fileversions.py). Documents written before hold no version:
they are the first, and this writes so. Code older than this version would read tombstones as
files and every version as part of the dataset, which the schema version keeps it from doing.
"""
from shared import models

VERSION = 3


async def up(ctx) -> None:
    async def first_versions() -> None:
        # Idempotent: only what has no version yet is written.
        await ctx.db[models.GENERATION_FILES].update_many({"version": {"$exists": False}}, {"$set": {"version": 1}})

    await ctx.step("first-versions", first_versions)
