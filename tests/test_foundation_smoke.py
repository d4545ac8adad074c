from shared import jobs, models


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
