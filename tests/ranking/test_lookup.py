"""Lookups as a user runs them: the CLI's string criteria and the same criteria as a list over
HTTP choose the same providers; sort, fields and limit shape the answer."""
from __future__ import annotations

import json

from .test_failing_sources import cli


async def test_cli_string_and_http_list_criteria_agree(ranking, api, tmp_path):
    await ranking.refresh()
    code, out, err = await cli(api, tmp_path, "provider", "lookup", "--criteria",
                               "provider in (f01000, f01001) && deals.acceptance_rate >= 0.5", "--json")
    assert code == 0, err
    by_cli = json.loads(out)
    response = await api.post("/ranking/lookup", json={"criteria": [
        ["provider", "in", "f01000", "f01001"], ["deals.acceptance_rate", "gte", 0.5]]})
    by_http = await response.json()
    assert by_cli == by_http == [{"id": "f01000", "deals.acceptance_rate": 0.75}]
    # --id narrows a criteria, and the table form prints the same rows.
    code, out, err = await cli(api, tmp_path, "provider", "lookup", "--id", "f01000,f01001,f01002",
                               "--criteria", "deals.acceptance_rate >= 0.5", "--sort", "-deals.acceptance_rate",
                               "--json")
    assert [r["id"] for r in json.loads(out)] == ["f01002", "f01000"]
    code, out, err = await cli(api, tmp_path, "provider", "lookup", "--criteria", "deals.acceptance_rate >= 0.5")
    assert code == 0 and "f01000" in out and "f01001" not in out and "deals.acceptance_rate" in out
    code, out, err = await cli(api, tmp_path, "provider", "lookup", "--criteria", "deals.acceptance_rate >>= 0.5")
    assert code == 1 and out == "" and err.startswith("error: HTTP 400: position 23") and "\n" == err[-1:]
    assert err.count("\n") == 1
    code, out, err = await cli(api, tmp_path, "provider", "lookup", "--id", "f01000,../x")
    assert code == 2 and "not a provider id" in err


async def test_sort_fields_and_limit(ranking, api):
    await ranking.refresh()
    answer = await (await api.post("/ranking/lookup", json={
        "criteria": "filrep.uptime > 0", "sort": "-filrep.score", "fields": ["filrep.region"], "limit": 2})).json()
    assert answer == [{"id": "f01000", "filrep.uptime": 0.98, "filrep.score": 97, "filrep.region": "North America"},
                      {"id": "f01003", "filrep.uptime": 1, "filrep.score": 50, "filrep.region": "Asia"}]
    # Providers lacking the sort metric come last, whichever the direction.
    everyone = await (await api.post("/ranking/lookup", json={"sort": "datacapstats.clients"})).json()
    assert [r["id"] for r in everyone] == ["f01002", "f01000", "f01001", "f01003"]


async def test_refresh_and_show_from_the_cli(ranking, api, tmp_path):
    code, out, err = await cli(api, tmp_path, "provider", "refresh")
    assert code == 0, err
    assert "filrep" in out and "values changed" in out
    code, out, err = await cli(api, tmp_path, "provider", "show", "f01001")
    assert code == 0 and "deals.rejected" in out and "filrep" in out
    code, out, err = await cli(api, tmp_path, "provider", "show", "f09999")
    assert code == 1 and err.startswith("error: HTTP 404")
