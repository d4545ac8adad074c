"""The smallest deal size keeps the rule that every piece stays at the deal size."""
from services.preparation.validation import MIN_DEAL_SIZE
from services.worker.generation import GenerationRun
from services.worker.scanning import ScanRun
from shared import jobs, models
from shared.car_overhead import CAR_BASE, NAME_MAX, smallest_deal_size
from tests.scan_helpers import make_tree


async def prepare(db, root, deal: int) -> str:
    scan = models.scanning_request("small", str(root), deal, int(deal * 0.6), int(deal * 0.9))
    await db[models.SCANNING].insert_one(scan)
    await ScanRun(db, await jobs.claim(db, models.SCANNING, "scanner"), "scanner").run()
    while job := await jobs.claim(db, models.GENERATION, "gen"):
        await GenerationRun(db, job, "gen", str(root.parent / "cars")).run()
    return scan["_id"]


def test_the_minimum_is_the_smallest_power_of_two_whose_piece_holds_a_chunk():
    assert MIN_DEAL_SIZE == smallest_deal_size() == 1024
    # Half of it could not even hold the CAR header and one file's links.
    assert (MIN_DEAL_SIZE // 2) * 127 // 128 < CAR_BASE + NAME_MAX


async def test_pieces_of_the_smallest_deal_size_stay_at_it(db, tmp_path):
    files = {"x" * NAME_MAX: 300, "a.txt": 10, "b/c.txt": 700, "b/d/e.bin": 1500, "empty": 0}
    make_tree(tmp_path / "ds", files)
    preparation = await prepare(db, tmp_path / "ds", MIN_DEAL_SIZE)
    chunks = await db[models.GENERATION].find({"preparationId": preparation}).to_list(None)
    assert len(chunks) > 5 and all(c["status"] == "completed" for c in chunks)
    assert {c["pieceSize"] for c in chunks} == {MIN_DEAL_SIZE}, "a piece outgrew the deal size"
    stored = await db[models.GENERATION_FILES].find({"preparationId": preparation}).to_list(None)
    covered = {}
    for doc in stored:
        covered[doc["relativePath"]] = covered.get(doc["relativePath"], 0) + doc["end"] - doc["start"]
    assert covered == files  # every byte of every file, nothing left out
    assert await db[models.SCAN_PROBLEMS].count_documents({"preparationId": preparation}) == 0


async def test_a_path_too_deep_for_the_deal_size_is_reported_not_packed_into_a_larger_piece(db, tmp_path):
    deep = "/".join(["d" * 200] * 4) + "/deep.txt"  # four directory nodes of 200-byte names
    make_tree(tmp_path / "ds", {"a.txt": 10, deep: 10, "z.txt": 10})
    preparation = await prepare(db, tmp_path / "ds", MIN_DEAL_SIZE)
    chunks = await db[models.GENERATION].find({"preparationId": preparation}).to_list(None)
    assert chunks and {c["pieceSize"] for c in chunks} == {MIN_DEAL_SIZE}
    placed = {d["relativePath"] async for d in db[models.GENERATION_FILES].find({"preparationId": preparation})}
    assert placed == {"a.txt", "z.txt"}
    problems = await db[models.SCAN_PROBLEMS].find({"preparationId": preparation}).to_list(None)
    assert [(p["kind"], p["path"]) for p in problems] == [("error", str(tmp_path / "ds" / deep))]
    assert "dealSize" in problems[0]["reason"]
    scan = await db[models.SCANNING].find_one({"_id": preparation})
    assert scan["status"] == "completed"
