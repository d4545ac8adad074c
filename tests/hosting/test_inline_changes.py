"""Inline chunks whose source files change, and converting chunks between CAR files and layouts."""
from __future__ import annotations

import json
import os
from pathlib import Path

import aiohttp
import pytest

from services.preparation import handlers
from shared import models
from tests.hosting.conftest import DEAL, MAX_CHUNK, MIN_CHUNK
from tests.hosting.inline_helpers import bytes_under, commp_of, piece_bytes, prepare_inline
from tests.pipeline import prepare
from tests.wait import wait_until


@pytest.fixture
async def inline_prepared(db, config, source_dir):
    return await prepare_inline(db, config, source_dir, "inline-demo", DEAL, MIN_CHUNK, MAX_CHUNK)


async def files_of(db, chunk: dict) -> list[str]:
    docs = await db[models.GENERATION_FILES].find(
        {"generationId": chunk["_id"], "directory": {"$ne": True}}).to_list(None)
    return [d["relativePath"] for d in docs]


async def get(url: str, **headers) -> tuple[int, bytes, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers=headers) as response:
            return response.status, await response.read(), dict(response.headers)


async def test_nothing_is_written_and_layouts_are_small(db, config, inline_prepared):
    assert bytes_under(config.deal_preparation_worker.out_dir) == 0
    for chunk in inline_prepared.chunks:
        docs = await db[models.CAR_LAYOUTS].find({"generationId": chunk["_id"]}).to_list(None)
        assert docs and chunk["layout"]["documents"] == len(docs)
        # A few dozen bytes per block and file beside the data, which stays in the dataset.
        assert chunk["layout"]["bytes"] < chunk["carSize"] // 100 + 4096


async def test_changed_file_refuses_its_chunk_by_name_and_others_still_serve(db, hosting, inline_prepared, source_dir):
    changed_chunk, *others = inline_prepared.chunks
    victim = (await files_of(db, changed_chunk))[-1]
    path = source_dir / victim
    st = path.stat()
    os.utime(path, (st.st_atime, st.st_mtime + 10))  # same bytes, other mtime: refused all the same
    status, body, _ = await get(f"{hosting}/piece/{changed_chunk['pieceCid']}")
    assert status == 409
    error = json.loads(body)
    assert error["detail"]["file"] == victim and victim in error["error"] + str(error["detail"])
    assert error["detail"]["pieceCid"] == changed_chunk["pieceCid"]
    mark = (await db[models.GENERATION].find_one({"_id": changed_chunk["_id"]}))["unservable"]
    assert mark["file"] == victim and mark["status"] == 409
    # Refused from the mark from now on, also as a CAR download.
    status, body, _ = await get(f"{hosting}/{changed_chunk['dataCid']}.car")
    assert status == 409 and victim in body.decode()
    for chunk in others:
        if victim in await files_of(db, chunk):
            continue  # a split file's other ranges live in other chunks
        status, body, _ = await get(f"{hosting}/piece/{chunk['pieceCid']}")
        assert status == 200 and commp_of(body, chunk["pieceSize"]) == chunk["pieceCid"]


async def test_missing_file_is_410_and_bundle_refused(db, hosting, inline_prepared, source_dir, config):
    chunk = inline_prepared.chunks[-1]
    victim = (await files_of(db, chunk))[0]
    os.unlink(source_dir / victim)
    status, body, _ = await get(f"{hosting}/piece/{chunk['pieceCid']}", Range="bytes=0-99")
    assert status == 410 and victim in body.decode()
    status, body, _ = await get(f"{hosting}/bundle/inline-demo")
    assert status == 410 and victim in body.decode()


async def test_bundle_and_gateway_of_an_inline_preparation(db, hosting, inline_prepared, source_dir):
    import io
    import tarfile

    status, body, _ = await get(f"{hosting}/bundle/inline-demo")
    assert status == 200
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        for member in tar.getmembers():
            if member.isfile():
                relative = member.name.split("/", 1)[1]
                assert tar.extractfile(member).read() == (source_dir / relative).read_bytes()
    chunk = inline_prepared.chunks[0]
    status, body, headers = await get(f"{hosting}/ipfs/{chunk['dataCid']}?format=car")
    assert status == 200 and headers["Content-Type"].startswith("application/vnd.ipld.car")


async def test_index_builds_from_an_inline_preparation(db, config, inline_prepared):
    from services.indexing.indexer import build_index

    assert await build_index(db, config, inline_prepared.id)


async def test_materialize_writes_the_same_cars(db, config, inline_prepared, hosting):
    out_dir = config.deal_preparation_worker.out_dir
    result = await handlers.materialize(db, inline_prepared.id, None)
    assert result["queued"] == len(inline_prepared.chunks)
    await run_conversions(db, config, inline_prepared.id)
    for chunk in inline_prepared.chunks:
        after = await db[models.GENERATION].find_one({"_id": chunk["_id"]})
        assert not after["inline"] and after["carPath"] == os.path.join(out_dir, f"{chunk['dataCid']}.car")
        assert await db[models.CAR_LAYOUTS].count_documents({"generationId": chunk["_id"]}) == 0
        car = Path(after["carPath"]).read_bytes()
        status, body, _ = await get(f"{hosting}/piece/{chunk['pieceCid']}")
        assert status == 200 and body == piece_bytes(car, chunk["pieceSize"])
        assert commp_of(car, chunk["pieceSize"]) == chunk["pieceCid"]
    with pytest.raises(Exception, match="already has a CAR"):
        await handlers.materialize(db, inline_prepared.id, 0)


async def test_prune_cars_turns_chunks_inline_where_deals_are_active(db, config, source_dir, hosting):
    prepared = await prepare(db, config, source_dir, "pruned", DEAL, MIN_CHUNK, MAX_CHUNK)
    first, second = prepared.chunks[0], prepared.chunks[1]
    deals = [{"_id": f"d{i}", "pieceCid": first["pieceCid"], "provider": f"f0{100 + i}", "state": "active"}
             for i in range(3)]
    deals += [{"_id": f"e{i}", "pieceCid": second["pieceCid"], "provider": f"f0{100 + i}",
               "state": "active" if i < 2 else "proposed"} for i in range(3)]
    await db[models.DEAL_STATE].insert_many(deals)
    car = Path(first["carPath"]).read_bytes()
    result = await handlers.prune_cars(db, prepared.id, 3)
    assert result["chunks"] == 1
    await run_conversions(db, config, prepared.id)
    after = await db[models.GENERATION].find_one({"_id": first["_id"]})
    assert after["inline"] and not os.path.exists(first["carPath"])
    assert os.path.exists(second["carPath"])  # two active deals only
    status, body, _ = await get(f"{hosting}/piece/{first['pieceCid']}")
    assert status == 200 and body == piece_bytes(car, first["pieceSize"])


async def test_prune_keeps_the_car_when_the_source_changed(db, config, source_dir, hosting):
    prepared = await prepare(db, config, source_dir, "kept", DEAL, MIN_CHUNK, MAX_CHUNK)
    chunk = prepared.chunks[0]
    await db[models.DEAL_STATE].insert_many([{"_id": f"d{i}", "pieceCid": chunk["pieceCid"], "provider": f"f0{i}",
                                              "state": "active"} for i in range(3)])
    victim = (await files_of(db, chunk))[0]
    (source_dir / victim).write_bytes(b"other bytes")
    await handlers.prune_cars(db, prepared.id, 3)
    jobs = await run_conversions(db, config, prepared.id)
    assert jobs[0]["status"] == "error" and victim in jobs[0]["error"]
    assert os.path.exists(chunk["carPath"])
    assert not (await db[models.GENERATION].find_one({"_id": chunk["_id"]})).get("inline")


async def run_conversions(db, config, preparation_id: str) -> list[dict]:
    """The real worker until no conversion of the preparation is waiting."""
    import asyncio

    from services.worker.worker import Worker

    task = asyncio.create_task(Worker(db, config).run())
    try:
        async def settled():
            jobs = await db[models.CONVERSIONS].find({"preparationId": preparation_id}).to_list(None)
            return jobs if jobs and all(j["status"] != "active" for j in jobs) else None
        return await wait_until(settled, what="the conversions")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
