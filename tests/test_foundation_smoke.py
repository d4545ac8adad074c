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


async def test_health_records_expire_after_repeated_reports(db):
    # The second report updates with $set: its timestamp must still compare (see models.now).
    await jobs.report_health(db, "w1")
    await jobs.report_health(db, "w1")
    await jobs.release_expired(db, timeout=60)
    assert await db[models.HEALTH].count_documents({}) == 1
    await jobs.release_expired(db, timeout=-1)  # a cutoff in the future: every record is stale
    assert await db[models.HEALTH].count_documents({}) == 0
