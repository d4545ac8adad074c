"""The declaration types: each refusal names the field, and the JSON Schema they publish is never
stricter than the check (what the schema refuses, the check refuses too)."""
from __future__ import annotations

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.dealmaking.schemas import PROPOSAL
from services.preparation.schemas import NEW_PREPARATION
from shared.api import InvalidParameter
from shared.operations import page
from shared.schema import Arr, Int, Obj, Size, Str, record


def refusal(schema, value, field="f") -> InvalidParameter:
    with pytest.raises(InvalidParameter) as caught:
        schema.check(field, value)
    return caught.value


@pytest.mark.parametrize("schema,value,message", [
    (Str(), "", "f must be a non-empty string"),
    (Str(), "  ", "f must be a non-empty string"),
    (Str(), 5, "f must be a non-empty string"),
    (Str(), "a\x00b", "f must be valid UTF-8 text without NUL characters"),
    (Str(), "a\udcff", "f must be valid UTF-8 text without NUL characters"),
    (Str(enum=("a", "b")), "c", "f must be one of a, b"),
    (Str(max_length=3), "abcd", "f must be at most 3 characters"),
    (Str(pattern="^[a-z]+$"), "A", "f is malformed"),
    (Int(), True, "f must be an integer"),
    (Int(), 1.5, "f must be an integer"),
    (Int(minimum=0), -1, "f must not be negative"),
    (Int(minimum=1, maximum=9), 10, "f must be at most 9"),
    (Int(minimum=1, maximum=9), 0, "f must be between 1 and 9"),
    (Int(minimum=1), 0, "f must be at least 1"),
    (Size(), "lots", "f: not a size: 'lots'"),
    (Size(), -1, "f: a size cannot be negative: -1"),
    (Arr(Int()), [1, "x"], "f[1] must be an integer"),
    (Obj({"a": Obj({"b": Int()}, required=("b",))}), {"a": {}}, "missing field: f.a.b"),
])
def test_refusals_name_the_field(schema, value, message):
    assert refusal(schema, value).message.startswith(message)


def test_a_body_refuses_unknown_fields_and_treats_null_as_absent():
    body = Obj({"a": Int(default=7), "b": Str()}, required=("b",), closed=True)
    assert body.check("", {"a": None, "b": "x"}) == {"a": 7, "b": "x"}
    error = refusal(body, {"b": "x", "zz": 1}, field="")
    assert error.message == "unknown field: zz" and error.detail == {"allowed": ["a", "b"]}
    assert refusal(body, {"b": None}, field="").message == "missing field: b"
    assert refusal(body, [1], field="").message == "request body must be a JSON object"


def test_query_integers_are_plain_digits():
    offset = page()["offset"]
    assert offset.parse_text("offset", "12") == offset.parse_text("offset", "0012") == 12
    assert offset.parse_text("offset", str(2**63 - 1)) == 2**63 - 1
    for raw in ("+5", " 5", "5 ", "5\n", "5_0", "1.0", "", "\u0661"):
        assert refusal_text(offset, raw).message == "offset must be an integer"
    assert refusal_text(offset, str(2**63)).message == "offset must be at most 9223372036854775807"
    huge = refusal_text(offset, "9" * 5000)  # refused by its length, before any conversion
    assert huge.message == "offset must be at most 9223372036854775807" and len(huge.detail) == 100
    assert refusal_text(offset, "-" + "9" * 5000).message == "offset must not be negative"
    assert refusal_text(Int(), "9" * 5000).message == "offset must be an integer"  # no bound: Python's limit


def refusal_text(schema, raw):
    with pytest.raises(InvalidParameter) as caught:
        schema.parse_text("offset", raw)
    return caught.value


def test_named_schemas_become_components_once():
    item = record({"x": Int()}, name="Item")
    components: dict = {}
    document = Obj({"one": item, "many": Arr(item)}).document(components)
    assert document["properties"]["one"] == {"$ref": "#/components/schemas/Item"}
    assert document["properties"]["many"]["items"] == {"$ref": "#/components/schemas/Item"}
    assert components["Item"]["required"] == ["x"]


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
                           max_leaves=8)


@pytest.mark.parametrize("body", [NEW_PREPARATION, PROPOSAL], ids=["preparation", "deal"])
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_what_the_schema_refuses_the_check_refuses(body, data):
    keys = st.sampled_from([*body.fields, "other"])
    value = data.draw(st.dictionaries(keys, json_values | st.sampled_from(["32 GiB", "", " ", "0", 1024]), max_size=8))
    components: dict = {}
    body.document(components)  # a named body: its schema goes to the components (it refers to no other)
    if not jsonschema.Draft202012Validator(components[body.name]).is_valid(value):
        with pytest.raises(InvalidParameter):
            body.check("", value)
