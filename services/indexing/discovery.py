"""Finding who can serve a file range when no `--from` is given, in the design's order:

  (a) storage providers with active deals of ours for the range's piece: the deals come from the
      deal-making API (`GET /deals?piece=&state=active`, our DealState), each provider's HTTP
      endpoint from its on-chain multiaddrs (Lotus `StateMinerInfo`, asked once per provider);
  (b) IPNI (`GET /cid/{cid}`, then `/multihash/{mh}`): providers whose metadata advertises HTTP
      retrieval (protocol 0x0920), at the HTTP endpoint of their announced addresses;
  (c) the configured hosting service.
Index blocks come from the hosting service, kubo (`ipfs_api`, where the index is pinned) and
the providers IPNI names for the block. Nothing here needs the database: a user on another
machine needs only the CLI and network access. A lookup service that fails is asked no more
during the run; the retriever skips failing providers itself.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Iterator
from urllib.parse import quote

import aiohttp

from services.indexing.sources import FetchError, KuboSource, Source
from shared import multiaddr
from shared.ipld import cid as cidlib
from shared.ipld import varint
from shared.lotus import LotusClient, LotusError

log = logging.getLogger(__name__)

HTTP_METADATA = 0x0920  # IPNI metadata protocol: HTTP (trustless gateway / piece retrieval)
BITSWAP_METADATA = 0x0900
DEAL_PAGE = 1000


@dataclass
class Settings:
    hosting: Source | None = None
    deal_making_service: str = ""
    api_token: str = ""
    full_node_api: str = ""
    full_node_token: str = ""
    ipni_api: str = ""
    ipfs_api: str = ""
    timeout: float = 30.0


@dataclass
class Discovery:
    settings: Settings
    notes: list[str] = field(default_factory=list)  # lookup services that failed, and why
    _down: set[str] = field(default_factory=set)
    _endpoints: dict[str, str | None] = field(default_factory=dict)  # provider -> endpoint
    _pieces: dict[str, list[Source]] = field(default_factory=dict)
    _ipni: dict[str, list[Source]] = field(default_factory=dict)

    # --- where file ranges come from ---

    def range_sources(self, info: dict) -> Iterator[Source]:
        """Lazily: IPNI is asked only once the providers of our deals have not delivered."""
        from services.indexing import model
        seen: set[str] = set()
        groups = (lambda: self._deal_sources(str(info["pieceCid"])) if info.get("pieceCid") else [],
                  lambda: self._ipni_sources(model.link(info["cid"])),
                  lambda: [self.settings.hosting] if self.settings.hosting is not None else [])
        for group in groups:
            for source in group():
                if source.url not in seen:
                    seen.add(source.url)
                    yield source

    def index_sources(self, cid: bytes) -> list[Source]:
        out: list[Source] = []
        if self.settings.hosting is not None:
            out.append(self.settings.hosting)
        if self.settings.ipfs_api:
            out.append(KuboSource(self.settings.ipfs_api.rstrip("/"), label="kubo", timeout=self.settings.timeout))
        out += self._ipni_sources(cid)
        return _unique(out)

    # --- (a) our deals and the chain ---

    def _deal_sources(self, piece_cid: str) -> list[Source]:
        if piece_cid in self._pieces:
            return self._pieces[piece_cid]
        providers: list[str] = []
        api = self.settings.deal_making_service.rstrip("/")
        if api and "deals" not in self._down:
            offset = 0
            try:
                while True:
                    page = self._get_json(f"{api}/deals?piece={quote(piece_cid)}&state=active&offset={offset}"
                                          f"&limit={DEAL_PAGE}", self.settings.api_token)
                    deals = page.get("deals") if isinstance(page, dict) else None
                    if not isinstance(deals, list):
                        raise FetchError(f"{api}/deals: not a page of deals")
                    providers += [d["provider"] for d in deals if isinstance(d, dict) and isinstance(d.get("provider"), str)]
                    offset += len(deals)
                    if not deals or offset >= int(page.get("total", 0)):
                        break
            except (FetchError, ValueError, TypeError) as exc:
                self._fail("deals", f"deal making service: {exc}")
        sources = []
        for provider in dict.fromkeys(providers):
            endpoint = self._endpoint(provider)
            if endpoint:
                sources.append(Source(endpoint, label=f"{provider} (active deal)", timeout=self.settings.timeout))
        self._pieces[piece_cid] = sources
        return sources

    def _endpoint(self, provider: str) -> str | None:
        if provider not in self._endpoints:
            self._endpoints[provider] = None
            if self.settings.full_node_api and "lotus" not in self._down:
                try:
                    info = asyncio.run(self._miner_info(provider))
                    self._endpoints[provider] = multiaddr.endpoint_of((info or {}).get("Multiaddrs"))
                except LotusError as exc:
                    self._fail("lotus", f"lotus StateMinerInfo {provider}: {exc}")
        return self._endpoints[provider]

    async def _miner_info(self, provider: str) -> dict | None:
        async with aiohttp.ClientSession() as session:
            client = LotusClient(session, self.settings.full_node_api, self.settings.full_node_token,
                                 self.settings.timeout)
            info = await client.call("StateMinerInfo", provider, None)
        return info if isinstance(info, dict) else None

    # --- (b) IPNI ---

    def _ipni_sources(self, cid: bytes) -> list[Source]:
        api = self.settings.ipni_api.rstrip("/")
        if not api or "ipni" in self._down:
            return []
        name = cidlib.to_str(cid)
        if name in self._ipni:
            return self._ipni[name]
        found: list[Source] = []
        multihash = bytes(cid[2:])  # after the CIDv1 version and codec varints (one byte each)
        mh_text = _base58(multihash)  # IPNI takes the multihash in base58btc, no multibase prefix
        for path in (f"/cid/{name}", f"/multihash/{mh_text}"):
            try:
                answer = self._get_json(api + path)
            except FetchError as exc:
                if "HTTP 404" in str(exc):
                    continue  # no provider has it: a normal answer
                self._fail("ipni", f"IPNI: {exc}")
                break
            found = _http_providers(answer)
            if found:
                break
        self._ipni[name] = found
        return found

    # --- plumbing ---

    def _get_json(self, url: str, token: str = ""):
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout) as response:
                return json.loads(response.read(16 << 20))
        except urllib.error.HTTPError as exc:
            raise FetchError(f"{url}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise FetchError(f"{url}: {getattr(exc, 'reason', exc)}") from None
        except ValueError:
            raise FetchError(f"{url}: not JSON") from None

    def _fail(self, service: str, message: str) -> None:
        self._down.add(service)
        self.notes.append(message)
        log.warning("%s (not asked again during this retrieval)", message)


def _http_providers(answer) -> list[Source]:
    out = []
    results = answer.get("MultihashResults") if isinstance(answer, dict) else None
    for result in results if isinstance(results, list) else []:
        for provider in (result.get("ProviderResults") or []) if isinstance(result, dict) else []:
            if not isinstance(provider, dict) or not _advertises_http(provider.get("Metadata")):
                continue
            info = provider.get("Provider") or {}
            endpoint = multiaddr.endpoint_of_text(info.get("Addrs") if isinstance(info, dict) else None)
            if endpoint:
                out.append(Source(endpoint, label=f"{info.get('ID', '?')} (IPNI)"))
    return out


def _advertises_http(metadata) -> bool:
    """Metadata is a sequence of (varint protocol code, payload). Bitswap (0x0900) and HTTP
    (0x0920) carry no payload, so a list of them can be stepped through; a graphsync entry
    (0x0910) has a payload of its own, past which nothing more can be read."""
    try:
        raw = base64.b64decode(metadata or "", validate=True)
        at = 0
        while at < len(raw):
            code, at = varint.decode(raw, at)
            if code == HTTP_METADATA:
                return True
            if code != BITSWAP_METADATA:
                return False
        return False
    except (binascii.Error, ValueError):
        return False


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _base58(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, rest = divmod(number, 58)
        out = _B58[rest] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def _unique(sources: list[Source]) -> list[Source]:
    seen, out = set(), []
    for source in sources:
        if source.url not in seen:
            seen.add(source.url)
            out.append(source)
    return out
