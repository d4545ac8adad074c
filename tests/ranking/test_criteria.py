"""The criteria language: string and list forms give one tree; bad criteria are 400s that never
reach the database."""
from __future__ import annotations

import random

import pytest

from services.ranking.ranking import Ranking
from services.ranking.routes import RANKING, routes
from shared import criteria, database
from shared.api import create_app
from tests.commands import Commands

KNOWN = {"filrep.success_rate": "number", "filrep.reachable": "bool", "filrep.region": "string",
         "deals.acceptance_rate": "number"}


def test_string_and_list_forms_parse_to_one_tree():
    text = 'filrep.success_rate > 0.5 && filrep.reachable == true && id in ("f0111", f0222)'
    listed = [["filrep.success_rate", "gt", 0.5], ["filrep.reachable", True], ["id", "in", "f0111", "f0222"]]
    assert criteria.parse(text, KNOWN) == criteria.parse(listed, KNOWN)
    assert criteria.parse("filrep.reachable && provider == 'f01'", KNOWN) == criteria.parse(
        [["filrep.reachable", "eq", True], ["provider", "eq", "f01"]], KNOWN)


def test_precedence_negation_and_missing_metrics():
    tree = criteria.parse("provider in (f0100, f0101) && filrep.success_rate > 0.5 || deals.acceptance_rate >= 0.9",
                          KNOWN)
    assert isinstance(tree, criteria.Or) and isinstance(tree.operands[0], criteria.And)
    rows = [{"provider": "f0100", "filrep.success_rate": 0.6}, {"provider": "f0100", "filrep.success_rate": 0.4},
            {"provider": "f0999", "deals.acceptance_rate": 0.95}, {"provider": "f0999"}]
    assert [criteria.matches(tree, r) for r in rows] == [True, False, True, False]
    # A missing metric makes its comparison false, and ! negates that result.
    assert criteria.matches(criteria.parse("!(filrep.success_rate > 0.5)", KNOWN), {"provider": "f01"})
    assert not criteria.matches(criteria.parse("filrep.success_rate != 0.5", KNOWN), {"provider": "f01"})
    # A stored bool never equals a number.
    assert not criteria.matches(criteria.parse("deals.acceptance_rate == 1", KNOWN),
                                {"provider": "f01", "deals.acceptance_rate": True})


def test_select_agrees_with_matches_on_random_tables():
    rng = random.Random(7)
    texts = ["filrep.success_rate > 0.5 && !filrep.reachable", "filrep.region in ('EU', 'US') || deals.acceptance_rate <= 0.3",
             "!(provider == f05 || filrep.success_rate >= 0.2) && deals.acceptance_rate != 0.5",
             "(filrep.reachable == false || filrep.region == 'EU') && (provider != f01)"]
    rows = {}
    for i in range(300):
        row = {"provider": f"f0{i}"}
        if rng.random() < 0.8:
            row["filrep.success_rate"] = rng.choice([0.1, 0.2, 0.5, 0.7, 1])
        if rng.random() < 0.8:
            row["filrep.reachable"] = rng.random() < 0.5
        if rng.random() < 0.8:
            row["filrep.region"] = rng.choice(["EU", "US", "AS"])
        if rng.random() < 0.8:
            row["deals.acceptance_rate"] = rng.choice([0.3, 0.5, 0.9])
        rows[row["provider"]] = row
    columns: dict = {}
    for p, row in rows.items():
        for m, v in row.items():
            if m != "provider":
                columns.setdefault(m, {})[p] = v
    for text in texts:
        tree = criteria.parse(text, KNOWN)
        expected = {p for p, row in rows.items() if criteria.matches(tree, row)}
        assert criteria.select(tree, columns, set(rows)) == expected
        assert 0 < len(expected) < len(rows), text  # the test can tell a wrong answer


def test_errors_name_the_position_or_entry_and_the_known_metrics():
    with pytest.raises(criteria.CriteriaError) as caught:
        criteria.parse("filrep.success_rate > 0.5 && nope.metric < 3", KNOWN)
    assert caught.value.message.startswith("position 29: unknown metric 'nope.metric'")
    assert "filrep.region" in caught.value.detail["known"]
    with pytest.raises(criteria.CriteriaError) as caught:
        criteria.parse([["filrep.reachable", True], ["filrep.success_rate", "bigger", 1]], KNOWN)
    assert caught.value.message.startswith("criteria[1]: unknown operator") and caught.value.detail["entry"] == 1
    with pytest.raises(criteria.CriteriaError) as caught:
        criteria.parse("filrep.success_rate > 0.5 &&", KNOWN)
    assert caught.value.detail == {"position": 28}


BIG = " || ".join(f"filrep.success_rate > {i}" for i in range(201))
BAD_CRITERIA = [
    # syntax
    "", "   ", "&&", "filrep.success_rate >", "filrep.success_rate > 0.5 &&", "|| filrep.reachable",
    "(filrep.reachable", "filrep.reachable)", "filrep.success_rate > 0.5 filrep.reachable",
    "filrep.success_rate >> 1", "filrep.success_rate = 1", "filrep.success_rate > 1 & filrep.reachable",
    "filrep.success_rate > 1 | filrep.reachable", "provider in f01", "provider in ()", "provider in (f01,",
    "provider in (f01 f02)", "filrep.region == 'EU", 'filrep.region == "EU', "filrep.success_rate > 1abc",
    "filrep.success_rate > 0x10", "filrep.success_rate > 1e999", "!",
    "()", "true", "in (f01)", "filrep.success_rate", "provider == $x", "filrep.success_rate > 1;",
    # unknown operators and metrics
    [["filrep.success_rate", "bigger", 1]], [["filrep.success_rate", "GT", 1]], [["filrep.success_rate", 5, 1]],
    "nope > 1", "filrep.nope == 1", [["nope", 1]], [["filrep", "eq", 1]],
    # wrong types
    "filrep.success_rate > 'x'", "filrep.reachable == 1", "filrep.region > 3", "filrep.reachable > true",
    "filrep.region == true", "provider == 5", [["filrep.success_rate", "gt", "0.5"]],
    [["filrep.reachable", "eq", 1]], [["filrep.success_rate", "gt", None]], [["filrep.success_rate", "gt", [1]]],
    [["filrep.success_rate", "gt", {"a": 1}]], [["filrep.success_rate", "gt", 1, 2]], [["filrep.success_rate"]],
    [[1, "eq", 1]], ["filrep.reachable"], [], {"filrep.reachable": True}, 42, True,
    # oversized and nesting
    "filrep.reachable && " * 300 + "filrep.reachable", BIG, "(" * 40 + "filrep.reachable" + ")" * 40,
    "!" * 40 + "filrep.reachable", [["id", "in", *[f"f0{i}" for i in range(250)]]],
]


def test_there_are_sixty_bad_criteria():
    assert len(BAD_CRITERIA) == 60


async def test_bad_criteria_get_400_and_never_reach_the_database(config, db_url, session, serve_app):
    listener = Commands()
    client = database.client(db_url, event_listeners=[listener])
    db = client[database.database_name(db_url)]
    try:
        ranking = Ranking(config, db, session)
        await ranking.load()
        app = create_app(config, db, routes)
        app[RANKING] = ranking
        api = await serve_app(app)
        good = await api.post("/ranking/lookup", json={"criteria": "filrep.reachable"})
        assert good.status == 200
        listener.names.clear()
        for bad in BAD_CRITERIA:
            response = await api.post("/ranking/lookup", json={"criteria": bad})
            body = await response.json()
            assert response.status == 400, (bad, body)
            assert isinstance(body["error"], str) and body["error"] and "detail" in body, bad
        assert listener.names == []
    finally:
        await client.close()


async def test_lookup_checks_sort_fields_and_limit(api):
    for body in ({"sort": "nope"}, {"fields": ["nope"]}, {"fields": "filrep.score"}, {"limit": 0},
                 {"limit": 10**30}, {"limit": "5"}, {"other": 1}, {"sort": ""}):
        response = await api.post("/ranking/lookup", json=body)
        assert response.status == 400, body
    response = await api.post("/ranking/lookup", data=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status == 400


from hypothesis import given, settings, strategies as st  # noqa: E402

_PIECES = st.sampled_from(["filrep.success_rate", "filrep.reachable", "filrep.region", "provider", "id", "nope",
                           "&&", "||", "!", "(", ")", ",", "in", "==", "!=", "<", "<=", ">", ">=", "0.5", "-1",
                           "1e400", "'EU'", '"x\\"y"', "true", "false", "f01", " ", "\udcff", "\x00", "9" * 50])


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.lists(_PIECES, max_size=30).map(" ".join), st.text(max_size=200)))
def test_any_string_parses_or_is_a_criteria_error(text):
    try:
        tree = criteria.parse(text, KNOWN)
    except criteria.CriteriaError as exc:
        assert exc.message
        return
    criteria.matches(tree, {"provider": "f01", "filrep.success_rate": 0.7, "filrep.region": "EU"})


_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5),
                    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(), max_size=1))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.one_of(st.sampled_from(["filrep.success_rate", "id", "in", "gt", "eq", "bigger"]),
                                   _VALUES), max_size=4), max_size=4))
def test_any_list_parses_or_is_a_criteria_error(entries):
    try:
        criteria.parse(entries, KNOWN)
    except criteria.CriteriaError as exc:
        assert exc.message
