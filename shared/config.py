"""The suite's configuration: one dataclass per `config.toml` section, validated strictly at load.

Found via `--config`, then `SINGULARITY_CONFIG`, then `./config.toml`; with none of them the
defaults apply. An unknown key, a wrong type or a bad size is a `ConfigError` naming the key.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the key."""


_UNITS = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "pb": 10**15,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "pib": 2**50,
    "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50,
}
_SIZE_RE = re.compile(r"^\s*(\d+)(?:\.(\d+))?\s*([a-zA-Z]*)\s*$")
# The largest byte count a database document (int64) holds: 8 EiB, far beyond any dataset.
MAX_SIZE = 2**63 - 1
# Beyond these many digits a number is over MAX_SIZE, or its fraction cannot make whole bytes of
# any unit (at most 2**50 or 10**15): checked before any arithmetic, so a megabyte of digits is cheap.
_MAX_DIGITS = 19
_MAX_FRACTION_DIGITS = 50


def parse_size(value: str | int) -> int:
    """`32GiB`, `32 GiB`, `1.5TiB`, `20 GB` or a plain byte count, to bytes (exactly: no floats)."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a size cannot be negative: {value}")
        if value > MAX_SIZE:
            raise ValueError(f"too large: a size is at most {MAX_SIZE} bytes (8 EiB - 1)")
        return value
    if not isinstance(value, str):
        raise ValueError(f"not a size: {value!r}")
    match = _SIZE_RE.match(value)
    if not match or match.group(3).lower() not in _UNITS:
        raise ValueError(f"not a size: {_shorten(value)} (use e.g. 32GiB, 1.5 TiB, 20 GB or a byte count)")
    whole, fraction, unit = match.group(1).lstrip("0"), (match.group(2) or "").rstrip("0"), match.group(3)
    if len(whole) > _MAX_DIGITS:
        raise ValueError(f"too large: a size is at most {MAX_SIZE} bytes (8 EiB - 1)")
    if len(fraction) > _MAX_FRACTION_DIGITS:
        raise ValueError(f"not a whole number of bytes: {_shorten(value)}")
    scale = 10 ** len(fraction)
    numerator = (int(whole or "0") * scale + int(fraction or "0")) * _UNITS[unit.lower()]
    if numerator % scale:
        raise ValueError(f"not a whole number of bytes: {_shorten(value)}")
    size = numerator // scale
    if size > MAX_SIZE:
        raise ValueError(f"too large: a size is at most {MAX_SIZE} bytes (8 EiB - 1)")
    return size


def _shorten(text: str, limit: int = 80) -> str:
    """An error message quotes bad input, but not a megabyte of it."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


def format_size(size: int, exact: bool = True) -> str:
    """`32 GiB` when a binary unit divides the size; otherwise the byte count (`exact`) or an
    approximation such as `19.20 GiB` for people."""
    for unit, factor in (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    if exact:
        return str(size)
    for unit, factor in (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= factor:
            return f"{size / factor:.2f} {unit}"
    return f"{size} B"


_TOKEN_RE = re.compile(r"^[A-Za-z0-9._~+/-]+$")


class Size(int):
    """A config field that also accepts a size string such as `32GiB`."""


@dataclass
class Connection:
    database: str = "mongodb://127.0.0.1:37000/singularity"
    deal_preparation_service: str = "http://127.0.0.1:3001"
    deal_making_service: str = "http://127.0.0.1:3003"
    replication_service: str = "http://127.0.0.1:3002"
    http_hosting_service: str = "http://127.0.0.1:8080"
    ranking_service: str = "http://127.0.0.1:3004"
    # The web dashboard as browsers reach it: its origin is allowed by every service (CSRF guard)
    # besides allowed_origins, and its host name by the DNS-rebinding guard.
    dashboard: str = "http://127.0.0.1:3000"
    # IPNI indexer (cid.contact protocol): provider announcements for ranking, CID lookups.
    ipni_api: str = "https://cid.contact"
    full_node_api: str = "http://127.0.0.1:1234"
    full_node_token: str = ""
    # DNS server (host:port, or host for port 53) that `retrieve` asks for DNSLink records;
    # empty: the system's resolvers.
    dns_resolver: str = ""
    # Shared secret of the management APIs (preparation, deal making; bundles and /index on the
    # hosting service unless public_bundles): required when set, and the CLI sends it.
    api_token: str = ""
    # Web origins (scheme://host[:port]) whose pages may call the APIs besides each service's own;
    # every other Origin is refused, so a page the user happens to open cannot drive them (CSRF).
    allowed_origins: list[str] = field(default_factory=list)
    # Host names the services answer to besides IP literals and localhost; any other Host header
    # is refused, so a name rebound to 127.0.0.1 by its DNS cannot reach them (DNS rebinding).
    allowed_hosts: list[str] = field(default_factory=list)


@dataclass
class Database:
    enabled: bool = True
    path: str = "./.singularity/database"
    bind: str = "127.0.0.1"
    port: int = 37000


@dataclass
class DealPreparationService:
    enabled: bool = True
    bind: str = "127.0.0.1"
    port: int = 3001
    ipfs_api: str = ""
    # Used when a request names no dealSize.
    default_deal_size: Size = Size(32 * 2**30)
    # A worker whose last heartbeat is older than this loses its jobs to others.
    worker_timeout: float = 30.0
    maintenance_interval: float = 5.0
    # A dataset path must resolve (symlinks followed) inside one of these directories: nothing
    # else on the host can be exported. Relative entries are from the working directory.
    dataset_roots: list[str] = field(default_factory=list)
    # Inline preparation by default (a request's "inline" decides): no CAR is written, pieces are
    # assembled from the source files on request.
    inline: bool = False


@dataclass
class DealPreparationWorker:
    enabled: bool = True
    parallelism: int = 2
    out_dir: str = "./.singularity/cars"
    heartbeat_interval: float = 5.0
    poll_interval: float = 1.0


@dataclass
class DealMakingService:
    enabled: bool = True
    bind: str = "127.0.0.1"
    port: int = 3003
    boost_path: str = "boost"
    other_boost_client_cli_options: str = ""
    # A deal's keyPath must name a wallet key file inside this directory.
    key_dir: str = "./.singularity/keys"
    timeout: float = 120.0
    # Boost client processes running at once (each deal runs one); further deals wait their turn.
    max_concurrent: int = 8


@dataclass
class DealTrackingService:
    enabled: bool = False
    interval: float = 60.0


@dataclass
class ReplicationService:
    enabled: bool = False
    bind: str = "127.0.0.1"
    port: int = 3002
    # Where providers download CARs: deals get <http_url_prefix>/<dataCid>.car unless a request
    # gives its own urlTemplate. Empty: the hosting service's [connection] http_hosting_service.
    http_url_prefix: str = ""
    # Seconds between two rounds of one request.
    interval: float = 60.0
    # Proposals of one round in flight at once (one at a time per provider).
    concurrency: int = 4
    # Defaults of a request's deal parameters.
    verified: bool = True
    duration: int = 535 * 2880  # epochs (535 days)
    start_delay: int = 3 * 2880  # epochs between the proposal and the deal's start (72 h)
    price: str = "0"  # attoFIL per epoch per GiB
    keep_unsealed: bool = True
    announce_to_ipni: bool = True
    max_pending_per_provider: int = 50
    deals_per_day: int = 1000
    # A refused or failed proposal backs its provider (and that piece at it) off for backoff_base
    # seconds, doubling at each further failure up to backoff_cap; a success resets it.
    backoff_base: float = 30.0
    backoff_cap: float = 6 * 3600.0
    # A deal ending within this many days no longer counts as a replica: it is renewed in time.
    renew_before: float = 30.0


RANKING_SOURCES = ["lotus", "deals", "retrieval", "filrep", "datacapstats", "ipni"]


@dataclass
class RankingService:
    enabled: bool = False
    bind: str = "127.0.0.1"
    port: int = 3004
    # Seconds between two rounds of metric collection.
    refresh_interval: float = 3600.0
    # Seconds between two re-reads of the values other ranking hosts stored (only the new ones).
    reload_interval: float = 60.0
    # Provider ids always tracked, besides those of our deals and those a listing source returns.
    providers: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=lambda: list(RANKING_SOURCES))
    filrep_api: str = "https://api.filrep.io"
    datacapstats_api: str = "https://api.datacapstats.io"
    datacapstats_api_key: str = ""
    # Seconds one request to a source may take.
    timeout: float = 30.0
    # Range requests the retrieval probe makes per round (over all providers), and their size.
    retrieval_probes: int = 20
    probe_bytes: Size = Size(1 << 20)


@dataclass
class HttpHostingService:
    enabled: bool = True
    bind: str = "127.0.0.1"
    port: int = 8080
    car_dir: str = "./.singularity/cars"
    # When set, pieces, CARs and blocks need "Authorization: Bearer <token>"; deal making hands it
    # to storage providers as the deal's HTTP headers. Empty: that content is public.
    token: str = ""
    # Bundles and /index follow connection.api_token unless this is true.
    public_bundles: bool = False


@dataclass
class Dashboard:
    # Off unless config.toml (or the command line) turns it on: port 3000 is often taken on a
    # developer's machine, and a module that cannot bind stops the whole run.
    enabled: bool = False
    bind: str = "127.0.0.1"
    port: int = 3000
    # Seconds one request of the dashboard to a service may take before the page says so.
    timeout: float = 10.0


@dataclass
class Config:
    connection: Connection = field(default_factory=Connection)
    database: Database = field(default_factory=Database)
    deal_preparation_service: DealPreparationService = field(default_factory=DealPreparationService)
    deal_preparation_worker: DealPreparationWorker = field(default_factory=DealPreparationWorker)
    deal_making_service: DealMakingService = field(default_factory=DealMakingService)
    deal_tracking_service: DealTrackingService = field(default_factory=DealTrackingService)
    replication_service: ReplicationService = field(default_factory=ReplicationService)
    ranking_service: RankingService = field(default_factory=RankingService)
    http_hosting_service: HttpHostingService = field(default_factory=HttpHostingService)
    dashboard: Dashboard = field(default_factory=Dashboard)
    source: Path | None = None


def _coerce(key: str, kind: typing.Any, value: typing.Any) -> typing.Any:
    if typing.get_origin(kind) is list:
        (item,) = typing.get_args(kind)
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list of {item.__name__}, got {type(value).__name__} {value!r}")
        return [_coerce(f"{key}[{i}]", item, v) for i, v in enumerate(value)]
    if kind is Size:
        try:
            return Size(parse_size(value))
        except ValueError as exc:
            raise ConfigError(f"{key}: {exc}") from None
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif kind is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{key}: expected {kind.__name__}, got {type(value).__name__} {value!r}")


def _build(cls: type, data: dict, prefix: str) -> typing.Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.name != "source"}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown key {prefix}{unknown[0]} (known: {', '.join(sorted(names))})")
    values = {}
    for name, value in data.items():
        kind = hints[name]
        key = f"{prefix}{name}"
        if dataclasses.is_dataclass(kind):
            if not isinstance(value, dict):
                raise ConfigError(f"{key}: expected a [{key}] section")
            values[name] = _build(kind, value, f"{key}.")
        else:
            values[name] = _coerce(key, kind, value)
    return cls(**values)


def _check(config: Config) -> None:
    worker = config.deal_preparation_worker
    if worker.parallelism < 1:
        raise ConfigError("deal_preparation_worker.parallelism: must be at least 1")
    for key, value in (
        ("deal_preparation_worker.heartbeat_interval", worker.heartbeat_interval),
        ("deal_preparation_worker.poll_interval", worker.poll_interval),
        ("deal_preparation_service.worker_timeout", config.deal_preparation_service.worker_timeout),
        ("deal_preparation_service.maintenance_interval", config.deal_preparation_service.maintenance_interval),
        ("deal_tracking_service.interval", config.deal_tracking_service.interval),
        ("ranking_service.refresh_interval", config.ranking_service.refresh_interval),
        ("ranking_service.reload_interval", config.ranking_service.reload_interval),
        ("ranking_service.timeout", config.ranking_service.timeout),
        ("replication_service.interval", config.replication_service.interval),
        ("replication_service.backoff_base", config.replication_service.backoff_base),
        ("replication_service.backoff_cap", config.replication_service.backoff_cap),
        ("replication_service.concurrency", config.replication_service.concurrency),
        ("replication_service.max_pending_per_provider", config.replication_service.max_pending_per_provider),
        ("replication_service.deals_per_day", config.replication_service.deals_per_day),
        ("deal_making_service.max_concurrent", config.deal_making_service.max_concurrent),
        ("dashboard.timeout", config.dashboard.timeout),
    ):
        if value <= 0:
            raise ConfigError(f"{key}: must be positive")
    if config.deal_preparation_service.worker_timeout <= worker.heartbeat_interval:
        raise ConfigError("deal_preparation_service.worker_timeout: must exceed deal_preparation_worker.heartbeat_interval")
    token = config.http_hosting_service.token
    if token and not _TOKEN_RE.match(token):
        # It travels as boost's `--http-headers Authorization=Bearer <token>`, which splits on "="
        # and ",": a token holding either would reach providers mangled.
        raise ConfigError("http_hosting_service.token: use only letters, digits and . _ ~ + / - "
                          "(e.g. the output of `openssl rand -hex 32`)")
    if config.replication_service.renew_before < 0:
        raise ConfigError("replication_service.renew_before: must not be negative")
    if config.replication_service.http_url_prefix and not re.match(r"^https?://[^/\s]+", config.replication_service.http_url_prefix):
        raise ConfigError("replication_service.http_url_prefix: must be an http:// or https:// URL")
    ranking = config.ranking_service
    if ranking.retrieval_probes < 0:
        raise ConfigError("ranking_service.retrieval_probes: must not be negative")
    bad = [p for p in ranking.providers if not re.fullmatch(r"[ft]0\d{1,20}", p)]
    if bad:
        raise ConfigError(f"ranking_service.providers: not a provider id: {bad[0]!r} (expected e.g. f01234)")
    unknown = sorted(set(config.ranking_service.sources) - set(RANKING_SOURCES))
    if unknown:
        raise ConfigError(f"ranking_service.sources: unknown source {unknown[0]!r} (known: {', '.join(RANKING_SOURCES)})")
    for section in dataclasses.fields(config):
        value = getattr(config, section.name)
        if hasattr(value, "port") and not 0 <= value.port <= 65535:
            raise ConfigError(f"{section.name}.port: not a TCP port: {value.port}")


def parse(data: dict, source: Path | None = None) -> Config:
    config = _build(Config, data, "")
    config.source = source
    _check(config)
    return config


def find_config_file(explicit: str | os.PathLike | None = None) -> Path | None:
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        return path
    env = os.environ.get("SINGULARITY_CONFIG")
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path} (from SINGULARITY_CONFIG)")
        return path
    local = Path("config.toml")
    return local if local.is_file() else None


def load(explicit: str | os.PathLike | None = None) -> Config:
    path = find_config_file(explicit)
    if path is None:
        return parse({})
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse(data, path)



def to_toml(data: dict) -> str:
    """A config as TOML (sections of strings, numbers, booleans and lists of them), for tools
    that write a config file for a run, such as `make run`."""
    def value(v: typing.Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)  # a JSON string is a TOML basic string
        if isinstance(v, list):
            return "[" + ", ".join(value(item) for item in v) + "]"
        raise TypeError(f"cannot write {type(v).__name__} as TOML")

    lines = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {value(v)}" for key, v in values.items()]
        lines.append("")
    return "\n".join(lines)
