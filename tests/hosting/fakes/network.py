"""Fakes of the network a retrieval discovers, speaking the real protocols on loopback:

  FakeProvider  a storage provider's HTTP retrieval (boost/booster-http): `GET /piece/{pieceCid}`
                with ranges (206) and `GET /ipfs/{cid}?format=raw`, from copies of our CARs taken
                before they are deleted; `corrupt=True` flips a byte in every block it sends.
  FakeIpni      cid.contact's `GET /cid/{cid}` and `/multihash/{mh}`.
  DnsServer     a UDP DNS server (dnspython's wire format) answering TXT records.
"""
from __future__ import annotations

import asyncio
import base64
import re

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
from aiohttp import web

from shared.ipld import carfile
from shared.ipld import cid as cidlib
from shared.ipld import varint
from tests.ranking.fakes import Server


class FakeProvider:
    def __init__(self, cars: dict[str, tuple[bytes, int]], corrupt: bool = False):
        """cars: pieceCid -> (CAR bytes, unpadded piece size)."""
        self.pieces = cars
        self.corrupt = corrupt
        self.blocks: dict[str, bytes] = {}
        for car, _ in cars.values():
            at = varint.decode(car, 0)
            at = at[1] + at[0]
            while at < len(car):
                size, start = varint.decode(car, at)
                frame = car[start:start + size]
                cid_len = carfile.cid_length(frame)
                self.blocks[cidlib.to_str(frame[:cid_len])] = frame[cid_len:]
                at = start + size
        self.requests: list[str] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    def _damage(self, data: bytes) -> bytes:
        if not self.corrupt or not data:
            return data
        return bytes([data[0] ^ 0xFF]) + data[1:]

    async def piece(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        found = self.pieces.get(request.match_info["cid"])
        if found is None:
            return web.Response(status=404, text="no such piece")
        car, size = found
        body = car + bytes(size - len(car))
        match = re.fullmatch(r"bytes=(\d+)-(\d+)", request.headers.get("Range", ""))
        if not match:
            return web.Response(body=body, content_type="application/piece")
        start, end = int(match[1]), min(int(match[2]), len(body) - 1)
        chunk = body[start:end + 1]
        if self.corrupt:  # flip a byte in the middle: inside some block's data
            middle = len(chunk) // 2
            chunk = chunk[:middle] + bytes([chunk[middle] ^ 0xFF]) + chunk[middle + 1:]
        return web.Response(status=206, body=chunk, headers={
            "Content-Range": f"bytes {start}-{end}/{len(body)}", "Content-Type": "application/piece"})

    async def ipfs(self, request: web.Request) -> web.Response:
        self.requests.append(request.path_qs)
        if request.query.get("format") != "raw":
            return web.Response(status=406, text="raw blocks only")
        data = self.blocks.get(request.match_info["cid"])
        if data is None:
            return web.Response(status=404, text="no such block")
        return web.Response(body=self._damage(data), content_type="application/vnd.ipld.raw")

    async def start(self) -> "FakeProvider":
        app = web.Application()
        app.router.add_get("/piece/{cid}", self.piece)
        app.router.add_get("/ipfs/{cid}", self.ipfs)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()


HTTP_METADATA = base64.b64encode(varint.encode(0x0920)).decode()
BITSWAP_METADATA = base64.b64encode(varint.encode(0x0900)).decode()


class FakeIpni(Server):
    """Every CID is announced by `providers`: [(peer id, text multiaddrs, metadata)]."""

    def __init__(self, providers: list[tuple[str, list[str], str]]):
        super().__init__()
        self.providers = providers
        self.by_cid = True  # False: /cid/ answers 404, only /multihash/ knows the providers
        self.requests: list[str] = []

    async def lookup(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        if not self.providers or (not self.by_cid and request.path.startswith("/cid/")):
            return web.Response(status=404, text="no results")
        key = request.match_info["key"]
        return web.json_response({"MultihashResults": [{"Multihash": key, "ProviderResults": [
            {"ContextID": base64.b64encode(b"ctx").decode(), "Metadata": metadata,
             "Provider": {"ID": peer, "Addrs": addrs}} for peer, addrs, metadata in self.providers]}]})

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/cid/{key}", self.lookup)
        app.router.add_get("/multihash/{key}", self.lookup)


class DnsServer(asyncio.DatagramProtocol):
    """Answers TXT questions from `records` (name -> [text]); NXDOMAIN for anything else."""

    def __init__(self, records: dict[str, list[str]]):
        self.records = {k.rstrip(".").lower(): v for k, v in records.items()}
        self.transport = None
        self.queries: list[str] = []

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        self.queries.append(name)
        texts = self.records.get(name)
        if texts and question.rdtype == dns.rdatatype.TXT:
            response.answer.append(dns.rrset.from_text_list(question.name, 60, "IN", "TXT",
                                                            [f'"{t}"' for t in texts]))
        else:
            response.set_rcode(dns.rcode.NXDOMAIN)
        self.transport.sendto(response.to_wire(), addr)

    async def start(self) -> str:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))
        return f"127.0.0.1:{self.transport.get_extra_info('sockname')[1]}"

    def stop(self) -> None:
        if self.transport:
            self.transport.close()
