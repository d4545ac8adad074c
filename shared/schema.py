"""The shapes of requests and responses, declared once.

Each type checks a decoded JSON value (or a query/path string) and raises `InvalidParameter`
naming the field, with the same messages the services always gave; the same object describes
itself as JSON Schema 2020-12, the dialect of OpenAPI 3.1. A declared schema is never stricter than
its check (anything the schema refuses, the check refuses too), so a client generated from the
document never sends what the service accepts and the fuzzer's "schema-invalid data is rejected"
holds; rules no schema can say (a path that exists, a power of two) stay in the handlers.

Standard library only: measured in bench/schema.py against msgspec and pydantic, this costs no
import time and keeps the error texts exact.
"""
from __future__ import annotations

import re
from typing import Any, Callable

from shared.api import InvalidParameter
from shared.config import parse_size

_MISSING = object()
_INT_RE = re.compile(r"-?[0-9]+")


class Schema:
    """`check(field, value)` takes a value that is present and not null and returns it converted;
    `json()` is its JSON Schema. `name` makes it a component of the document ($ref)."""

    def __init__(self, description: str | None = None, *, default: Any = None, nullable: bool = False,
                 name: str | None = None, example: Any = _MISSING):
        self.description = description
        self.default = default
        self.nullable = nullable
        self.name = name
        self.example = example

    def check(self, field: str, value: Any) -> Any:
        return value

    def parse_text(self, field: str, raw: str) -> Any:
        """A query or path parameter: a string, converted by the types that are not strings."""
        return self.check(field, raw)

    def json(self) -> dict:
        return {}

    def document(self, components: dict, nullable: bool | None = None) -> dict:
        """The schema as it goes into the document: named ones once in `components`, then by $ref."""
        nullable = self.nullable if nullable is None else nullable
        if self.name is not None:
            if self.name not in components:
                components[self.name] = {}  # reserved first: a schema may refer to itself
                components[self.name] = self._annotated(self._json_in(components), nullable=False)
            schema = {"$ref": f"#/components/schemas/{self.name}"}
            return {"anyOf": [schema, {"type": "null"}]} if nullable else schema
        return self._annotated(self._json_in(components), nullable)

    def _json_in(self, components: dict) -> dict:
        return self.json()

    def _annotated(self, schema: dict, nullable: bool) -> dict:
        if nullable:
            if isinstance(schema.get("type"), str) and "enum" not in schema:
                schema = {**schema, "type": [schema["type"], "null"]}
            elif list(schema) == ["anyOf"]:
                schema = {"anyOf": [*schema["anyOf"], {"type": "null"}]}
            else:
                schema = {"anyOf": [schema, {"type": "null"}]}
        if self.description:
            schema["description"] = self.description
        if self.default is not None:
            schema["default"] = self.default
        if self.example is not _MISSING:
            schema["examples"] = [self.example]
        return schema


class Json(Schema):
    """Any JSON value (an error's detail, a record kept as stored)."""


class Str(Schema):
    """Text that can be stored and used as a name: no NUL, no lone surrogate, not blank unless
    `blank` (a query parameter whose empty value means "all")."""

    def __init__(self, description: str | None = None, *, enum: tuple[str, ...] | None = None,
                 pattern: str | None = None, max_length: int | None = None, blank: bool = False, **kwargs):
        super().__init__(description, **kwargs)
        self.enum = enum
        self.pattern = re.compile(pattern) if pattern else None
        self.max_length = max_length
        self.blank = blank

    def check(self, field: str, value: Any) -> str:
        if not isinstance(value, str) or (not self.blank and not value.strip()):
            raise InvalidParameter(f"{field} must be a non-empty string")
        # JSON can carry lone surrogates ("\udcff") and NULs; neither can be stored (BSON strings
        # are UTF-8) or used as a path, so they are bad input here rather than a 500 later.
        if "\x00" in value or not _is_utf8(value):
            raise InvalidParameter(f"{field} must be valid UTF-8 text without NUL characters")
        if self.enum is not None and value not in self.enum:
            raise InvalidParameter(f"{field} must be one of {', '.join(self.enum)}", value)
        if self.max_length is not None and len(value) > self.max_length:
            raise InvalidParameter(f"{field} must be at most {self.max_length} characters")
        if self.pattern is not None and not self.pattern.search(value):
            raise InvalidParameter(f"{field} is malformed", value)
        return value

    def json(self) -> dict:
        schema: dict = {"type": "string"}
        if self.enum is not None:
            schema["enum"] = list(self.enum)
        if not self.blank:
            schema["minLength"] = 1
        if self.max_length is not None:
            schema["maxLength"] = self.max_length
        if self.pattern is not None:
            schema["pattern"] = self.pattern.pattern
        return schema


class Int(Schema):
    def __init__(self, description: str | None = None, *, minimum: int | None = None,
                 maximum: int | None = None, **kwargs):
        super().__init__(description, **kwargs)
        self.minimum = minimum
        self.maximum = maximum

    def check(self, field: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidParameter(f"{field} must be an integer")
        return self._in_range(field, value, _shown(value))

    def _in_range(self, field: str, value: int, shown: Any) -> int:
        low, high = self.minimum, self.maximum
        if high is not None and value > high:
            raise InvalidParameter(f"{field} must be at most {high}", shown)
        if low is not None and value < low:
            if low == 0:
                raise InvalidParameter(f"{field} must not be negative", shown)
            if high is not None:
                raise InvalidParameter(f"{field} must be between {low} and {high}", shown)
            raise InvalidParameter(f"{field} must be at least {low}", shown)
        return value

    def parse_text(self, field: str, raw: str) -> int:
        # ASCII digits only: int() would also take "+5", " 5", "5_0" and digits of other scripts,
        # which a client's integer never looks like. Leading zeros are fine.
        if not _INT_RE.fullmatch(raw):
            raise InvalidParameter(f"{field} must be an integer", raw[:100])
        negative = raw.startswith("-")
        digits = raw.lstrip("-").lstrip("0") or "0"
        bound = self.minimum if negative else self.maximum
        if bound is not None and len(digits) > len(str(abs(bound))):
            # Out of range whatever the digits: said without converting a megabyte of them.
            return self._in_range(field, bound - 1 if negative else bound + 1, raw[:100])
        try:
            value = int(raw)
        except ValueError:  # past Python's digit limit, with no bound to compare with
            raise InvalidParameter(f"{field} must be an integer", raw[:100]) from None
        return self._in_range(field, value, raw[:100])

    def json(self) -> dict:
        schema: dict = {"type": "integer"}
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        return schema


class Num(Schema):
    """Any JSON number (a timestamp in Unix seconds, a rate)."""

    def check(self, field: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidParameter(f"{field} must be a number")
        return value

    def json(self) -> dict:
        return {"type": "number"}


class Bool(Schema):
    def check(self, field: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise InvalidParameter(f"{field} must be true or false")
        return value

    def json(self) -> dict:
        return {"type": "boolean"}


class Custom(Schema):
    """A value whose type check and conversion is a function `parse(field, value)` (a size given
    as 1024 or "32 GiB"); `schema` is what the document says of it."""

    def __init__(self, schema: dict, parse: Callable[[str, Any], Any], description: str | None = None, **kwargs):
        super().__init__(description, **kwargs)
        self.schema = schema
        self.parse = parse

    def check(self, field: str, value: Any) -> Any:
        return self.parse(field, value)

    def json(self) -> dict:
        return dict(self.schema)


class Size(Custom):
    """A size in bytes: a byte count or a string such as "32 GiB" (config.parse_size)."""

    def __init__(self, description: str | None = None, **kwargs):
        super().__init__({"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "minLength": 1}]},
                         _size, description, example="32 GiB", **kwargs)


def _size(field: str, value: Any) -> int:
    try:
        return parse_size(value)
    except ValueError as exc:
        raise InvalidParameter(f"{field}: {exc}") from None


def Text(description: str | None = None, **kwargs) -> Str:
    """A string in an answer: whatever was stored, the empty string included."""
    return Str(description, blank=True, **kwargs)


class Arr(Schema):
    def __init__(self, items: Schema, description: str | None = None, *, max_items: int | None = None, **kwargs):
        super().__init__(description, **kwargs)
        self.items = items
        self.max_items = max_items

    def check(self, field: str, value: Any) -> list:
        if not isinstance(value, list):
            raise InvalidParameter(f"{field} must be an array")
        if self.max_items is not None and len(value) > self.max_items:
            raise InvalidParameter(f"{field} must have at most {self.max_items} items", len(value))
        return [self.items.check(f"{field}[{i}]", item) for i, item in enumerate(value)]

    def _json_in(self, components: dict) -> dict:
        schema = {"type": "array", "items": self.items.document(components)}
        if self.max_items is not None:
            schema["maxItems"] = self.max_items
        return schema


class Map(Schema):
    """A JSON object whose keys are data (a state name) and whose values all have one shape."""

    def __init__(self, values: Schema, description: str | None = None, **kwargs):
        super().__init__(description, **kwargs)
        self.values = values

    def check(self, field: str, value: Any) -> dict:
        if not isinstance(value, dict):
            raise InvalidParameter(f"{field} must be a JSON object")
        return {key: self.values.check(_join(field, key), item) for key, item in value.items()}

    def _json_in(self, components: dict) -> dict:
        return {"type": "object", "additionalProperties": self.values.document(components)}


class Obj(Schema):
    """A JSON object with the declared fields. `closed` objects (request bodies) refuse unknown
    fields; responses stay open so that adding a field is not a breaking change. `extra` is the
    shape of the fields not declared, in an answer whose keys are data (metric names)."""

    def __init__(self, fields: dict[str, Schema], *, required: tuple[str, ...] = (), closed: bool = False,
                 extra: Schema | None = None, description: str | None = None, **kwargs):
        super().__init__(description, **kwargs)
        unknown = set(required) - set(fields)
        if unknown:
            raise ValueError(f"required fields not declared: {sorted(unknown)}")
        if closed and extra is not None:
            raise ValueError("a closed object has no extra fields")
        self.fields = fields
        self.required = required
        self.closed = closed
        self.extra = extra

    def check(self, field: str, value: Any) -> dict:
        if not isinstance(value, dict):
            raise InvalidParameter(f"{field} must be a JSON object" if field else "request body must be a JSON object")
        if self.closed:
            unknown = sorted(set(value) - set(self.fields))
            if unknown:
                raise InvalidParameter(f"unknown field: {_join(field, unknown[0])}", {"allowed": list(self.fields)})
        out = {}
        for key, schema in self.fields.items():
            name = _join(field, key)
            item = value.get(key)
            if item is None:  # absent or null: the same, as clients send either for "not given"
                if key in self.required:
                    raise InvalidParameter(f"missing field: {name}")
                out[key] = schema.default
            else:
                out[key] = schema.check(name, item)
        if self.extra is not None:
            out.update({key: None if item is None else self.extra.check(_join(field, key), item)
                        for key, item in value.items() if key not in self.fields})
        return out

    def _json_in(self, components: dict) -> dict:
        # A request's optional field may be sent as null (it means "not given"), so it says so.
        schema: dict = {"type": "object", "properties": {
            key: s.document(components, nullable=s.nullable or (self.closed and key not in self.required))
            for key, s in self.fields.items()}}
        if self.required:
            schema["required"] = list(self.required)
        if self.closed:
            schema["additionalProperties"] = False
        elif self.extra is not None:
            schema["additionalProperties"] = self.extra.document(components)
        return schema


def record(fields: dict[str, Schema], **kwargs) -> Obj:
    """An answer's object: every declared field is always there (null when it has no value)."""
    return Obj(fields, required=tuple(fields), **kwargs)


def _shown(value: int) -> int | str:
    """An integer as an error's detail: a huge one cut short."""
    text = str(value)
    return value if len(text) <= 100 else text[:100] + "..."


def _join(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
