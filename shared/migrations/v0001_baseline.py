"""Baseline: a database written before schema versioning gets every index, then version 1.

The shapes of version 0 are the shapes of version 1 (tests/fixtures/schema_v0 holds a dump of
them): nothing is rewritten. The indexes are ensured here too, so a later migration can rely on
them whatever started the database.
"""
from shared import database

VERSION = 1


async def up(ctx) -> None:
    await ctx.step("indexes", lambda: database.ensure_indexes(ctx.db))
