"""The single-range subset of RFC 9110 byte ranges that the piece endpoint serves."""
from __future__ import annotations

import re

_RANGE_RE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


class Unsatisfiable(Exception):
    pass


def _number(digits: str) -> int:
    # Past Python's int digit limit int() raises; any position that long is past every end anyway.
    return int(digits) if len(digits) <= 30 else 10**30


def parse(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end exclusive) for a satisfiable single range; None to send the whole body
    (no header, or one a server may ignore: malformed, or several ranges); raises
    Unsatisfiable when the range starts past the end."""
    if not header:
        return None
    match = _RANGE_RE.match(header)
    if not match:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        length = _number(last)
        if length == 0 or size == 0:
            raise Unsatisfiable
        return max(0, size - length), size
    start = _number(first)
    if last and _number(last) < start:
        return None
    if start >= size:
        raise Unsatisfiable
    end = size if not last else min(_number(last) + 1, size)
    return start, end
