"""The geometry of the dashboard's two charts, drawn as inline SVG by templates/charts.html:
deals by state over time (one line per state) and bytes prepared per bucket (bars), from the
history APIs of the deal making and preparation services."""
from __future__ import annotations

import datetime as dt

from services.dashboard.views import size

WIDTH, HEIGHT = 800, 260
LEFT, RIGHT, TOP, BOTTOM = 60, 30, 10, 30
COLORS = {"sending": "#9e9e9e", "proposed": "#1e88e5", "published": "#8e24aa", "active": "#43a047",
          "expired": "#795548", "proposal_expired": "#fb8c00", "slashed": "#e53935", "rejected": "#d81b60",
          "error": "#6d4c41"}


def _x(time: float, start: float, end: float) -> float:
    span = max(end - start, 1)
    return round(LEFT + (WIDTH - LEFT - RIGHT) * (time - start) / span, 1)


def _y(value: float, top: float) -> float:
    return round(HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * value / max(top, 1), 1)


def _label(time: float) -> str:
    return dt.datetime.fromtimestamp(time, dt.timezone.utc).strftime("%m-%d")


def _frame(start: float, end: float, top: float, fmt=str) -> dict:
    ticks = 5
    xs = [start + (end - start) * i / ticks for i in range(ticks + 1)]
    return {"width": WIDTH, "height": HEIGHT, "left": LEFT, "bottom": HEIGHT - BOTTOM, "right": WIDTH - RIGHT,
            "top": TOP, "x_ticks": [{"x": _x(t, start, end), "label": _label(t)} for t in xs],
            "y_ticks": [{"y": _y(top * i / 4, top), "label": fmt(round(top * i / 4))} for i in range(5)]}


def deal_states(data: dict) -> dict:
    points = sorted((p for p in data.get("points") or [] if isinstance(p.get("time"), (int, float))),
                    key=lambda p: p["time"])
    states = [s for s in data.get("states") or [] if any((p.get("counts") or {}).get(s) for p in points)]
    if not points:
        return {"empty": True, "series": []}
    start, end = points[0]["time"], points[-1]["time"]
    highest = max([(p.get("counts") or {}).get(s, 0) or 0 for p in points for s in states] or [1])
    top = -(-max(highest, 1) // 4) * 4  # whole numbers on the four grid lines
    series = [{"state": s, "color": COLORS.get(s, "#607d8b"), "last": (points[-1].get("counts") or {}).get(s, 0),
               "points": " ".join(f"{_x(p['time'], start, end)},{_y((p.get('counts') or {}).get(s, 0) or 0, top)}"
                                  for p in points)} for s in states]
    return {"empty": not series, "series": series, **_frame(start, end, top)}


def bytes_per_bucket(data: dict) -> dict:
    """Bars of the bytes packed in each bucket; a point's `time` is its bucket's end."""
    bucket = data.get("bucket") if isinstance(data.get("bucket"), (int, float)) and data["bucket"] > 0 else 86400
    points = sorted((p for p in data.get("points") or [] if isinstance(p.get("time"), (int, float))),
                    key=lambda p: p["time"])
    if not points:
        return {"empty": True, "bars": []}
    start, end = points[0]["time"] - bucket, points[-1]["time"]
    top = max(p.get("bytes") or 0 for p in points) or 1
    width = max(1.0, (WIDTH - LEFT - RIGHT) * bucket / max(end - start, 1) * 0.8)
    bars = [{"x": _x(p["time"] - bucket, start, end), "y": _y(p.get("bytes") or 0, top), "width": round(width, 1),
             "height": round(HEIGHT - BOTTOM - _y(p.get("bytes") or 0, top), 1), "label": _label(p["time"] - bucket),
             "bytes": p.get("bytes") or 0, "chunks": p.get("chunks") or 0} for p in points]
    total = sum(b["bytes"] for b in bars)
    return {"empty": not total, "bars": bars, "total": total, **_frame(start, end, top, size)}
