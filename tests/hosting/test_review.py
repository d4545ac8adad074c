"""Review findings on the hosting and retrieval side: odd Range headers, HEAD, damaged CARs, broken
sources, interrupted retrievals."""
from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest
from aiohttp import web

from services.indexing import retrieval
from shared import models
from tests.hosting.test_cli_retrieve import singularity, write_config
from tests.hosting.test_http_ranges import chunk, curl  # noqa: F401  (fixture)
from tests.hosting.test_retrieve import run
from tests.pipeline import snapshot
from tests.wait import wait_until


async def test_piece_range_with_thousands_of_digits_is_not_a_500(hosting, chunk):  # noqa: F811
    gen, car = chunk
    url = f"{hosting}/piece/{gen['pieceCid']}"
    status, headers, body = await curl("-H", "Range: bytes=0-" + "9" * 5000, url)
    assert status == 206 and headers["content-range"].startswith("bytes 0-") and body[:len(car)] == car
    status, headers, body = await curl("-H", "Range: bytes=" + "9" * 5000 + "-", url)
    assert status == 416


async def test_car_ranges_match_the_piece_endpoint(hosting, chunk):  # noqa: F811
    gen, car = chunk
    url = f"{hosting}/{gen['dataCid']}.car"
    # Several ranges, or a malformed header: a server may ignore Range and send it all.
    for header in ("bytes=0-0,5-9", "bytes=abc", "bytes=5-3", "items=0-1"):
        status, headers, body = await curl("-H", f"Range: {header}", url)
        assert (status, body) == (200, car), header
    status, headers, body = await curl("-H", "Range: bytes=-0", url)
    assert status == 416 and headers["content-range"] == f"bytes */{len(car)}"
    status, headers, body = await curl("-H", "Range: bytes=-10", url)
    assert (status, body) == (206, car[-10:])
    assert headers["etag"] == f'"{gen["dataCid"]}"'
    status, _, body = await curl("-H", f'If-None-Match: "{gen["dataCid"]}"', url)
    assert status == 304 and body == b""


async def test_416_has_a_json_error_body(hosting, chunk):  # noqa: F811
    gen, car = chunk
    for url in (f"{hosting}/piece/{gen['pieceCid']}", f"{hosting}/{gen['dataCid']}.car"):
        status, headers, body = await curl("-H", "Range: bytes=999999999-", url)
        assert status == 416 and headers["content-type"].startswith("application/json")
        import json
        answer = json.loads(body)
        assert answer["error"] and "detail" in answer


async def test_head_of_a_raw_block(hosting, chunk, db):  # noqa: F811
    gen, car = chunk
    block = await db[models.CAR_BLOCKS].find_one({"generationId": gen["_id"]})
    url = f"{hosting}/ipfs/{block['cid']}?format=raw"
    status, headers, _ = await curl("-I", url)
    assert status == 200 and int(headers["content-length"]) == block["length"]
    status, _, body = await curl("-H", f'If-None-Match: "{block["cid"]}.raw"', url)
    assert status == 304 and body == b""


async def test_block_of_a_truncated_car_is_a_404_not_a_500(hosting, chunk, db):  # noqa: F811
    gen, car = chunk
    block = await db[models.CAR_BLOCKS].find({"generationId": gen["_id"]}).sort("offset", -1).to_list(1)
    with open(gen["carPath"], "r+b") as f:
        f.truncate(block[0]["offset"] + 1)
    status, headers, body = await curl(f"{hosting}/ipfs/{block[0]['cid']}?format=raw")
    assert status == 404 and b'"error"' in body


@pytest.fixture
async def cutting_source(aiohttp_server, hosting):
    """A source that answers like the hosting service but breaks every chunked body off halfway."""
    import aiohttp

    async def handle(request: web.Request) -> web.StreamResponse:
        async with aiohttp.ClientSession() as session:
            headers = {k: v for k, v in request.headers.items() if k.lower() in ("range", "accept")}
            async with session.get(hosting + request.path_qs, headers=headers) as upstream:
                body = await upstream.read()
                response = web.StreamResponse(status=upstream.status, headers={
                    k: v for k, v in upstream.headers.items() if k.lower() in ("content-type", "content-range")})
                response.enable_chunked_encoding()
                await response.prepare(request)
                await response.write(body[:len(body) // 2])
                request.transport.close()
                return response

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


async def test_a_source_cutting_its_body_short_falls_back(indexed, hosting, cutting_source, tmp_path, source_dir):
    prepared, index_cid = indexed
    with pytest.raises(retrieval.RetrievalError):
        await run(f"{index_cid}/c", [cutting_source], ("piece", "block"), output=tmp_path / "o1")
    summary = await run(f"{index_cid}/c", [cutting_source, hosting], ("piece", "block"), output=tmp_path / "o2")
    assert summary["fetched"] == 3
    assert snapshot(tmp_path / "o2" / "c") == snapshot(source_dir / "c")


@pytest.mark.parametrize("url", ["http://bad host", "http://[::1", "http://example.com:99999", "http://a\nb"])
async def test_unusable_from_urls_are_one_line_errors(indexed, hosting, tmp_path, url):
    config_file = write_config(tmp_path, hosting)
    code, out, err = await singularity(config_file, "retrieve", "demo/c", "-o", str(tmp_path / "o"), "--from", url)
    assert code == 2 and b"Traceback" not in err and err.startswith(b"error: --from"), err


@pytest.fixture
async def slow_source(aiohttp_server, hosting):
    """The hosting service, a second late on every answer."""
    import aiohttp

    async def handle(request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        async with aiohttp.ClientSession() as session:
            headers = {k: v for k, v in request.headers.items() if k.lower() in ("range", "accept")}
            async with session.get(hosting + request.path_qs, headers=headers) as upstream:
                return web.Response(status=upstream.status, body=await upstream.read(), headers={
                    k: v for k, v in upstream.headers.items() if k.lower() in ("content-type", "content-range")})

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


async def test_sigterm_leaves_no_partial_file(indexed, slow_source, tmp_path):
    prepared, index_cid = indexed
    out = tmp_path / "o"
    config_file = write_config(tmp_path, slow_source)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from cli.main import main; main()", "--config", str(config_file),
        "retrieve", f"{index_cid}/a/big.bin", "-o", str(out), "--method", "block",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    await wait_until(lambda: out.exists() and os.listdir(out), what="the retrieval to start writing")
    proc.send_signal(signal.SIGTERM)
    _, err = await proc.communicate()
    assert proc.returncode != 0 and b"Traceback" not in err
    assert os.listdir(out) == []


async def test_partial_files_of_a_killed_retrieval_are_removed_on_resume(indexed, hosting, tmp_path):
    prepared, index_cid = indexed
    out = tmp_path / "o"
    await run(f"{index_cid}/c", [hosting], ("block",), output=out)
    stale = out / "c" / ".mid.bin.abcd1234.partial"  # what SIGKILL leaves behind mid-file
    stale.write_bytes(b"half")
    summary = await run(f"{index_cid}/c", [hosting], ("block",), output=out)
    assert summary["skipped"] == 3
    assert sorted(os.listdir(out / "c")) == ["dup.bin", "empty-dir", "empty.txt", "mid.bin"]
    tar_stale = tmp_path / ".c.tar.abcd1234.partial"
    tar_stale.write_bytes(b"half")
    await run(f"{index_cid}/c", [hosting], ("block",), tar=str(tmp_path / "c.tar"))
    assert not tar_stale.exists() and (tmp_path / "c.tar").exists()
