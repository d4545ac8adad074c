"""Schema versions and the migrations between them.

The database records the version it holds in one document (`SchemaVersion/schema`, field
`version`; absent means a database written before versioning, version 0). `singularity run`
calls `apply` before any module starts: it runs every migration above that version, in order, and
refuses a database newer than the code.

A migration is a module `vNNNN_<name>.py` in this package with `VERSION = NNNN`, a docstring whose
first line says what it does, and `async def up(ctx: Context)`. It must survive being killed
anywhere: work wrapped in `await ctx.step(name, fn)` is recorded when done and skipped when a later
start resumes the migration; the work inside a step must itself be idempotent (select only what is
left to change, e.g. `{field: {"$exists": False}}`), since a kill inside a step repeats it. Long
steps call `await ctx.renew()` now and then (every batch) to keep the lease.

One process migrates at a time: it holds a lease in the schema document (a token, its host and pid,
an expiry renewed at every step). The others wait. A lease is taken over when it expires or when
its holder's pid is gone from this host, so a run restarted after a kill resumes at once.
"""
from __future__ import annotations

import asyncio
import importlib
import logging
import os
import pkgutil
import re
import socket
import uuid
from dataclasses import dataclass
from typing import Awaitable, Callable

import psutil
from pymongo.asynchronous.database import AsyncDatabase

from shared import models

log = logging.getLogger(__name__)

LEASE = 120.0  # seconds a migrating process may go without renewing its lease
POLL = 0.5  # seconds between looks at a lease held by another process


class MigrationError(Exception):
    pass


class SchemaTooNew(MigrationError):
    def __init__(self, version: int, known: int):
        super().__init__(f"the database holds schema version {version}, newer than this singularity knows "
                         f"({known}); upgrade singularity on this host before starting it")
        self.version = version
        self.known = known


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    description: str
    up: Callable[["Context"], Awaitable[None]]


def discover() -> list[Migration]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        match = re.fullmatch(r"v(\d{4})_(\w+)", info.name)
        if not match:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if module.VERSION != int(match.group(1)):
            raise MigrationError(f"{info.name} declares VERSION = {module.VERSION}")
        found.append(Migration(module.VERSION, match.group(2), (module.__doc__ or "").strip().splitlines()[0],
                               module.up))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    # A gap would let a database migrated past it never run the missing step once it appears.
    if versions != list(range(1, len(versions) + 1)):
        raise MigrationError(f"migrations must be numbered 1, 2, 3... each once: {versions}")
    return found


MIGRATIONS = discover()
CURRENT = MIGRATIONS[-1].version if MIGRATIONS else 0


async def read(db: AsyncDatabase) -> dict:
    """{"version", "known", "migrating"}: what the database holds and what this code knows."""
    doc = await db[models.SCHEMA_VERSION].find_one({"_id": models.SCHEMA_VERSION_ID}) or {}
    return {"version": doc.get("version", 0), "known": CURRENT, "migrating": doc.get("migrating") or None}


def _holder_gone(doc: dict) -> bool:
    if doc.get("lockExpires", 0) < models.now():
        return True
    if doc.get("lockHost") != socket.gethostname():
        return False  # another host's process: only its lease expiring tells us
    try:
        return psutil.Process(doc.get("lockPid")).status() == psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, TypeError, ValueError):
        return True


class Lease:
    def __init__(self, db: AsyncDatabase, token: str):
        self.collection = db[models.SCHEMA_VERSION]
        self.token = token

    async def write(self, fields: dict) -> None:
        """Set fields of the schema document and renew the lease, if we still hold it."""
        result = await self.collection.update_one(
            {"_id": models.SCHEMA_VERSION_ID, "lockToken": self.token},
            {"$set": {**fields, "lockExpires": models.now() + LEASE}})
        if result.matched_count != 1:
            raise MigrationError("another process took over the migration (this one stalled past its lease)")

    async def release(self) -> None:
        await self.collection.update_one({"_id": models.SCHEMA_VERSION_ID, "lockToken": self.token},
                                         {"$set": {"lockExpires": 0}})


class Context:
    """What a migration is given: the database, and steps recorded as they complete."""

    def __init__(self, db: AsyncDatabase, lease: Lease, migrating: dict):
        self.db = db
        self.lease = lease
        self.migrating = migrating

    async def step(self, name: str, fn: Callable[[], Awaitable[None]]) -> None:
        if name in self.migrating["steps"]:
            log.info("migration %d: step %s already done", self.migrating["version"], name)
            return
        await self.renew()
        await fn()
        self.migrating["steps"].append(name)
        await self.lease.write({"migrating": self.migrating})
        log.info("migration %d: step %s done", self.migrating["version"], name)

    async def renew(self) -> None:
        await self.lease.write({})


async def _acquire(db: AsyncDatabase, known: int) -> Lease | None:
    """The lease, or None when there is nothing to do."""
    collection = db[models.SCHEMA_VERSION]
    await collection.update_one({"_id": models.SCHEMA_VERSION_ID},
                                {"$setOnInsert": {"lockToken": "", "lockExpires": 0}}, upsert=True)
    token = uuid.uuid4().hex
    waiting_logged = False
    while True:
        doc = await collection.find_one({"_id": models.SCHEMA_VERSION_ID})
        version = doc.get("version", 0)
        # A migration in flight to a version we do not know: newer code was changing the data.
        version = max(version, (doc.get("migrating") or {}).get("version", 0))
        if version > known:
            raise SchemaTooNew(version, known)
        if version == known and not doc.get("migrating"):
            return None
        if _holder_gone(doc):
            # Compare-and-set on the token we saw: of two processes taking over, one wins.
            taken = await collection.update_one(
                {"_id": models.SCHEMA_VERSION_ID, "lockToken": doc.get("lockToken", "")},
                {"$set": {"lockToken": token, "lockHost": socket.gethostname(), "lockPid": os.getpid(),
                          "lockExpires": models.now() + LEASE}})
            if taken.matched_count == 1:
                return Lease(db, token)
            continue
        if not waiting_logged:
            log.info("waiting for the migration run by pid %s on %s", doc.get("lockPid"), doc.get("lockHost"))
            waiting_logged = True
        await asyncio.sleep(POLL)


async def apply(db: AsyncDatabase, migrations: list[Migration] | None = None) -> int:
    """Bring the database to the newest schema version this code knows; returns that version."""
    migrations = MIGRATIONS if migrations is None else migrations
    known = migrations[-1].version if migrations else 0
    lease = await _acquire(db, known)
    if lease is None:
        return known
    try:
        doc = await db[models.SCHEMA_VERSION].find_one({"_id": models.SCHEMA_VERSION_ID})
        version = doc.get("version", 0)
        for migration in migrations:
            if migration.version <= version:
                continue
            migrating = doc.get("migrating") or {}
            if migrating.get("version") == migration.version:
                log.info("resuming migration %d (%s) after steps %s", migration.version, migration.description,
                         migrating.get("steps"))
            else:
                migrating = {"version": migration.version, "name": migration.name, "steps": [],
                             "startedAt": models.now()}
                log.info("applying migration %d: %s", migration.version, migration.description)
            await lease.write({"migrating": migrating})
            try:
                await migration.up(Context(db, lease, migrating))
            except MigrationError:
                raise
            except Exception as exc:
                raise MigrationError(f"migration {migration.version} ({migration.name}) failed: "
                                     f"{type(exc).__name__}: {exc}; it resumes at the next start") from exc
            await lease.write({"version": migration.version, "migrating": None, "updatedAt": models.now()})
            doc = {"version": migration.version}
            log.info("database schema is now version %d", migration.version)
        return known
    finally:
        try:
            await asyncio.shield(lease.release())
        except Exception as exc:  # the lease expires by itself
            log.warning("could not release the migration lease: %s", exc)
