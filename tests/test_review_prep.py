"""Edge cases found reviewing the preparation side: odd names, odd requests, failing jobs."""
import asyncio
import os

import pytest

from services.worker.scanning import ScanRun
from services.worker.walk import Problem, walk
from shared import jobs, models
from tests.scan_helpers import make_tree

# A file name that is not UTF-8 (Latin-1 "é"), as old archives and other OSes leave them.
BAD_NAME = os.fsdecode(b"caf\xe9.txt")


async def scan_once(db, root, name="ds", deal=1 << 20):
    doc = models.scanning_request(name, str(root), deal, int(deal * 0.6), int(deal * 0.9))
    await db[models.SCANNING].insert_one(doc)
    job = await jobs.claim(db, models.SCANNING, "scanner")
    await ScanRun(db, job, "scanner").run()
    return await db[models.SCANNING].find_one({"_id": doc["_id"]})


def test_walk_reports_a_name_that_is_not_utf8(tmp_path):
    make_tree(tmp_path, {"a.txt": 3, "z.txt": 4})
    (tmp_path / BAD_NAME).write_bytes(b"x")
    items = list(walk(str(tmp_path)))
    problems = [i for i in items if isinstance(i, Problem)]
    assert [i.relative_path for i in items if not isinstance(i, Problem)] == ["a.txt", "z.txt"]
    assert len(problems) == 1 and "UTF-8" in problems[0].reason
    problems[0].path.encode("utf-8")  # storable and printable
    assert problems[0].path.endswith("caf\\xe9.txt")


async def test_a_name_that_is_not_utf8_does_not_stop_the_scan(db, tmp_path):
    make_tree(tmp_path / "ds", {"a.txt": 3, "sub/b.txt": 4})
    (tmp_path / "ds" / BAD_NAME).write_bytes(b"x")
    os.mkdir(tmp_path / "ds" / os.fsdecode(b"dir\xff"))
    (tmp_path / "ds" / os.fsdecode(b"dir\xff") / "inside").write_bytes(b"y")
    scan = await scan_once(db, tmp_path / "ds")
    assert scan["status"] == "completed" and scan["scannedFiles"] == 2
    problems = await db[models.SCAN_PROBLEMS].find({"preparationId": scan["_id"]}).to_list(None)
    assert sorted(p["kind"] for p in problems) == ["error", "error"]
