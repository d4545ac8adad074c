"""Local fakes of the ranking sources, speaking their real protocols: a filrep-style listing,
datacapstats, IPNI (cid.contact) and a storage provider's /piece endpoint."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class SourceData:
    filrep: list[dict] = field(default_factory=list)  # miner entries
    datacapstats: list[dict] = field(default_factory=list)  # getMiners rows
    ipni: list[dict] = field(default_factory=list)  # ProviderInfo
    # source -> None, "401", "timeout" (answers after `delay`), "malformed" (not JSON), "down" (HTTP 503)
    modes: dict[str, str | None] = field(default_factory=dict)
    delay: float = 30.0
    api_key: str | None = None  # datacapstats X-API-KEY, when required
    calls: list[str] = field(default_factory=list)


class Server:
    def __init__(self):
        self.runner: web.AppRunner | None = None
        self.url = ""

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self):
        app = web.Application()
        self.routes(app)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        return self

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()


class FakeSources(Server):
    def __init__(self, data: SourceData | None = None):
        super().__init__()
        self.data = data or SourceData()

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/miners", self.filrep)
        app.router.add_get("/api/v2/getMiners", self.datacapstats)
        app.router.add_get("/providers", self.ipni)

    async def _mode(self, source: str) -> web.Response | None:
        self.data.calls.append(source)
        mode = self.data.modes.get(source)
        if mode == "401":
            return web.Response(status=401, text="unauthorized")
        if mode == "down":
            return web.Response(status=503, text="service unavailable")
        if mode == "timeout":
            await asyncio.sleep(self.data.delay)
        if mode == "malformed":
            return web.Response(text='{"miners": [{"address": "f0', content_type="application/json")
        return None

    async def filrep(self, request: web.Request) -> web.Response:
        if (refused := await self._mode("filrep")) is not None:
            return refused
        offset, limit = int(request.query.get("offset", 0)), int(request.query.get("limit", 100))
        limit = min(limit, 100)
        page = self.data.filrep[offset:offset + limit]
        return web.json_response({"miners": page, "pagination": {"total": len(self.data.filrep),
                                                                 "limit": limit, "offset": offset}})

    async def datacapstats(self, request: web.Request) -> web.Response:
        if (refused := await self._mode("datacapstats")) is not None:
            return refused
        if self.data.api_key and request.headers.get("X-API-KEY") != self.data.api_key:
            return web.Response(status=401, text="missing api key")
        limit, page = int(request.query.get("limit", 10)), int(request.query.get("page", 1))
        rows = self.data.datacapstats[(page - 1) * limit:page * limit]
        return web.json_response({"data": rows, "count": str(len(self.data.datacapstats))})

    async def ipni(self, request: web.Request) -> web.Response:
        if (refused := await self._mode("ipni")) is not None:
            return refused
        return web.json_response(self.data.ipni)


class FakeProvider(Server):
    """A storage provider's HTTP retrieval: GET /piece/{pieceCid} with one byte range.

    mode: None (the right bytes), "corrupt" (one byte flipped in every answer), "404",
    "truncate" (Content-Length promises more than is sent), "ignore-range" (200 with the whole piece).
    """

    def __init__(self, pieces: dict[str, bytes], mode: str | None = None):
        super().__init__()
        self.pieces = pieces
        self.mode = mode
        self.requests: list[str] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/piece/{cid}", self.piece)

    async def piece(self, request: web.Request) -> web.StreamResponse:
        cid = request.match_info["cid"]
        self.requests.append(request.headers.get("Range", ""))
        data = self.pieces.get(cid)
        if data is None or self.mode == "404":
            return web.Response(status=404, text="piece not found")
        spec = request.headers.get("Range", "").removeprefix("bytes=")
        start, _, end = spec.partition("-")
        start, end = int(start), int(end) + 1
        body = data[start:end]
        if self.mode == "ignore-range":
            return web.Response(body=data, content_type="application/piece")
        if self.mode == "corrupt":
            body = body[:len(body) // 2] + bytes([body[len(body) // 2] ^ 0xFF]) + body[len(body) // 2 + 1:]
        response = web.StreamResponse(status=206, headers={
            "Content-Type": "application/piece", "Content-Range": f"bytes {start}-{end - 1}/{len(data)}"})
        response.content_length = len(body)
        await response.prepare(request)
        if self.mode == "truncate":
            await response.write(body[:len(body) // 2])
            request.transport.close()
            return response
        await response.write(body)
        await response.write_eof()
        return response
