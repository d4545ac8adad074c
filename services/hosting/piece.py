"""Serving a piece: the CAR bytes, then zeros up to the unpadded piece size.

The CAR part goes out with sendfile like aiohttp's FileResponse (falling back to reads where the
transport cannot sendfile, e.g. TLS); the zeros are written from one shared buffer. Nothing is
ever held in memory beyond that buffer.
"""
from __future__ import annotations

import asyncio
import os
from email.utils import formatdate
from pathlib import Path

from aiohttp import web

from services.hosting import ranges
from shared.api import error_response

PIECE_TYPE = "application/piece"
_ZEROS = bytes(1 << 16)
_READ = 1 << 20


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    return any(tag.strip().removeprefix("W/") in (etag, "*") for tag in header.split(","))


async def serve(request: web.Request, car: Path, car_size: int, total: int, etag: str,
                content_type: str = PIECE_TYPE) -> web.StreamResponse:
    """Respond with `total` bytes: `car_size` bytes of `car`, then zeros."""
    stat = car.stat()
    if stat.st_size < car_size:
        raise web.HTTPNotFound(reason="CAR file is shorter than recorded")
    headers = {
        "Content-Type": content_type,
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Last-Modified": formatdate(stat.st_mtime, usegmt=True),
        "Cache-Control": "public, max-age=29030400, immutable",
    }
    if _etag_matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers={k: headers[k] for k in ("ETag", "Last-Modified", "Cache-Control")})
    range_header = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range.strip() != etag:
        range_header = None  # the client's copy is of another representation: send it all
    try:
        wanted = ranges.parse(range_header, total)
    except ranges.Unsatisfiable:
        response = error_response(416, "range not satisfiable", {"size": total, "range": range_header})
        response.headers.update({"Content-Range": f"bytes */{total}", "Accept-Ranges": "bytes", "ETag": etag})
        return response
    start, end = wanted if wanted is not None else (0, total)
    response = web.StreamResponse(status=206 if wanted is not None else 200, headers=headers)
    if wanted is not None:
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{total}"
    response.content_length = end - start
    await response.prepare(request)
    if request.method == "HEAD" or start == end:
        await response.write_eof()
        return response
    file_end = min(end, car_size)
    if start < file_end:
        await _send_file(request, response, car, start, file_end - start)
    remaining = end - max(start, car_size)
    while remaining > 0:
        chunk = _ZEROS if remaining >= len(_ZEROS) else _ZEROS[:remaining]
        await response.write(chunk)
        remaining -= len(chunk)
    await response.write_eof()
    return response


async def _send_file(request: web.Request, response: web.StreamResponse, path: Path, offset: int, count: int) -> None:
    loop = asyncio.get_running_loop()
    with open(path, "rb") as f:
        transport = request.transport
        if transport is None:
            raise ConnectionResetError("connection lost")
        try:
            await loop.sendfile(transport, f, offset, count)
            return
        except NotImplementedError:
            pass
        while count > 0:
            chunk = await loop.run_in_executor(None, os.pread, f.fileno(), min(_READ, count), offset)
            if not chunk:
                raise ConnectionResetError(f"{path} ended early")
            await response.write(chunk)
            offset += len(chunk)
            count -= len(chunk)
