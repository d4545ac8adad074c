"""What `singularity retrieve NAME/path` means by NAME, tried in order:

  an index CID; the name (or id) of a preparation, asked of the hosting service (`/index/NAME`);
  a DNS name whose `_dnslink.NAME` TXT record says `dnslink=/ipfs/<indexCid>`;
and `/ipns/NAME`, resolved by kubo's `name/resolve` (`ipfs_api`). DNS goes to
`[connection] dns_resolver` (host:port) when set, else to the system's resolvers.
"""
from __future__ import annotations

import ipaddress
import json
import re
import socket
import urllib.error
import urllib.request
from typing import Callable
from urllib.parse import quote

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.resolver

from services.indexing.retrieval import RetrievalError, is_index_cid

_DNSLINK = re.compile(r"^dnslink=/ipfs/([A-Za-z0-9]+)(/.*)?$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]{1,63}\.?$")


class ResolveError(RetrievalError):
    pass


def dnslink_record(index_cid: str) -> str:
    """The TXT record a dataset owner publishes at `_dnslink.<their domain>`."""
    return f"dnslink=/ipfs/{index_cid}"


def dnslink(name: str, resolver: str = "", timeout: float = 5.0) -> str | None:
    """The index CID `_dnslink.NAME` points at; None when there is no such record. Errors
    (unreachable server, malformed answer) raise ResolveError."""
    if not _HOSTNAME.match(name):
        return None
    qname = dns.name.from_text(f"_dnslink.{name.rstrip('.')}")
    try:
        if resolver:
            host, port = _host_port(resolver)
            answer = dns.query.udp(dns.message.make_query(qname, dns.rdatatype.TXT), host, timeout=timeout, port=port)
            texts = [rr for rrset in answer.answer if rrset.rdtype == dns.rdatatype.TXT for rr in rrset]
        else:
            try:
                texts = list(dns.resolver.resolve(qname, "TXT", lifetime=timeout))
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                return None
    except (dns.exception.DNSException, OSError) as exc:
        raise ResolveError(f"DNS lookup of {qname.to_text(omit_final_dot=True)} failed: {type(exc).__name__}: {exc}") from None
    for rr in texts:
        text = b"".join(rr.strings).decode("utf-8", "replace")
        match = _DNSLINK.match(text)
        if match and is_index_cid(match[1]):
            return match[1]
    return None


def _host_port(text: str) -> tuple[str, int]:
    if text.startswith("["):  # [::1]:53
        host, _, port = text[1:].partition("]")
        port = port.lstrip(":")
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""
    try:
        port_number = int(port or 53)
        ipaddress.ip_address(host)
        return host, port_number
    except ValueError:
        pass
    try:  # a host name: dnspython queries addresses only
        return socket.gethostbyname(host), int(port or 53)
    except (OSError, ValueError):
        raise ResolveError(f"[connection] dns_resolver {text!r}: expected host:port") from None


def ipns(name: str, ipfs_api: str, timeout: float = 30.0) -> str:
    """The index CID an IPNS name points at, through kubo's `name/resolve`."""
    if not ipfs_api:
        raise ResolveError(f"/ipns/{name}: set [deal_preparation_service] ipfs_api to resolve IPNS names through kubo")
    url = f"{ipfs_api.rstrip('/')}/api/v0/name/resolve?arg={quote(name, safe='')}&recursive=true"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST"), timeout=timeout) as response:
            answer = json.loads(response.read(1 << 16))
    except urllib.error.HTTPError as exc:
        raise ResolveError(f"/ipns/{name}: kubo name/resolve answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ResolveError(f"/ipns/{name}: kubo name/resolve failed: {getattr(exc, 'reason', exc)}") from None
    path = answer.get("Path") if isinstance(answer, dict) else None
    head = path.split("/")[2] if isinstance(path, str) and path.startswith("/ipfs/") else ""
    if not is_index_cid(head):
        raise ResolveError(f"/ipns/{name} resolves to {path!r}, not to a dataset index")
    return head


def resolve(name: str, by_preparation: Callable[[str], str], resolver: str = "") -> str:
    """The index CID of NAME: itself, a preparation's, or its DNSLink's; one-line error otherwise."""
    if is_index_cid(name):
        return name
    reasons = []
    try:
        return by_preparation(name)
    except Exception as exc:  # noqa: BLE001 - any failure there means: try DNS
        reasons.append(str(exc))
    try:
        found = dnslink(name, resolver)
    except ResolveError as exc:
        reasons.append(str(exc))
    else:
        if found:
            return found
        reasons.append(f"no DNSLink TXT record at _dnslink.{name}" if _HOSTNAME.match(name)
                       else f"{name!r} is no DNS name")
    raise ResolveError(f"cannot resolve {name!r}: not an index CID; " + "; ".join(reasons))
