"""Multiaddrs, binary (as Lotus returns them, base64) or text (as IPNI does), to a provider's HTTP endpoint."""
from __future__ import annotations

import base64
import binascii
import ipaddress

from shared.ipld.varint import decode as _varint

# code -> (name, size in bytes; -1 for a varint length prefix)
_PROTOCOLS = {
    4: ("ip4", 4), 41: ("ip6", 16), 6: ("tcp", 2), 273: ("udp", 2), 33: ("dccp", 2), 132: ("sctp", 2),
    53: ("dns", -1), 54: ("dns4", -1), 55: ("dns6", -1), 56: ("dnsaddr", -1), 421: ("p2p", -1),
    449: ("sni", -1), 480: ("http", 0), 443: ("https", 0), 448: ("tls", 0), 460: ("quic", 0),
    461: ("quic-v1", 0), 477: ("ws", 0), 478: ("wss", 0), 465: ("webtransport", 0), 290: ("p2p-circuit", 0),
}


def decode(data: bytes) -> list[tuple[str, str | None]]:
    """[(protocol, value)]; ValueError for an unknown protocol or a truncated address."""
    parts: list[tuple[str, str | None]] = []
    at = 0
    while at < len(data):
        code, at = _varint(data, at)
        if code not in _PROTOCOLS:
            raise ValueError(f"unknown multiaddr protocol {code}")
        name, size = _PROTOCOLS[code]
        if size == -1:
            size, at = _varint(data, at)
        raw = data[at:at + size]
        if len(raw) != size:
            raise ValueError("truncated multiaddr")
        at += size
        if name in ("ip4", "ip6"):
            value: str | None = str(ipaddress.ip_address(raw))
        elif name in ("tcp", "udp", "dccp", "sctp"):
            value = str(int.from_bytes(raw, "big"))
        elif size:
            value = raw.decode("utf-8", "replace") if name != "p2p" else raw.hex()
        else:
            value = None
        parts.append((name, value))
    return parts


def http_endpoint(parts: list[tuple[str, str | None]]) -> str | None:
    """`https://host[:port]` for an address with an http or https component, else None."""
    names = [name for name, _ in parts]
    if "http" not in names and "https" not in names:
        return None
    scheme = "https" if "https" in names or "tls" in names else "http"
    host = port = None
    for name, value in parts:
        if name in ("ip4", "dns", "dns4", "dns6") and host is None:
            host = value
        elif name == "ip6" and host is None:
            host = f"[{value}]"
        elif name == "tcp" and port is None:
            port = value
    if not host:
        return None
    default = "443" if scheme == "https" else "80"
    return f"{scheme}://{host}" + ("" if port in (None, default) else f":{port}")


def endpoint_of(multiaddrs) -> str | None:
    """The first HTTP endpoint among Lotus's base64 multiaddrs; unreadable ones are skipped."""
    for encoded in multiaddrs or []:
        if not isinstance(encoded, str):
            continue
        try:
            endpoint = http_endpoint(decode(base64.b64decode(encoded, validate=True)))
        except (ValueError, binascii.Error):
            continue
        if endpoint:
            return endpoint
    return None


def parse_text(text: str) -> list[tuple[str, str | None]]:
    """[(protocol, value)] of a text multiaddr; ValueError for an unknown protocol or a missing value."""
    sizes = {name: size for name, size in _PROTOCOLS.values()}
    items = text.strip().strip("/").split("/")
    parts: list[tuple[str, str | None]] = []
    i = 0
    while i < len(items):
        name = items[i]
        if name not in sizes:
            raise ValueError(f"unknown multiaddr protocol {name!r}")
        i += 1
        if sizes[name] == 0:
            parts.append((name, None))
            continue
        if i >= len(items):
            raise ValueError(f"multiaddr protocol {name!r} without its value")
        parts.append((name, items[i]))
        i += 1
    return parts


def endpoint_of_text(addrs) -> str | None:
    """The first HTTP endpoint among text multiaddrs (`/dns4/sp.example/tcp/443/https`)."""
    for text in addrs or []:
        if not isinstance(text, str):
            continue
        try:
            endpoint = http_endpoint(parse_text(text))
        except ValueError:
            continue
        if endpoint:
            return endpoint
    return None


def encode(text: str) -> bytes:
    """The binary form of a text multiaddr (`/dns/sp.example/tcp/443/https`), for tests and tools."""
    names = {name: code for code, (name, _) in _PROTOCOLS.items()}
    items = text.strip("/").split("/")
    out = bytearray()
    i = 0
    while i < len(items):
        name = items[i]
        code = names[name]
        out += _uvarint(code)
        size = _PROTOCOLS[code][1]
        i += 1
        if size == 0:
            continue
        value = items[i]
        i += 1
        if name in ("ip4", "ip6"):
            out += ipaddress.ip_address(value).packed
        elif size == 2:
            out += int(value).to_bytes(2, "big")
        else:
            raw = value.encode()
            out += _uvarint(len(raw)) + raw
    return bytes(out)


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)
