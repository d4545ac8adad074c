"""A corrupted block on the server: the client names it and leaves no partial output."""
from __future__ import annotations

import asyncio
import os

import aiohttp
import pytest

from services.indexing import retrieval
from shared import models
from tests.hosting.test_retrieve import run


async def corrupt_a_leaf_of(db, relative_path: str) -> str:
    """Flip one byte inside a raw leaf of the file's last range; return that block's CID."""
    doc = await db[models.GENERATION_FILES].find_one({"relativePath": relative_path}, sort=[("start", -1)])
    gen = await db[models.GENERATION].find_one({"_id": doc["generationId"]})
    block = await db[models.CAR_BLOCKS].find_one({"generationId": gen["_id"], "cid": {"$regex": "^bafk"},
                                                  "length": {"$gt": 1000}})
    fd = os.open(gen["carPath"], os.O_RDWR)
    try:
        where = block["offset"] + 500
        byte = os.pread(fd, 1, where)
        os.pwrite(fd, bytes([byte[0] ^ 0xFF]), where)
    finally:
        os.close(fd)
    return block["cid"]


@pytest.mark.parametrize("methods", [("block",), ("piece",), ("piece", "block")])
async def test_cid_mismatch_names_block_and_leaves_nothing(indexed, hosting, db, tmp_path, methods):
    _, index_cid = indexed
    bad = await corrupt_a_leaf_of(db, "c/mid.bin")
    out = tmp_path / "out"
    with pytest.raises(retrieval.RetrievalError) as caught:
        await run(f"{index_cid}/c/mid.bin", [hosting], methods, output=out)
    assert "CID mismatch" in str(caught.value) and bad in str(caught.value)
    assert os.listdir(out) == []
    tar = tmp_path / "t" / "c.tar"
    with pytest.raises(retrieval.RetrievalError, match=bad):
        await run(f"{index_cid}/c", [hosting], methods, tar=str(tar))
    assert os.listdir(tar.parent) == []


async def test_bundle_with_corrupted_block_is_cut_short(indexed, hosting, db):
    await corrupt_a_leaf_of(db, "c/mid.bin")
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{hosting}/bundle/demo/c") as response:
            assert response.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                await response.read()
