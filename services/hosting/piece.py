"""Serving a piece: the CAR bytes, then zeros up to the unpadded piece size.

The CAR part comes from a body (shared/chunkdata.py): a CAR file goes out with sendfile
like aiohttp's FileResponse (falling back to reads where the transport cannot sendfile, e.g. TLS),
an inline chunk's CAR is assembled from its layout, its long source ranges with sendfile too; the
zeros are written from one shared buffer. Nothing is ever held in memory beyond a few buffers.
"""
from __future__ import annotations

import logging
from email.utils import formatdate

from aiohttp import web

from services.hosting import ranges
from shared import chunkdata
from shared.api import error_response

log = logging.getLogger(__name__)

PIECE_TYPE = "application/piece"
_ZEROS = bytes(1 << 16)


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    return any(tag.strip().removeprefix("W/") in (etag, "*") for tag in header.split(","))


async def serve(request: web.Request, car: chunkdata.CarFileBody | chunkdata.LayoutBody, car_size: int, total: int,
                etag: str, content_type: str = PIECE_TYPE) -> web.StreamResponse:
    """Respond with `total` bytes: `car_size` bytes of `car`, then zeros."""
    if car.size < car_size:
        raise web.HTTPNotFound(reason="CAR file is shorter than recorded")
    headers = {
        "Content-Type": content_type,
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Last-Modified": formatdate(car.mtime, usegmt=True),
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
    file_end = min(end, car_size)
    await car.check(start, file_end)  # an inline chunk whose source changed is refused here, named
    response = web.StreamResponse(status=206 if wanted is not None else 200, headers=headers)
    if wanted is not None:
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{total}"
    response.content_length = end - start
    await response.prepare(request)
    if request.method == "HEAD" or start == end:
        await response.write_eof()
        return response
    if start < file_end:
        try:
            await car.send(request, response, start, file_end)
        except (chunkdata.Unservable, LookupError, OSError) as exc:
            # Committed to the status line already: a body shorter than Content-Length is the signal.
            log.warning("%s: response cut short: %s", car.name, exc)
            if request.transport is not None:
                request.transport.close()
            return response
    remaining = end - max(start, car_size)
    while remaining > 0:
        chunk = _ZEROS if remaining >= len(_ZEROS) else _ZEROS[:remaining]
        await response.write(chunk)
        remaining -= len(chunk)
    await response.write_eof()
    return response

