"""The preparation API at scale: every list is paged in one shape, a page costs a fixed number of
database commands whatever the number of preparations, chunks or files, out-of-range paging is a
400, and a client that goes away stops the work done for it."""
from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest

from services.dealmaking.routes import routes as deal_routes
from services.preparation import handlers, summaries
from services.preparation.routes import routes
from shared import database, models
from shared.api import create_app, serve
from tests.conftest import free_port
from tests.commands import Commands

SMALL, BIG_CHUNKS = 1000, 10_000


def status_of(index: int) -> dict:
    """A fixed mix, so that expected counts are known: completed, failed, waiting, and the first
    two waiting ones being packed (chunks being packed are as many as worker slots, not more)."""
    if index in (2, 3):
        return {"status": "active", "workerId": "w1", "bytesDone": 5, "rate": 7}
    if index % 8 == 4:  # completed, then refused by the hosting service: a changed source file
        return {"status": "completed", "unservable": {"file": "f", "reason": "changed", "status": 409, "at": 1.0}}
    return [{"status": "completed"}, {"status": "error", "error": "x"}, {"status": "active"}, {"status": "active"}][index % 4]


async def seed(db, small: int, big_chunks: int) -> tuple[list[dict], dict]:
    scans, chunks, files = [], [], []
    for i in range(small + 1):
        scan = models.scanning_request(f"ds{i:05d}", f"/d/{i}", 1 << 20, 600_000, 900_000)
        scans.append(scan)
        for j in range(big_chunks if i == small else 2 + i % 3):
            chunks.append({**models.generation_request(scan, j, 2, 100), **status_of(j)})
    big = scans[-1]
    for chunk in chunks[-big_chunks:][:50]:
        files += [{"generationId": chunk["_id"], "preparationId": big["_id"], "order": k,
                   "relativePath": f"dir{chunk['index']:03d}/f{k}", "size": 50, "mtime": 1.0, "start": 0, "end": 50}
                  for k in range(2)]
    await db[models.SCANNING].insert_many(scans)
    for i in range(0, len(chunks), 5000):
        await db[models.GENERATION].insert_many(chunks[i:i + 5000])
    await db[models.GENERATION_FILES].insert_many(files)
    await db[models.SCAN_PROBLEMS].insert_many(
        [{"generationId": None, "preparationId": s["_id"], "kind": "error" if n % 2 else "skipped", "path": f"p{n}",
          "reason": "r"} for s in scans[:30] for n in range(3)])
    return scans[:-1], big


def expected_counts(chunk_count: int) -> dict:
    kinds = [status_of(j) for j in range(chunk_count)]
    building = sum(1 for k in kinds if k.get("workerId"))
    completed = sum(1 for k in kinds if k["status"] == "completed")
    return {"generationTotal": chunk_count, "generationCompleted": completed,
            "generationFailed": sum(1 for k in kinds if k["status"] == "error"),
            "generationInprogress": building, "bytesDone": completed * 100 + building * 5, "rate": building * 7,
            "generationUnservable": sum(1 for k in kinds if k.get("unservable"))}


@pytest.fixture
async def watched(db_url, db):
    """The API on a database client whose every command is recorded."""
    listener = Commands()
    client = database.client(db_url, event_listeners=[listener])
    yield client[database.database_name(db_url)], listener
    await client.close()


@pytest.fixture
async def big_api(watched, db, config, serve_app):
    watched_db, listener = watched
    small, big = await seed(db, SMALL, BIG_CHUNKS)
    api = await serve_app(create_app(config, watched_db, routes))
    return api, listener, small, big


async def commands_for(api, listener, url: str) -> tuple[dict, list[str]]:
    listener.names.clear()
    response = await api.get(url)
    assert response.status == 200, await response.text()
    return await response.json(), list(listener.names)


async def test_list_pages_cost_the_same_few_commands_whatever_the_count(big_api, db, watched, config, serve_app):
    api, listener, small, big = big_api
    page, commands = await commands_for(api, listener, "/preparations")
    assert (page["total"], page["offset"], page["limit"]) == (SMALL + 1, 0, 20)
    assert [p["id"] for p in page["preparations"]] == [s["_id"] for s in small[:20]]
    for i, item in enumerate(page["preparations"]):
        assert {k: item[k] for k in expected_counts(2)} == expected_counts(2 + i % 3), i
        assert (item["errorCount"], item["skippedCount"]) == (1, 2)
    assert len(commands) <= 9, commands  # the page, its total, 5 chunk and 2 problem counts
    assert "count" not in commands  # count_documents scans the collection on the embedded server

    # The last page holds the big preparation: its 10,000 chunks cost no extra command.
    last, last_commands = await commands_for(api, listener, f"/preparations?offset={SMALL - 4}&limit=5")
    assert [p["id"] for p in last["preparations"]] == [s["_id"] for s in small[-4:]] + [big["_id"]]
    assert {k: last["preparations"][-1][k] for k in expected_counts(1)} == expected_counts(BIG_CHUNKS)
    assert sorted(last_commands) == sorted(commands)

    # And the same page of one preparation in an otherwise empty database costs the same.
    await db[models.GENERATION].delete_many({"preparationId": {"$ne": small[0]["_id"]}})
    await db[models.SCANNING].delete_many({"_id": {"$ne": small[0]["_id"]}})
    alone, alone_commands = await commands_for(api, listener, "/preparations")
    assert alone["total"] == 1 and sorted(alone_commands) == sorted(commands)


async def test_pages_of_the_list_cover_it_once_in_order(big_api):
    api, _, small, big = big_api
    seen = []
    for offset in range(0, SMALL + 1, 250):
        page = await (await api.get(f"/preparations?offset={offset}&limit=250")).json()
        assert page["total"] == SMALL + 1 and page["offset"] == offset and page["limit"] == 250
        seen += [p["id"] for p in page["preparations"]]
    assert seen == [s["_id"] for s in small] + [big["_id"]]
    beyond = await (await api.get(f"/preparations?offset={SMALL + 1}")).json()
    assert beyond["preparations"] == [] and beyond["total"] == SMALL + 1


async def test_details_of_a_big_preparation_page_its_chunks(big_api):
    api, listener, small, big = big_api
    details, commands = await commands_for(api, listener, f"/preparation/{big['_id']}")
    assert [c["index"] for c in details["generationRequests"]] == list(range(20))
    assert (details["total"], details["offset"], details["limit"]) == (BIG_CHUNKS, 0, 20)
    assert {k: details[k] for k in expected_counts(1)} == expected_counts(BIG_CHUNKS)
    middle, _ = await commands_for(api, listener, f"/preparation/{big['_id']}?offset=5000&limit=7")
    assert [c["index"] for c in middle["generationRequests"]] == list(range(5000, 5007))
    assert [c["status"] for c in middle["generationRequests"]] == [status_of(i)["status"] for i in range(5000, 5007)]
    _, small_commands = await commands_for(api, listener, f"/preparation/{small[0]['_id']}")
    assert sorted(small_commands) == sorted(commands) and len(commands) <= 10, commands
    assert "count" not in commands


async def test_file_lists_carry_their_total(big_api, db):
    api, listener, _, big = big_api
    chunk = await db[models.GENERATION].find_one({"preparationId": big["_id"], "index": 3})
    page, commands = await commands_for(api, listener, f"/generation/{chunk['_id']}?offset=1&limit=5")
    assert page["total"] == 2 and [f["relativePath"] for f in page["fileList"]] == ["dir003/f1"]
    assert len(commands) <= 2, commands
    mapping = await (await api.get(f"/preparation/{big['_id']}/files?limit=10")).json()
    assert mapping["total"] == 100 and len(mapping["files"]) == 10 and mapping["limit"] == 10
    folder = await (await api.get(f"/preparation/{big['_id']}/files?path=dir007&offset=1")).json()
    assert folder["total"] == 2 and [f["relativePath"] for f in folder["files"]] == ["dir007/f1"]
    one = await (await api.get(f"/preparation/{big['_id']}/files?path=dir007/f0")).json()
    assert one["total"] == 1 and [f["relativePath"] for f in one["files"]] == ["dir007/f0"]
    assert (await (await api.get(f"/preparation/{big['_id']}/files?path=dir00")).json())["total"] == 0


@pytest.fixture
async def small_apis(db, config, serve_app):
    scan = models.scanning_request("ds", "/d", 1 << 20, 600_000, 900_000)
    chunk = models.generation_request(scan, 0, 1, 10)
    await db[models.SCANNING].insert_one(scan)
    await db[models.GENERATION].insert_one(chunk)
    preparation = await serve_app(create_app(config, db, routes))
    deals = await serve_app(create_app(config, db, deal_routes))
    return [(preparation, "/preparations"), (preparation, f"/preparation/{scan['_id']}"),
            (preparation, f"/generation/{chunk['_id']}"), (preparation, f"/preparation/{scan['_id']}/files"),
            (deals, "/deals")]


@pytest.mark.parametrize("query,fragment", [
    ("offset=9223372036854775808", "offset must be at most 9223372036854775807"),
    ("offset=" + "9" * 5000, "offset must be at most"),
    ("offset=-1", "offset must not be negative"),
    ("offset=00000000000000000000009223372036854775808", "offset must be at most"),
    ("offset=1_0", "offset must be an integer"),
    ("offset=%D9%A1", "offset must be an integer"),  # ARABIC-INDIC DIGIT ONE: int() would take it
    ("offset=", "offset must be an integer"),
    ("limit=0", "limit must be between 1 and"),
    ("limit=18446744073709551616", "limit must be at most"),
])
async def test_out_of_range_paging_is_a_400_everywhere(small_apis, query, fragment):
    for api, route in small_apis:
        response = await api.get(f"{route}?{query}")
        assert response.status == 400, (route, await response.text())
        body = await response.json()
        assert fragment in body["error"] and "detail" in body, (route, body)


async def test_the_largest_offset_is_an_empty_page(small_apis):
    for api, route in small_apis:
        response = await api.get(f"{route}?offset=09223372036854775807&limit=3")  # leading zeros are fine
        assert response.status == 200, (route, await response.text())
        body = await response.json()
        items = next(v for k, v in body.items() if k in ("preparations", "generationRequests", "fileList", "files",
                                                         "deals"))
        assert items == [] and body["offset"] == 9223372036854775807, route


async def wait_listening(port: int) -> None:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


async def test_a_departed_client_cancels_a_read_but_not_a_change(db, config, monkeypatch):
    """Through shared.api.serve, the way every service runs (the test server cancels anyway)."""
    scan = models.scanning_request("ds", "/d", 1 << 20, 600_000, 900_000)
    await db[models.SCANNING].insert_one(scan)
    reading, read_cancelled, removing, release = (asyncio.Event() for _ in range(4))

    async def endless_summaries(db, scans):
        reading.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            read_cancelled.set()
            raise

    remove = handlers.remove

    async def slow_remove(db, preparation_id):
        removing.set()
        await release.wait()
        await remove(db, preparation_id)

    monkeypatch.setattr(summaries, "summaries", endless_summaries)
    monkeypatch.setattr(handlers, "remove", slow_remove)
    port = free_port()
    server = asyncio.create_task(serve(create_app(config, db, routes), "127.0.0.1", port))
    try:
        await wait_listening(port)
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            get = asyncio.create_task(session.get(f"{base}/preparations"))
            await asyncio.wait_for(reading.wait(), 20)
            get.cancel()  # the client gives up: its connection closes
            await asyncio.wait_for(read_cancelled.wait(), 20)

            post = asyncio.create_task(session.post(f"{base}/preparation/{scan['_id']}", json={"state": "removed"}))
            await asyncio.wait_for(removing.wait(), 20)
            post.cancel()
        release.set()
        for _ in range(400):  # the removal completes although nobody waits for its answer
            if await db[models.SCANNING].find_one({"_id": scan["_id"]}) is None:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the removal stopped with its client")
    finally:
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)
