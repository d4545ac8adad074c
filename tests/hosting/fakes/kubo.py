"""A kubo RPC stand-in for `POST /api/v0/dag/import?pin-roots=true`: it parses the uploaded CAR,
checks every block against its CID, and "pins" the roots, answering in kubo's NDJSON shape; then
serves those blocks (`POST /api/v0/block/get`) and resolves IPNS names it is given
(`POST /api/v0/name/resolve`)."""
from __future__ import annotations

import hashlib
import json

import libipld
from aiohttp import web

from shared.ipld import cid as cidlib


class FakeKubo:
    def __init__(self):
        self.pinned: set[str] = set()
        self.blocks: dict[str, bytes] = {}
        self.fail_with: int | None = None
        self.requests = 0
        self.names: dict[str, str] = {}  # IPNS name -> "/ipfs/<cid>"

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 << 20)
        app.router.add_post("/api/v0/dag/import", self.dag_import)
        app.router.add_post("/api/v0/block/get", self.block_get)
        app.router.add_post("/api/v0/name/resolve", self.name_resolve)
        return app

    async def block_get(self, request: web.Request) -> web.Response:
        data = self.blocks.get(request.query.get("arg", ""))
        if data is None:  # kubo would search the network; this one holds only what it imported
            return web.Response(status=500, text='{"Message":"block not found","Code":0,"Type":"error"}')
        return web.Response(body=data, content_type="application/octet-stream")

    async def name_resolve(self, request: web.Request) -> web.Response:
        path = self.names.get(request.query.get("arg", "").removeprefix("/ipns/"))
        if path is None:
            return web.Response(status=500, text='{"Message":"could not resolve name","Code":0,"Type":"error"}')
        return web.json_response({"Path": path})

    async def dag_import(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.fail_with:
            return web.Response(status=self.fail_with, text='{"Message":"boom","Code":0,"Type":"error"}')
        if request.query.get("pin-roots") != "true":
            return web.Response(status=400, text="pin-roots not set")
        reader = await request.multipart()
        part = await reader.next()
        if part is None or part.name != "file":
            return web.Response(status=400, text="no file part")
        car = bytes(await part.read())
        header, blocks = libipld.decode_car(car)
        for cid, node in blocks.items():
            data = libipld.encode_dag_cbor(node)
            if hashlib.sha256(data).digest() != cidlib.parse(cid)[2]:
                return web.Response(status=500, text=f"block {cidlib.to_str(cid)} does not match its CID")
            self.blocks[cidlib.to_str(cid)] = data
        lines = []
        for root in header["roots"]:
            name = cidlib.to_str(root)
            self.pinned.add(name)
            lines.append(json.dumps({"Root": {"Cid": {"/": name}, "PinErrorMsg": ""}}))
        return web.Response(text="\n".join(lines) + "\n", content_type="application/json")
