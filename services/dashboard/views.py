"""How the dashboard shows values: the template environment (every value HTML-escaped unless a
template says otherwise, which none does with API data), number formats, progress and ETA."""
from __future__ import annotations

import collections
import datetime as dt
import time
from pathlib import Path

import jinja2

from shared.config import format_size

TEMPLATES = Path(__file__).resolve().parent / "templates"


def size(value) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        return "–"
    return format_size(int(value), exact=False)


def rate(value) -> str:
    if not isinstance(value, (int, float)) or value <= 0:
        return "–"
    return f"{size(round(value))}/s"


def duration(seconds) -> str:
    if not isinstance(seconds, (int, float)) or seconds < 0 or seconds != seconds:
        return "–"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


def ago(timestamp) -> str:
    if not isinstance(timestamp, (int, float)):
        return "never"
    return f"{duration(max(0.0, time.time() - timestamp))} ago"


def when(timestamp) -> str:
    if not isinstance(timestamp, (int, float)):
        return "–"
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def percent(part, whole) -> float:
    """0 to 100, for bar widths."""
    if not isinstance(part, (int, float)) or not isinstance(whole, (int, float)) or whole <= 0:
        return 0.0
    return round(max(0.0, min(100.0, 100.0 * part / whole)), 1)


def number(value) -> str:
    if isinstance(value, bool) or value is None:
        return "–" if value is None else str(value).lower()
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(size=size, rate=rate, duration=duration, ago=ago, when=when, number=number)
    env.globals.update(percent=percent)
    return env


class Rates:
    """Speeds seen between the dashboard's own looks at a counter (bytes scanned so far, say: the
    API gives the count, not its rate), over the last `window` seconds; bounded in keys."""

    def __init__(self, window: float = 60.0, capacity: int = 10_000):
        self.window, self.capacity = window, capacity
        self.samples: collections.OrderedDict[str, collections.deque] = collections.OrderedDict()

    def observe(self, key: str, value: float, now: float | None = None) -> float | None:
        now = time.monotonic() if now is None else now
        samples = self.samples.pop(key, None) or collections.deque()
        if samples and value < samples[-1][1]:
            samples.clear()  # the counter went back (a retried scan): start over
        samples.append((now, value))
        while len(samples) > 2 and now - samples[1][0] >= self.window:
            samples.popleft()
        self.samples[key] = samples
        while len(self.samples) > self.capacity:
            self.samples.popitem(last=False)
        (t0, v0), (t1, v1) = samples[0], samples[-1]
        return (v1 - v0) / (t1 - t0) if t1 - t0 >= 1.0 else None


def preparation_progress(summary: dict, rates: Rates) -> dict:
    """What the preparations page shows of one summary: scan and CAR bars, rates and the ETA."""
    scanned = summary.get("scannedBytes") or 0
    done = summary.get("bytesDone") or 0
    total_chunks = summary.get("generationTotal") or 0
    scan_done = summary.get("scanningStatus") == "completed"
    scan_rate = None if scan_done else rates.observe("scan:" + summary["id"], scanned)
    car_rate = summary.get("rate") or rates.observe("car:" + summary["id"], done) or 0
    remaining = max(0, scanned - done)
    if not scan_done:
        eta = None  # what is left is known only once the scan has ended
    elif not remaining:
        eta = 0 if total_chunks else None
    else:
        eta = remaining / car_rate if car_rate > 0 else None
    return {
        "scan_done": scan_done, "scan_rate": scan_rate,
        "car_percent": percent(done, scanned), "car_rate": car_rate, "eta": eta,
        "chunks": {
            "completed": percent(summary.get("generationCompleted", 0), total_chunks),
            "building": percent(summary.get("generationInprogress", 0), total_chunks),
            "failed": percent(summary.get("generationFailed", 0), total_chunks),
        },
    }
