import asyncio
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from shared import database, jobs, models
from tests.wait import BUDGET, wait_until

JOBS = 300


async def claim_all(db, worker_id: str) -> list[str]:
    """What a worker slot does: claim until nothing is left."""
    claimed = []
    while job := await jobs.claim(db, models.GENERATION, worker_id):
        assert job["workerId"] == worker_id
        claimed.append(job["_id"])
    return claimed


def assert_each_claimed_once(claims: dict[str, list[str]], stored: list[dict]) -> None:
    counts = Counter(job_id for ids in claims.values() for job_id in ids)
    assert sorted(counts) == sorted(d["_id"] for d in stored), "a job was never claimed"
    twice = [job_id for job_id, n in counts.items() if n > 1]
    assert not twice, f"{len(twice)} jobs claimed more than once, e.g. {twice[:3]}"
    assert all(d["attempts"] == 1 for d in stored)
    owner = {job_id: worker for worker, ids in claims.items() for job_id in ids}
    assert all(d["workerId"] == owner[d["_id"]] for d in stored)
    assert sum(1 for ids in claims.values() if ids) > 1, "one claimer took everything: nothing raced"


async def test_concurrent_claims_are_exclusive(db, db_url):
    await db[models.GENERATION].insert_many(
        [{"_id": f"{i:04d}", "status": "active", "workerId": None} for i in range(JOBS)])
    # Several clients, so the claims travel on separate connections and race at the server.
    clients = [database.client(db_url) for _ in range(4)]
    try:
        dbs = [c[db.name] for c in clients]
        workers = [f"w{i}" for i in range(24)]
        results = await asyncio.gather(*(claim_all(dbs[i % len(dbs)], w) for i, w in enumerate(workers)))
    finally:
        for c in clients:
            await c.close()
    assert_each_claimed_once(dict(zip(workers, results)), await db[models.GENERATION].find({}).to_list(None))


CLAIMER = """
import asyncio, json, os, sys
from shared import database
from tests.test_foundation_smoke import claim_all

async def main(url, name, ready, go):
    client = database.client(url)
    db = client[database.database_name(url)]
    await db.command("ping")
    open(ready, "w").close()
    while not os.path.exists(go):  # start together with the other processes
        await asyncio.sleep(0.005)
    print(json.dumps(await claim_all(db, name)))
    await client.close()

asyncio.run(main(*sys.argv[1:]))
"""


async def test_claims_from_racing_processes_are_exclusive(db, db_url, tmp_path):
    await db[models.GENERATION].insert_many(
        [{"_id": f"{i:04d}", "status": "active", "workerId": None} for i in range(JOBS)])
    go = tmp_path / "go"
    names = [f"p{i}" for i in range(4)]
    processes = [subprocess.Popen([sys.executable, "-c", CLAIMER, db_url, name, str(tmp_path / f"{name}.ready"), str(go)],
                                  cwd=Path(__file__).parents[1], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for name in names]
    try:
        await wait_until(lambda: all((tmp_path / f"{n}.ready").exists() or p.poll() is not None
                                     for n, p in zip(names, processes)), what="the claimers to connect")
        go.touch()
        outputs = [await asyncio.to_thread(p.communicate, timeout=BUDGET) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    assert all(p.returncode == 0 for p in processes), [err for _, err in outputs]
    claims = {name: json.loads(out) for name, (out, _) in zip(names, outputs)}
    assert_each_claimed_once(claims, await db[models.GENERATION].find({}).to_list(None))


async def test_claim_is_exclusive_and_release_returns_jobs(db):
    await db[models.GENERATION].insert_many(
        [{"_id": str(i), "status": "active", "workerId": None} for i in range(3)])
    first = await jobs.claim(db, models.GENERATION, "w1")
    second = await jobs.claim(db, models.GENERATION, "w2")
    assert first["_id"] != second["_id"]
    assert first["workerId"] == "w1"
    await jobs.report_health(db, "w2")
    assert await jobs.release_expired(db, timeout=60) == 1  # w1 never reported health
    assert (await db[models.GENERATION].find_one({"_id": first["_id"]}))["workerId"] is None
    assert (await db[models.GENERATION].find_one({"_id": second["_id"]}))["workerId"] == "w2"


async def test_health_records_expire_after_repeated_reports(db):
    # The second report updates with $set: its timestamp must still compare (see models.now).
    await jobs.report_health(db, "w1")
    await jobs.report_health(db, "w1")
    await jobs.release_expired(db, timeout=60)
    assert await db[models.HEALTH].count_documents({}) == 1
    await jobs.release_expired(db, timeout=-1)  # a cutoff in the future: every record is stale
    assert await db[models.HEALTH].count_documents({}) == 0
