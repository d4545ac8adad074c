"""Schema versions: a database written by the code before versioning migrates with nothing lost and
reads back through the APIs; a migration interrupted (by an error or kill -9) finishes at the next
start, each recorded step run once; a database newer than the code is refused."""
import asyncio
import os
import subprocess
import sys
import time

import pytest

from services.dealmaking.service import make_app as dealmaking_app
from services.hosting.service import app as hosting_app
from services.preparation.service import app as preparation_app
from shared import migrations, models
from shared.runtime import Runtime
from tests.ops import dump, sample_migration
from tests.ops.sample_migration import SAMPLE, WITH_SAMPLE
from tests.processes import singularity, write_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(autouse=True)
def no_injected_failure():
    sample_migration.FAIL = None
    sample_migration.PAUSE = 0.0
    yield
    sample_migration.FAIL = None
    sample_migration.PAUSE = 0.0


async def test_version_0_dump_migrates_with_nothing_lost_and_reads_back(db, config, serve_app):
    before = await dump.load(db)
    assert (await migrations.read(db))["version"] == 0
    assert await migrations.apply(db) == migrations.CURRENT >= 1
    assert (await migrations.read(db)) == {"version": migrations.CURRENT, "known": migrations.CURRENT,
                                           "migrating": None}
    for name, docs in before.items():
        now = await db[name].find({}).sort("_id", 1).to_list(None)
        if name == models.SCANNING:  # v0002: indexes built with string source CIDs are to be rebuilt
            assert [bool(d.pop("indexStale", False)) for d in now] == [bool(d.get("indexCid")) for d in docs]
        if name == models.GENERATION_FILES:  # v0003: every file of version 0 is the first version of its path
            assert [d.pop("version") for d in now] == [1] * len(docs)
        assert [dump.canonical(d) for d in now] == [dump.canonical(d) for d in docs], name
    runtime = Runtime(config, db.client, db)
    prep_api = await serve_app(preparation_app(runtime))
    listed = (await (await prep_api.get("/preparations")).json())["preparations"]
    assert sorted(p["name"] for p in listed) == ["paused", "sample"]
    sample = next(p for p in listed if p["name"] == "sample")
    assert sample["indexCid"] and sample["scanningStatus"] == "completed"
    details = await (await prep_api.get(f"/preparation/{sample['id']}")).json()
    chunks = details["generationRequests"]
    assert len(chunks) == 3 and all(c["status"] == "completed" and c["pieceCid"] for c in chunks)
    assert details["problems"]
    chunk = await (await prep_api.get(f"/generation/{chunks[0]['id']}")).json()
    assert chunk["fileList"] and all(f["cid"] for f in chunk["fileList"])
    files = await (await prep_api.get(f"/preparation/{sample['id']}/files")).json()
    assert files
    status = await (await prep_api.get("/status")).json()
    assert status["counts"]["chunks"] == {"completed": 3}
    assert status["database"]["schemaVersion"] == migrations.CURRENT
    deal_api = await serve_app(dealmaking_app(runtime))
    deals = await (await deal_api.get("/deals")).json()
    assert deals["total"] == 2 and sorted(d["state"] for d in deals["deals"]) == ["published", "rejected"]
    hosting = await serve_app(hosting_app(runtime))
    index = await (await hosting.get("/index/sample")).json()
    assert index["indexCid"] == sample["indexCid"]


async def test_fresh_database_is_stamped_and_a_second_start_changes_nothing(db):
    assert await migrations.apply(db) == migrations.CURRENT
    first = await db[models.SCHEMA_VERSION].find_one({})
    assert first["version"] == migrations.CURRENT
    assert await migrations.apply(db) == migrations.CURRENT
    second = await db[models.SCHEMA_VERSION].find_one({})
    assert second == first  # not even the lease was touched


async def test_a_failed_migration_finishes_at_the_next_start_each_step_once(db):
    await dump.load(db)
    total = await db[models.GENERATION_FILES].count_documents({})
    assert total > 2
    sample_migration.FAIL = "raise"
    with pytest.raises(migrations.MigrationError, match="injected failure"):
        await migrations.apply(db, WITH_SAMPLE)
    state = await migrations.read(db)
    assert state["version"] == SAMPLE.version - 1 and state["migrating"]["version"] == SAMPLE.version and state["migrating"]["steps"] == ["count"]
    assert 0 < await db[models.GENERATION_FILES].count_documents({"sampleMark": True}) < total
    sample_migration.FAIL = None
    assert await migrations.apply(db, WITH_SAMPLE) == SAMPLE.version
    assert (await migrations.read(db))["migrating"] is None
    assert await db[models.GENERATION_FILES].count_documents({"sampleMark": True}) == total
    assert (await db["SampleCounter"].find_one({"_id": "runs"}))["n"] == 1


async def test_a_run_killed_during_a_migration_finishes_it_at_the_next_start(db, db_url):
    await dump.load(db)
    total = await db[models.GENERATION_FILES].count_documents({})
    victim = subprocess.run([sys.executable, "-m", "tests.ops.sample_migration", db_url], cwd=ROOT,
                            env={**os.environ, "SAMPLE_MIGRATION_FAIL": "kill"}, capture_output=True, timeout=60)
    assert victim.returncode == -9, victim.stderr
    state = await db[models.SCHEMA_VERSION].find_one({})
    assert state["version"] == SAMPLE.version - 1 and state["migrating"]["steps"] == ["count"]
    assert state["lockExpires"] > models.now() + 10, "the dead process's lease is still running"
    assert 0 < await db[models.GENERATION_FILES].count_documents({"sampleMark": True}) < total
    started = time.monotonic()
    assert await migrations.apply(db, WITH_SAMPLE) == SAMPLE.version
    # Taken over at once: the holder's pid is gone from this host, no need to wait out the lease.
    assert time.monotonic() - started < migrations.LEASE / 4
    assert await db[models.GENERATION_FILES].count_documents({"sampleMark": True}) == total
    assert (await db["SampleCounter"].find_one({"_id": "runs"}))["n"] == 1


async def test_two_starts_at_once_migrate_once(db):
    await dump.load(db)
    sample_migration.PAUSE = 0.05
    assert await asyncio.gather(migrations.apply(db, WITH_SAMPLE), migrations.apply(db, WITH_SAMPLE)) == [SAMPLE.version] * 2
    assert (await db["SampleCounter"].find_one({"_id": "runs"}))["n"] == 1


async def test_a_database_newer_than_the_code_is_refused(db, db_url, tmp_path):
    await db[models.SCHEMA_VERSION].insert_one({"_id": models.SCHEMA_VERSION_ID, "version": migrations.CURRENT + 1,
                                                "lockToken": "", "lockExpires": 0})
    with pytest.raises(migrations.SchemaTooNew):
        await migrations.apply(db)
    config = write_config(tmp_path, db_url)
    result = singularity(config, "run", "preparation", check=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert lines[-1].startswith("error: database schema: the database holds schema version "
                                f"{migrations.CURRENT + 1}, newer than")
    assert await db[models.SCANNING].count_documents({}) == 0


async def test_a_migration_in_flight_to_an_unknown_version_is_refused(db):
    await db[models.SCHEMA_VERSION].insert_one({"_id": models.SCHEMA_VERSION_ID, "version": migrations.CURRENT,
                                                "migrating": {"version": migrations.CURRENT + 1, "steps": []},
                                                "lockToken": "x", "lockExpires": 0})
    with pytest.raises(migrations.SchemaTooNew):
        await migrations.apply(db)
