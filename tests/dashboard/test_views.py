"""What the dashboard computes from API answers: speeds between its looks, progress and ETA, and
the charts' geometry."""
from __future__ import annotations

from services.dashboard import charts, views


def test_rates_are_measured_over_the_window_and_restart_when_a_counter_goes_back():
    rates = views.Rates(window=60)
    assert rates.observe("a", 0, now=100.0) is None  # one look: no speed yet
    assert rates.observe("a", 500, now=100.5) is None  # under a second apart: too noisy
    assert rates.observe("a", 1000, now=102.0) == 500.0
    assert rates.observe("a", 7000, now=200.0) == (7000 - 1000) / 98  # older looks leave the window
    assert rates.observe("a", 10, now=201.0) is None  # a retried scan: start over
    small = views.Rates(capacity=2)
    for key in "abc":
        small.observe(key, 1, now=1.0)
    assert list(small.samples) == ["b", "c"]


def test_progress_and_eta_of_a_summary():
    summary = {"id": "p", "scanningStatus": "completed", "scannedBytes": 1000, "bytesDone": 250, "rate": 50,
               "generationTotal": 4, "generationCompleted": 1, "generationInprogress": 1, "generationFailed": 1}
    progress = views.preparation_progress(summary, views.Rates())
    assert progress["car_percent"] == 25.0 and progress["eta"] == 15.0
    assert progress["chunks"] == {"completed": 25.0, "building": 25.0, "failed": 25.0}
    scanning = views.preparation_progress({**summary, "scanningStatus": "active"}, views.Rates())
    assert scanning["eta"] is None  # the total is unknown until the scan ends
    done = views.preparation_progress({**summary, "bytesDone": 1000, "rate": 0}, views.Rates())
    assert done["eta"] == 0 and done["car_percent"] == 100.0
    assert views.size(None) == "–" and views.size(1536) == "1.50 KiB" and views.duration(3725) == "1 h 2 min"


def test_deal_state_lines_and_byte_bars():
    history = {"bucket": 86400, "states": ["proposed", "active", "slashed"], "points": [
        {"time": 86400 * 2, "counts": {"proposed": 4}},
        {"time": 86400 * 3, "counts": {"proposed": 1, "active": 3}},
        {"time": 86400 * 4, "counts": {"active": 4}}]}
    chart = charts.deal_states(history)
    assert [s["state"] for s in chart["series"]] == ["proposed", "active"]  # never-seen states left out
    proposed = [tuple(map(float, p.split(","))) for p in chart["series"][0]["points"].split()]
    assert proposed[0] == (charts.LEFT, charts.TOP)  # the highest count touches the top
    assert proposed[-1] == (charts.WIDTH - charts.RIGHT, charts.HEIGHT - charts.BOTTOM)  # zero at the end
    assert chart["series"][1]["last"] == 4
    bars = charts.bytes_per_bucket({"bucket": 86400, "points": [
        {"time": 86400, "bytes": 0, "chunks": 0}, {"time": 2 * 86400, "bytes": 2048, "chunks": 2}]})
    assert bars["total"] == 2048 and bars["bars"][1]["height"] == charts.HEIGHT - charts.BOTTOM - charts.TOP
    assert bars["bars"][0]["height"] == 0 and bars["bars"][1]["label"] == "01-02"
    assert charts.deal_states({"points": []})["empty"] and charts.bytes_per_bucket({"points": []})["empty"]
