"""A fake Lotus full node speaking JSON-RPC over HTTP, whose chain the test moves on command.

`StateMarketDeals` is streamed in chunks, optionally followed by `bulk` generated deals of other
clients, so a test can make the answer large without building it in memory.
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from aiohttp import web

GENESIS = 1598306400


@dataclass
class FakeChain:
    height: int = 1000
    deals: dict[int, dict] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)  # key address -> f0 ID
    datacap: dict[str, int] = field(default_factory=dict)  # verified client address -> DataCap bytes
    # provider -> {"info": StateMinerInfo result, "power": StateMinerPower result}
    miners: dict[str, dict] = field(default_factory=dict)
    token: str | None = None
    # None, "down" (HTTP 503), "malformed" (not JSON), "truncate" (market deals cut short), "rpc-error",
    # "timeout" (answers after `delay` seconds)
    mode: str | None = None
    bulk: int = 0  # extra deals of an unrelated client at the start of StateMarketDeals
    chunk_delay: float = 0.0  # seconds between StateMarketDeals chunks
    deals_sent: int = 0  # StateMarketDeals entries written so far (all answers), to see how far ahead it runs
    next_deal_id: int = 5000
    calls: list[str] = field(default_factory=list)
    delay: float = 30.0

    def publish(self, client: str, provider: str, piece_cid: str, start: int, end: int,
                piece_size: int = 2**35, verified: bool = True) -> int:
        deal_id = self.next_deal_id
        self.next_deal_id += 1
        self.deals[deal_id] = {
            "Proposal": {"PieceCID": {"/": piece_cid}, "PieceSize": piece_size, "VerifiedDeal": verified,
                         "Client": client, "Provider": provider, "Label": "bafy", "StartEpoch": start,
                         "EndEpoch": end, "StoragePricePerEpoch": "0", "ProviderCollateral": "0",
                         "ClientCollateral": "0"},
            "State": {"SectorStartEpoch": -1, "LastUpdatedEpoch": -1, "SlashEpoch": -1},
        }
        return deal_id

    def activate(self, deal_id: int, epoch: int | None = None, sector: int | None = None) -> None:
        self.deals[deal_id]["State"]["SectorStartEpoch"] = self.height if epoch is None else epoch
        if sector is not None:
            self.deals[deal_id]["State"]["SectorNumber"] = sector

    def slash(self, deal_id: int, epoch: int | None = None) -> None:
        self.deals[deal_id]["State"]["SlashEpoch"] = self.height if epoch is None else epoch

    def head(self) -> dict:
        return {"Cids": [{"/": "bafy2bzaceheadcid"}], "Height": self.height,
                "Blocks": [{"Height": self.height, "Timestamp": GENESIS + 30 * self.height}]}


def _bulk_deal(i: int) -> bytes:
    return (f'"{10_000_000 + i}":{{"Proposal":{{"PieceCID":{{"/":"baga6ea4seaqbulk{i:012d}"}},'
            f'"PieceSize":34359738368,"VerifiedDeal":true,"Client":"f0{900000 + i % 1000}",'
            f'"Provider":"f0{1000 + i % 97}","Label":"bafybulklabel{i}","StartEpoch":{100000 + i},'
            f'"EndEpoch":{700000 + i},"StoragePricePerEpoch":"0","ProviderCollateral":"123456789",'
            f'"ClientCollateral":"0"}},"State":{{"SectorStartEpoch":{50000 + i},"LastUpdatedEpoch":-1,'
            f'"SlashEpoch":-1,"SectorNumber":{i}}}}}').encode()


class FakeLotus:
    def __init__(self, chain: FakeChain | None = None):
        self.chain = chain or FakeChain()
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self, port: int = 0) -> "FakeLotus":
        app = web.Application()
        app.router.add_post("/rpc/v1", self.rpc)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()

    async def rpc(self, request: web.Request) -> web.StreamResponse:
        chain = self.chain
        if chain.token and request.headers.get("Authorization") != f"Bearer {chain.token}":
            return web.Response(status=401, text="unauthorized")
        if chain.mode == "down":
            return web.Response(status=503, text="node is starting")
        if chain.mode == "timeout":
            await asyncio.sleep(chain.delay)
        body = await request.json()
        method, params, rpc_id = body["method"], body["params"], body["id"]
        chain.calls.append(method)
        if chain.mode == "malformed":
            return web.Response(text="<html>gateway error</html>", content_type="text/html")
        if chain.mode == "rpc-error":
            return self._error(rpc_id, "internal error: blockstore closed")
        if method == "Filecoin.StateMarketDeals":
            return await self._market_deals(request, rpc_id)
        if method == "Filecoin.ChainHead":
            return self._result(rpc_id, chain.head())
        if method == "Filecoin.StateLookupID":
            found = chain.ids.get(params[0]) or (params[0] if params[0][1:2] == "0" else None)
            if found is None:
                return self._error(rpc_id, f"resolution lookup failed ({params[0]}): actor not found")
            return self._result(rpc_id, found)
        if method == "Fake.PublishDeal":
            # Not Lotus: the fake boost's {"publish": true} puts an accepted deal on this chain,
            # sealed at once, as a provider would in time (used by `make run REPLICATE=1`).
            client, provider, piece, start, end, size, verified = params
            deal_id = chain.publish(chain.ids.get(client, client), provider, piece, start, end, size, verified)
            chain.activate(deal_id)
            return self._result(rpc_id, deal_id)
        if method == "Filecoin.StateVerifiedClientStatus":
            cap = chain.datacap.get(params[0])
            return self._result(rpc_id, None if cap is None else str(cap))
        if method == "Filecoin.StateMarketStorageDeal":
            deal = chain.deals.get(params[0])
            if deal is None:
                return self._error(rpc_id, f"deal {params[0]} not found - deal may not have completed sealing")
            return self._result(rpc_id, deal)
        if method in ("Filecoin.StateMinerInfo", "Filecoin.StateMinerPower"):
            miner = chain.miners.get(params[0])
            if miner is None:
                return self._error(rpc_id, "failed to load miner actor: actor not found")
            return self._result(rpc_id, miner["info" if method.endswith("Info") else "power"])
        return self._error(rpc_id, f"method '{method}' not found")

    @staticmethod
    def _result(rpc_id, result) -> web.Response:
        return web.json_response({"jsonrpc": "2.0", "id": rpc_id, "result": result})

    @staticmethod
    def _error(rpc_id, message: str) -> web.Response:
        return web.json_response({"jsonrpc": "2.0", "id": rpc_id, "error": {"code": 1, "message": message}})

    async def _market_deals(self, request: web.Request, rpc_id) -> web.StreamResponse:
        chain = self.chain
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"jsonrpc":"2.0","id":%d,"result":{' % rpc_id)
        first = True
        batch: list[bytes] = []

        async def flush() -> None:
            nonlocal first
            if batch:
                await response.write((b"" if first else b",") + b",".join(batch))
                chain.deals_sent += len(batch)
                first = False
                batch.clear()
                if chain.chunk_delay:
                    await asyncio.sleep(chain.chunk_delay)

        for i in range(chain.bulk):
            batch.append(_bulk_deal(i))
            if len(batch) >= 2000:
                await flush()
        for deal_id, deal in sorted(chain.deals.items(), reverse=True):
            batch.append(f'"{deal_id}":'.encode() + json.dumps(deal).encode())
            if len(batch) >= 50:
                await flush()
        await flush()
        if chain.mode == "truncate":
            # The connection drops before the map is closed.
            request.transport.close()
            return response
        await response.write(b"}}")
        await response.write_eof()
        return response


def main() -> None:
    """python -m scripts.fakes.lotus PORT [WALLET=ID ...]: serve a fake chain until killed."""
    import sys

    async def serve() -> None:
        ids = dict(arg.split("=", 1) for arg in sys.argv[2:])
        server = await FakeLotus(FakeChain(ids=ids)).start(int(sys.argv[1]))
        print(server.url, flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
