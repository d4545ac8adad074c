"""GET /preparations/history: the bytes, CAR bytes, chunks and files packed per bucket, by the chunks'
completion times (from real packing, and across bucket boundaries); bad windows are 400s."""
import json

import pytest

from services.preparation.routes import routes
from shared import models
from shared.api import create_app
from tests.processes import cli_against
from tests.pipeline import prepare, write_tree

DAY = 86_400
T0 = 1_700_006_400


@pytest.fixture
async def api(db, config, serve_app):
    return await serve_app(create_app(config, db, routes))


async def history(api, **params) -> tuple[int, dict]:
    response = await api.get("/preparations/history", params={k: str(v) for k, v in params.items()})
    return response.status, await response.json()


async def chunk(db, preparation: str, completed_at: float | None, size: int, car_size: int, files: int,
                status: str = "completed") -> None:
    doc = models.generation_request({"_id": preparation, "name": preparation, "path": "/x"}, 0, files, size)
    doc.update({"index": await db[models.GENERATION].count_documents({"preparationId": preparation}),
                "status": status, "carSize": car_size})
    if completed_at is not None:
        doc["completedAt"] = completed_at
    await db[models.GENERATION].insert_one(doc)


async def test_packed_chunks_are_counted_in_the_bucket_they_completed_in(api, db):
    await chunk(db, "p1", T0 - 1, 1000, 1100, 3)  # before the window
    await chunk(db, "p1", T0, 10, 20, 1)  # the window's first second
    await chunk(db, "p1", T0 + DAY - 0.5, 100, 150, 2)
    await chunk(db, "p2", T0 + DAY, 7, 9, 1)  # the first second of the second bucket
    await chunk(db, "p2", T0 + 2 * DAY, 5000, 5100, 9)  # at until: outside
    await chunk(db, "p2", None, 4096, 0, 4, status="active")  # not packed
    status, answer = await history(api, since=T0, until=T0 + 2 * DAY, bucket=DAY)
    assert status == 200, answer
    assert (answer["bucket"], answer["since"], answer["until"]) == (DAY, T0, T0 + 2 * DAY)
    assert answer["points"] == [
        {"time": T0 + DAY, "bytes": 110, "carBytes": 170, "chunks": 2, "files": 3},
        {"time": T0 + 2 * DAY, "bytes": 7, "carBytes": 9, "chunks": 1, "files": 1},
    ]
    status, answer = await history(api, since=T0, until=T0 + 2 * DAY, bucket=DAY, preparation="p2")
    assert [p["bytes"] for p in answer["points"]] == [0, 7]
    status, answer = await history(api, since=T0 - DAY, until=T0 + DAY + 1, bucket=DAY)
    assert [p["time"] for p in answer["points"]] == [T0, T0 + DAY, T0 + DAY + 1]
    assert [p["chunks"] for p in answer["points"]] == [1, 2, 1]


async def test_real_packing_shows_in_todays_bucket(api, db, config, tmp_path):
    root = tmp_path / "ds"
    write_tree(root, {f"f{i}.bin": bytes([i]) * 3000 for i in range(4)})
    before = models.now()
    prepared = await prepare(db, config, root, "ds", 16 * 1024, 5000, 7000)
    assert len(prepared.chunks) >= 2
    status, answer = await history(api, bucket=3600)
    assert status == 200 and len(answer["points"]) == 30 * 24
    assert sum(p["bytes"] for p in answer["points"][:-1]) == 0
    last = answer["points"][-1]
    assert last["bytes"] == 12_000 and last["files"] == 4 and last["chunks"] == len(prepared.chunks)
    assert last["carBytes"] == sum(c["carSize"] for c in prepared.chunks) > 12_000
    assert all(before <= c["completedAt"] <= models.now() for c in prepared.chunks)


@pytest.mark.parametrize("params, name", [
    ({"since": 5, "until": 5}, "since"),
    ({"since": 10, "until": 5}, "since"),
    ({"since": 0, "until": 10**9, "bucket": 60}, "bucket"),
    ({"bucket": 0}, "bucket"),
    ({"bucket": "9" * 5000}, "bucket"),
    ({"until": 10**12}, "until"),
    ({"since": "-1"}, "since"),
    ({"preparation": ""}, "preparation"),
    ({"preparation": "x", "ofset": 1}, "ofset"),
])
async def test_bad_windows_are_400(api, params, name):
    status, answer = await history(api, **params)
    assert status == 400, answer
    assert name in answer["error"] and "detail" in answer


async def run_cli(api, tmp_path, *args: str) -> tuple[int, str, str]:
    return await cli_against("deal_preparation_service", api, tmp_path, *args)


async def test_prep_history_command(api, db, tmp_path):
    await chunk(db, "p1", T0 + 10, 3 * 2**20, 3 * 2**20 + 500, 2)
    await chunk(db, "p2", T0 + 7200, 2**20, 2**20 + 100, 1)
    code, out, err = await run_cli(api, tmp_path, "prep", "history", "--since", "2023-11-15", "--until",
                                   str(T0 + 3 * 3600), "--bucket", "1h", "--json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["since"] == T0 and answer["bucket"] == 3600 and [p["chunks"] for p in answer["points"]] == [1, 0, 1]
    code, out, err = await run_cli(api, tmp_path, "prep", "history", "--since", str(T0), "--until",
                                   str(T0 + 3 * 3600), "--bucket", "3600", "--preparation", "p1")
    assert code == 0, err
    assert "2023-11-15 01:00" in out and "3 MiB in 1 chunks" in out and "1 MiB" not in out
    for args, word in ((["--bucket", "1y"], "--bucket"), (["--since", "tomorrow"], "--since"),
                       (["--since", str(T0), "--until", str(T0)], "since must be before until"),
                       (["--bucket", "1s", "--since", "0", "--until", "100000"], "1000")):
        code, out, err = await run_cli(api, tmp_path, "prep", "history", *args)
        assert code != 0 and word in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
