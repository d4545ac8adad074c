"""What `deal history` and `prep history` share: reading a window from the command line, printing
its points as a table."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Optional

import typer

from cli.client import CliError

SINCE = typer.Option(None, help="Start: Unix seconds or a UTC date (2026-11-01, 2026-11-01T12:00); "
                     "default 30 days before --until.")
UNTIL = typer.Option(None, help="End: Unix seconds or a UTC date; default now.")
BUCKET = typer.Option(None, help="Bucket length: seconds, or a number with s, m, h, d or w (default 1d); "
                      "at most 1000 buckets.")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_time(option: str, value: Optional[str]) -> Optional[int]:
    if value is None:
        return None
    if re.fullmatch(r"[0-9]{1,15}", value):
        return int(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CliError(f"{option}: expected Unix seconds or a date such as 2026-11-01T12:00, got {value[:40]!r}",
                       exit_code=2) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp())


def parse_bucket(value: Optional[str]) -> Optional[int]:
    if value is None:
        return None
    match = re.fullmatch(r"([0-9]{1,15})([smhdw]?)", value.strip().lower())
    if not match:
        raise CliError(f"--bucket: expected seconds or a length such as 6h or 1d, got {value[:40]!r}", exit_code=2)
    return int(match.group(1)) * _UNITS[match.group(2) or "s"]


def window(since: Optional[str], until: Optional[str], bucket: Optional[str]) -> dict:
    return {"since": parse_time("--since", since), "until": parse_time("--until", until),
            "bucket": parse_bucket(bucket)}


def when(seconds: int, bucket: int) -> str:
    """A bucket's end in UTC, to the minute (to the second for buckets under a minute)."""
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if bucket < 60 else "%Y-%m-%d %H:%M")
