"""The byte-serving endpoints checked with an independent client, curl."""
from __future__ import annotations

import asyncio
import shutil

import pytest

from shared import models
from shared.cars import unpadded
from shared.ipld import cid as cidlib

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


async def curl(*args: str) -> tuple[int, dict, bytes]:
    """(status, headers of the final response, body)."""
    proc = await asyncio.create_subprocess_exec(
        "curl", "-s", "-S", "--path-as-is", *([] if "-I" in args else ["-D", "-"]), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    head, _, body = out.partition(b"\r\n\r\n")
    if "-I" in args:
        assert body == b"", "a HEAD response must have no body"
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


@pytest.fixture
async def chunk(indexed, db):
    prepared, _ = indexed
    gen = await db[models.GENERATION].find_one({"_id": prepared.chunks[1]["_id"]})
    with open(gen["carPath"], "rb") as f:
        car = f.read()
    return gen, car


async def test_car_ranges(hosting, chunk):
    gen, car = chunk
    url = f"{hosting}/{gen['dataCid']}.car"
    status, headers, body = await curl(url)
    assert (status, body) == (200, car)
    assert headers["content-type"] == "application/vnd.ipld.car"
    assert int(headers["content-length"]) == len(car)
    assert headers["etag"] and headers["last-modified"] and headers["accept-ranges"] == "bytes"
    status, headers, body = await curl("-r", "0-0", url)
    assert (status, body, headers["content-range"]) == (206, car[:1], f"bytes 0-0/{len(car)}")
    last = len(car) - 1
    status, headers, body = await curl("-r", f"{last}-{last}", url)
    assert (status, body, headers["content-range"]) == (206, car[-1:], f"bytes {last}-{last}/{len(car)}")
    status, headers, body = await curl("-r", "-100", url)
    assert (status, body) == (206, car[-100:])
    status, headers, _ = await curl("-r", f"{len(car)}-", url)
    assert status == 416 and headers["content-range"] == f"bytes */{len(car)}"
    status, headers, body = await curl("-I", url)
    assert status == 200 and body == b"" and int(headers["content-length"]) == len(car)


async def test_piece_ranges_cover_car_and_padding(hosting, chunk):
    gen, car = chunk
    total = unpadded(gen["pieceSize"])
    assert total > len(car)
    url = f"{hosting}/piece/{gen['pieceCid']}"
    status, headers, body = await curl(url)
    assert status == 200 and body == car + bytes(total - len(car))
    assert headers["content-type"] == "application/piece"
    assert headers["etag"] == f'"{gen["pieceCid"]}"'
    assert int(headers["content-length"]) == total and headers["last-modified"]
    status, headers, body = await curl("-r", "0-0", url)
    assert (status, body, headers["content-range"]) == (206, car[:1], f"bytes 0-0/{total}")
    status, headers, body = await curl("-r", f"{total - 1}-{total - 1}", url)
    assert (status, body, headers["content-range"]) == (206, b"\0", f"bytes {total - 1}-{total - 1}/{total}")
    status, headers, body = await curl("-r", "-5", url)
    assert (status, body, headers["content-range"]) == (206, bytes(5), f"bytes {total - 5}-{total - 1}/{total}")
    # A range across the end of the CAR: file bytes by sendfile, then zeros.
    start = len(car) - 10
    status, headers, body = await curl("-r", f"{start}-{start + 19}", url)
    assert (status, body) == (206, car[-10:] + bytes(10))
    status, headers, _ = await curl("-r", f"{total}-{total + 10}", url)
    assert status == 416 and headers["content-range"] == f"bytes */{total}"
    status, headers, _ = await curl("-r", "-0", url)
    assert status == 416
    status, headers, body = await curl("-I", url)
    assert status == 200 and body == b"" and int(headers["content-length"]) == total
    status, _, body = await curl("-H", f'If-None-Match: "{gen["pieceCid"]}"', url)
    assert status == 304 and body == b""


async def test_ipfs_raw_block(hosting, chunk, db):
    gen, car = chunk
    block = await db[models.CAR_BLOCKS].find_one({"generationId": gen["_id"]})
    status, headers, body = await curl(f"{hosting}/ipfs/{block['cid']}?format=raw")
    assert status == 200 and headers["content-type"] == "application/vnd.ipld.raw"
    assert body == car[block["offset"]:block["offset"] + block["length"]]
    status, _, again = await curl("-H", "Accept: application/vnd.ipld.raw", f"{hosting}/ipfs/{block['cid']}")
    assert (status, again) == (200, body)
    status, _, _ = await curl(f"{hosting}/ipfs/{block['cid']}")
    assert status == 406
    absent = cidlib.to_str(cidlib.raw(b"in no CAR"))
    status, _, _ = await curl(f"{hosting}/ipfs/{absent}?format=raw")
    assert status == 404
