"""HTTP of the trustless gateway: which response a `/ipfs/...` request asks for, and the CAR stream.

`format` takes precedence over `Accept` (the spec's rule). Everything that can be refused is
refused before the status line goes out (bad CID, scope, range, unknown path: 400/404 JSON);
once streaming has begun, a block that turns out missing or damaged ends the stream short, which
a trustless client detects (the spec's streaming rule).
"""
from __future__ import annotations

import logging

from aiohttp import web

from services.hosting import gateway
from shared.api import ApiError, InvalidParameter
from shared.ipld import car as carlib
from shared.ipld import cid as cidlib
from shared.ipld import pbnode
from shared.ipld import varint

log = logging.getLogger(__name__)

CAR_TYPE = "application/vnd.ipld.car"
RAW_TYPE = "application/vnd.ipld.raw"
CAR_CONTENT_TYPE = "application/vnd.ipld.car; version=1; order=dfs; dups=n"
FLUSH = 1 << 20


def wanted_format(request: web.Request) -> str | None:
    """'raw', 'car', or None for a format this gateway does not produce."""
    fmt = request.query.get("format")
    if fmt is not None:
        return fmt if fmt in ("raw", "car") else None
    accept = request.headers.get("Accept", "")
    if CAR_TYPE in accept:
        if "version=2" in accept.replace(" ", "") and "version=1" not in accept.replace(" ", ""):
            return None
        return "car"
    if RAW_TYPE in accept:
        return "raw"
    return None


def _etag(req: gateway.Request, cid: str, path: str) -> str:
    span = "" if req.byte_range is None else f".{req.byte_range[0]}:{req.byte_range[1]}"
    return f'"{cid}{("/" + path) if path else ""}.car.{req.scope}{span}.dfs.n"'


async def serve_car(request: web.Request, db, car_dir: str, cid: str, path: str) -> web.StreamResponse:
    req = gateway.parse(cid, path, request.query)
    store = gateway.Store(db, car_dir)
    resolved = await gateway.resolve(store, req)
    if req.byte_range is not None and req.scope == "entity":
        size = _entity_size(resolved)
        if size is not None and size > 0:
            first = req.byte_range[0]
            if first >= size:
                raise InvalidParameter("entity-bytes starts past the end of the entity", {"size": size})
    headers = {
        "Content-Type": CAR_CONTENT_TYPE,
        "Content-Disposition": f'attachment; filename="{cid}.car"',
        "X-Ipfs-Roots": gateway.roots_header(resolved),
        "X-Ipfs-Path": "/ipfs/" + cid + ("/" + path if path else ""),
        "Etag": _etag(req, cid, path),
        "Cache-Control": "public, max-age=29030400, immutable",
        "X-Content-Type-Options": "nosniff",
        "Vary": "Accept",
    }
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    # Frames are gathered as views and joined once per MiB: one copy of each block's bytes.
    parts: list = [carlib.header(req.root)]
    pending = 0
    seen: set[bytes] = set()
    try:
        for block in resolved.path_blocks:
            if block.cid not in seen:
                seen.add(block.cid)
                parts += _frame(block.cid, block.data)
        async for cid_bytes, data in gateway.entity_blocks(store, req, resolved, seen):
            seen.add(cid_bytes)
            parts += _frame(cid_bytes, data)
            pending += len(data)
            if pending >= FLUSH:
                await response.write(b"".join(parts))
                parts, pending = [], 0
        await response.write(b"".join(parts))
        await response.write_eof()
    except (ApiError, LookupError, ValueError, OSError) as exc:
        # Committed to 200 already: end the stream short, which the client detects.
        log.warning("gateway stream for /ipfs/%s/%s cut short: %s", cid, path, exc)
        if request.transport is not None:
            request.transport.close()
    return response


def _frame(cid: bytes, data) -> tuple:
    return varint.encode(len(cid) + len(data)) + cid, data


def _entity_size(resolved: gateway.Resolved) -> int | None:
    """The byte size of a terminal that is a file, else None (entity-bytes is then ignored)."""
    terminal = resolved.terminal
    if isinstance(terminal, gateway.IndexFile):
        return int(terminal.node.get("__size", 0))
    if isinstance(terminal, gateway.Located) and pbnode.codec_of(terminal.cid) == cidlib.DAG_PB:
        _, fs = gateway.unixfs_node(terminal.data)
        if fs.type in (pbnode.TYPE_FILE, pbnode.TYPE_RAW):
            return gateway.unixfs_file_size(terminal.data)
    return None
