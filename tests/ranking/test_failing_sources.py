"""A source that is down, refuses us, times out or answers malformed JSON: the round finishes, its
metrics keep their last values with their age, `provider show` prints its error, and the other
sources' metrics are fresh."""
from __future__ import annotations

import json

import pytest

from tests.processes import cli_against
from tests.conftest import free_port

MODES = ["down", "401", "timeout", "malformed"]


def break_source(ranking, lotus, sources, source: str, mode: str) -> None:
    if mode == "down":  # nothing listens there any more
        dead = f"http://127.0.0.1:{free_port()}"
        if source == "lotus":
            ranking.config.connection.full_node_api = dead
        elif source == "ipni":
            ranking.config.connection.ipni_api = dead
        else:
            setattr(ranking.config.ranking_service, f"{source}_api", dead)
    elif source == "lotus":
        if mode == "401":
            lotus.chain.token = "secret"
        else:
            lotus.chain.mode = mode
            lotus.chain.delay = 5.0
    else:
        sources.data.modes[source] = mode
        sources.data.delay = 5.0


async def cli(api, tmp_path, *args: str) -> tuple[int, str, str]:
    return await cli_against("ranking_service", api, tmp_path, *args)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("source", ["filrep", "lotus", "datacapstats", "ipni"])
async def test_failing_source_keeps_its_values(ranking, api, lotus, sources, tmp_path, source, mode):
    first = await ranking.refresh()
    assert all(s["ok"] for s in first["sources"].values())
    before = {p: ranking.table.row(p) for p in ranking.table.providers}
    stamps = {p: dict(ranking.table.meta[p]) for p in ranking.table.providers}

    break_source(ranking, lotus, sources, source, mode)
    second = await ranking.refresh()
    assert not second["sources"][source]["ok"]
    error = second["sources"][source]["error"]
    expected_words = {"down": "unreachable" if source != "lotus" else "ClientConnectorError",
                      "401": "401", "timeout": "timed out" if source != "lotus" else "TimeoutError",
                      "malformed": "not JSON"}[mode]
    assert expected_words in error, error
    for other, status in second["sources"].items():
        assert status["ok"] == (other != source), (other, status)
    after = {p: ranking.table.row(p) for p in ranking.table.providers}
    assert after == before  # nothing wiped, nothing changed
    for provider, metrics in ranking.table.meta.items():
        for name, (owner, updated) in metrics.items():
            if owner == source:
                assert updated == stamps[provider][name][1]  # its age keeps growing
            else:
                assert updated > stamps[provider][name][1]  # fresh from this round

    code, out, err = await cli(api, tmp_path, "provider", "show", "f01000")
    assert code == 0, err
    assert f"source {source} failing" in out and expected_words in out
    code, out, err = await cli(api, tmp_path, "provider", "show", "f01000", "--json")
    shown = json.loads(out)
    failing = [m for m in shown["metrics"] if m["source"] == source]
    assert failing and all(m["sourceError"] == error for m in failing)
    assert all(m["sourceError"] is None for m in shown["metrics"] if m["source"] != source)
