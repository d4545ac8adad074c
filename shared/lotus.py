"""A Lotus full node JSON-RPC client: the few read methods deal tracking and ranking need.

`StateMarketDeals` is gigabytes on mainnet, so it is parsed from the HTTP body as it arrives and
only the deals of the clients we track are kept.
"""
from __future__ import annotations

import asyncio
import itertools
import json
from typing import AsyncIterator

import aiohttp
import ijson

# An error answer is a few hundred bytes; a body longer than this is read as a stream.
_SMALL_BODY = 64 * 1024


class LotusError(Exception):
    """The node could not be asked, or answered with something unusable: retry later."""


class LotusUnavailable(LotusError):
    pass


class LotusUnauthorized(LotusError):
    pass


class LotusMalformed(LotusError):
    pass


class LotusRpcError(LotusError):
    def __init__(self, method: str, code, message: str):
        super().__init__(f"{method}: {message} (code {code})")
        self.code = code
        self.rpc_message = message


class _Prefixed:
    """An async byte stream that first replays bytes already read from it (for ijson)."""

    def __init__(self, head: bytes, rest: aiohttp.StreamReader):
        self.head = head
        self.rest = rest

    async def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson probes with read(0) to tell bytes from text
            return b""
        size = size if size > 0 else 64 * 1024
        if self.head:
            # Never more than asked: ijson's C backend reads into a buffer of that size.
            chunk, self.head = self.head[:size], self.head[size:]
            return chunk
        return await self.rest.read(size)


class LotusClient:
    def __init__(self, session: aiohttp.ClientSession, api_url: str, token: str = "", timeout: float = 60.0):
        self.session = session
        self.url = api_url.rstrip("/") + "/rpc/v1"
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout
        self._ids = itertools.count(1)
        # How many deals the last complete StateMarketDeals answer held (all clients).
        self.market_deals_seen = 0

    def _request(self, method: str, params: list, timeout: aiohttp.ClientTimeout):
        body = {"jsonrpc": "2.0", "method": f"Filecoin.{method}", "params": params, "id": next(self._ids)}
        return self.session.post(self.url, data=json.dumps(body), headers=self.headers, timeout=timeout)

    @staticmethod
    def _check_status(method: str, response: aiohttp.ClientResponse) -> None:
        if response.status == 401:
            raise LotusUnauthorized(f"{method}: the node refused the token (HTTP 401)")
        if response.status != 200:
            raise LotusUnavailable(f"{method}: HTTP {response.status}")

    @staticmethod
    def _unwrap(method: str, data) -> object:
        if not isinstance(data, dict) or ("result" not in data and "error" not in data):
            raise LotusMalformed(f"{method}: not a JSON-RPC answer")
        if data.get("error") is not None:
            error = data["error"]
            if not isinstance(error, dict):
                raise LotusMalformed(f"{method}: malformed error {error!r}")
            raise LotusRpcError(method, error.get("code"), str(error.get("message", "")))
        return data["result"]

    async def call(self, method: str, *params) -> object:
        try:
            async with self._request(method, list(params), aiohttp.ClientTimeout(total=self.timeout)) as response:
                self._check_status(method, response)
                raw = await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise LotusUnavailable(f"{method}: {type(exc).__name__}: {exc}") from None
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise LotusMalformed(f"{method}: the answer is not JSON") from None
        return self._unwrap(method, data)

    async def chain_head(self) -> tuple[int, int]:
        """(height, timestamp of the head's first block)."""
        head = await self.call("ChainHead")
        try:
            height = head["Height"]
            timestamp = head["Blocks"][0]["Timestamp"]
        except (TypeError, KeyError, IndexError):
            raise LotusMalformed("ChainHead: no Height or block Timestamp") from None
        if not isinstance(height, int) or not isinstance(timestamp, int) or height < 0:
            raise LotusMalformed(f"ChainHead: bad height {height!r} or timestamp {timestamp!r}")
        return height, timestamp

    async def lookup_id(self, address: str) -> str | None:
        """The f0 ID of an address, or None when the chain has no actor for it yet."""
        try:
            result = await self.call("StateLookupID", address, None)
        except LotusRpcError as exc:
            if "not found" in exc.rpc_message:
                return None
            raise
        if not isinstance(result, str) or result[1:2] != "0":
            raise LotusMalformed(f"StateLookupID: not an ID address: {result!r}")
        return result

    async def verified_client_status(self, address: str) -> int | None:
        """The DataCap (bytes) the verified registry grants `address`, or None when it has none."""
        result = await self.call("StateVerifiedClientStatus", address, None)
        if result is None:
            return None
        try:
            value = int(result) if isinstance(result, (str, int)) and not isinstance(result, bool) else None
        except ValueError:
            value = None
        if value is None or value < 0:
            raise LotusMalformed(f"StateVerifiedClientStatus: not a byte count: {str(result)[:80]!r}")
        return value

    async def market_deal(self, deal_id: int) -> dict | None:
        """One deal from market state, or None once it is gone (expired, slashed or never activated)."""
        try:
            result = await self.call("StateMarketStorageDeal", deal_id, None)
        except LotusRpcError as exc:
            if "not found" in exc.rpc_message:
                return None
            raise
        if not isinstance(result, dict):
            raise LotusMalformed(f"StateMarketStorageDeal: not a MarketDeal: {result!r}")
        return result

    async def market_deals(self, clients: set[str]) -> AsyncIterator[tuple[int, dict]]:
        """(dealId, MarketDeal) for every deal in market state whose Client is in `clients`.

        Raises LotusError (and yields nothing more) if the stream breaks or is not a complete answer,
        so a caller that reaches the end knows it has seen the whole map.
        """
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout, sock_read=self.timeout)
        try:
            async with self._request("StateMarketDeals", [None], timeout) as response:
                self._check_status("StateMarketDeals", response)
                try:
                    head = await response.content.readexactly(_SMALL_BODY)
                except asyncio.IncompleteReadError as short:
                    async for item in self._small_market_deals(short.partial, clients):
                        yield item
                    return
                found = 0
                stream = _Prefixed(head, response.content)
                async for key, deal in ijson.kvitems_async(stream, "result"):
                    found += 1
                    if _wanted(deal, clients):
                        yield _deal_id(key), deal
                if found == 0:
                    raise LotusMalformed("StateMarketDeals: a large answer without a result map")
                self.market_deals_seen = found
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise LotusUnavailable(f"StateMarketDeals: {type(exc).__name__}: {exc}") from None
        except ijson.JSONError as exc:
            raise LotusMalformed(f"StateMarketDeals: broken JSON: {exc}") from None

    async def _small_market_deals(self, raw: bytes, clients: set[str]) -> AsyncIterator[tuple[int, dict]]:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise LotusMalformed("StateMarketDeals: the answer is not JSON") from None
        result = self._unwrap("StateMarketDeals", data)
        if not isinstance(result, dict):
            raise LotusMalformed("StateMarketDeals: the result is not a map")
        self.market_deals_seen = len(result)
        for key, deal in result.items():
            if _wanted(deal, clients):
                yield _deal_id(key), deal


def _wanted(deal, clients: set[str]) -> bool:
    """A deal of one of `clients`, or one too malformed to tell whose it is (the tracker decides:
    it fails the round if the deal id is one of ours, and skips it otherwise)."""
    proposal = deal.get("Proposal") if isinstance(deal, dict) else None
    client = proposal.get("Client") if isinstance(proposal, dict) else None
    return not isinstance(client, str) or client in clients


def _deal_id(key: str) -> int:
    try:
        return int(key)
    except ValueError:
        raise LotusMalformed(f"StateMarketDeals: deal key {key!r} is not a number") from None
