"""The one language for choosing storage providers, used by ranking lookups and replication.

Two spellings, one tree:
    string  provider in (f0100, f0101) && filrep.success_rate > 0.5 || !(deals.acceptance_rate < 0.9)
    list    [["filrep.success_rate", "gt", 0.5], ["filrep.reachable", true], ["id", "in", "f0111", "f0222"]]
A list is an AND of its entries; `[metric, value]` means `eq`. `provider` and `id` name the provider
id. A comparison with a metric the provider lacks is false; `!` negates whatever its operand gave.

Parsing checks every metric name and every value's type against the metrics the caller knows, so a
bad criteria is a `CriteriaError` (naming the position or the entry) before anything is evaluated,
and evaluation is a walk of the tree: no `eval`, no database query.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Union

MAX_BYTES = 4096
MAX_TERMS = 200
MAX_DEPTH = 32
PROVIDER_NAMES = ("provider", "id")

NUMBER, BOOL, STRING = "number", "bool", "string"
# The list form's operators and the string form's symbols for them.
OPERATORS = {"eq": "==", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "in": "in"}
_ORDERING = {">", ">=", "<", "<="}
# The JSON Schema of either form, for the APIs that take criteria (ranking lookups, replication).
SHAPE = {"anyOf": [{"type": "string", "minLength": 1},
                   {"type": "array", "minItems": 1, "items": {
                       "type": "array", "minItems": 2, "prefixItems": [{"type": "string"}]}}]}


class CriteriaError(ValueError):
    def __init__(self, message: str, detail: Any = None):
        super().__init__(message)
        self.message = message
        self.detail = detail


@dataclass(frozen=True)
class Compare:
    metric: str  # "provider" for the provider id
    op: str  # == != < <= > >=
    value: Any


@dataclass(frozen=True)
class In:
    metric: str
    values: tuple


@dataclass(frozen=True)
class Not:
    operand: "Node"


@dataclass(frozen=True)
class And:
    operands: tuple


@dataclass(frozen=True)
class Or:
    operands: tuple


Node = Union[Compare, In, Not, And, Or]


# --- checking names and values (both forms) ---

def _metric_type(name: str, known: Mapping[str, str], where: str) -> str:
    if name in PROVIDER_NAMES:
        return STRING
    if name not in known:
        raise CriteriaError(f"{where}: unknown metric {name!r}", {"known": sorted([*PROVIDER_NAMES, *known])})
    return known[name]


def _value_type(value: Any) -> str | None:
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, (int, float)):
        return NUMBER
    if isinstance(value, str):
        return STRING
    return None


def _check_value(metric: str, kind: str, op: str, value: Any, where: str) -> Any:
    given = _value_type(value)
    if given is None:
        raise CriteriaError(f"{where}: a value must be a number, a string, true or false, not {json.dumps(value)[:40]}")
    if isinstance(value, float) and not math.isfinite(value):
        raise CriteriaError(f"{where}: number out of range")
    if given != kind:
        raise CriteriaError(f"{where}: {metric} is a {kind}, compared with a {given} {json.dumps(value)[:40]}")
    if op in _ORDERING and kind != NUMBER:
        raise CriteriaError(f"{where}: {op} needs a number metric; {metric} is a {kind}")
    return value


def _leaf(metric: str, op: str, values: list, known: Mapping[str, str], where: str) -> Node:
    kind = _metric_type(metric, known, where)
    metric = "provider" if metric in PROVIDER_NAMES else metric
    if op == "in":
        if not values:
            raise CriteriaError(f"{where}: in needs at least one value")
        return In(metric, tuple(_check_value(metric, kind, "==", v, where) for v in values))
    return Compare(metric, op, _check_value(metric, kind, op, values[0], where))


def _count_terms(node: Node) -> int:
    if isinstance(node, In):
        return len(node.values)
    if isinstance(node, Compare):
        return 1
    if isinstance(node, Not):
        return _count_terms(node.operand)
    return sum(_count_terms(n) for n in node.operands)


# --- the string form ---

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<op>&&|\|\||==|!=|<=|>=|<|>|!|\(|\)|,)
  | (?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![A-Za-z0-9_.]))
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<word>[A-Za-z_][A-Za-z0-9_.\-]*)
""", re.VERBOSE)


def _tokens(text: str) -> list[tuple[str, Any, int]]:
    out = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise CriteriaError(f"position {position}: unexpected character {text[position]!r}",
                                {"position": position})
        kind = match.lastgroup
        raw = match.group()
        if kind == "number":
            value: Any = float(raw) if any(c in raw for c in ".eE") else int(raw)
            if isinstance(value, float) and not math.isfinite(value):
                raise CriteriaError(f"position {position}: number out of range", {"position": position})
            out.append(("value", value, position))
        elif kind == "string":
            out.append(("value", re.sub(r"\\(.)", r"\1", raw[1:-1]), position))
        elif kind == "word":
            out.append(("word", raw, position))
        elif kind == "op":
            out.append(("op", raw, position))
        position = match.end()
    out.append(("end", None, len(text)))
    return out


class _Parser:
    def __init__(self, text: str, known: Mapping[str, str]):
        self.tokens = _tokens(text)
        self.at = 0
        self.known = known
        self.depth = 0

    def peek(self) -> tuple[str, Any, int]:
        return self.tokens[self.at]

    def take(self) -> tuple[str, Any, int]:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def fail(self, expected: str) -> CriteriaError:
        kind, value, position = self.peek()
        found = "the end" if kind == "end" else repr(value)
        return CriteriaError(f"position {position}: expected {expected}, found {found}", {"position": position})

    def expect(self, symbol: str) -> None:
        if self.peek()[:2] != ("op", symbol):
            raise self.fail(repr(symbol))
        self.take()

    def parse(self) -> Node:
        node = self.disjunction()
        if self.peek()[0] != "end":
            raise self.fail("&&, || or the end")
        return node

    def nested(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise CriteriaError(f"position {self.peek()[2]}: nested more than {MAX_DEPTH} deep",
                                {"position": self.peek()[2]})

    def disjunction(self) -> Node:
        operands = [self.conjunction()]
        while self.peek()[:2] == ("op", "||"):
            self.take()
            operands.append(self.conjunction())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def conjunction(self) -> Node:
        operands = [self.unary()]
        while self.peek()[:2] == ("op", "&&"):
            self.take()
            operands.append(self.unary())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def unary(self) -> Node:
        kind, value, position = self.peek()
        if (kind, value) == ("op", "!"):
            self.take()
            self.nested()
            node = Not(self.unary())
            self.depth -= 1
            return node
        if (kind, value) == ("op", "("):
            self.take()
            self.nested()
            node = self.disjunction()
            self.expect(")")
            self.depth -= 1
            return node
        if kind == "word" and value not in ("true", "false", "in"):
            return self.comparison()
        raise self.fail("a metric name, ! or (")

    def value(self) -> Any:
        kind, value, _ = self.peek()
        if kind == "value":
            self.take()
            return value
        if kind == "word" and value != "in":
            # true/false, or a bare word such as a provider id (f01234) used as a string.
            self.take()
            return {"true": True, "false": False}.get(value, value)
        raise self.fail("a value")

    def comparison(self) -> Node:
        _, metric, position = self.take()
        where = f"position {position}"
        kind, op, _ = self.peek()
        if (kind, op) == ("word", "in"):
            self.take()
            self.expect("(")
            values = [self.value()]
            while self.peek()[:2] == ("op", ","):
                self.take()
                values.append(self.value())
            self.expect(")")
            return _leaf(metric, "in", values, self.known, where)
        if kind == "op" and op in ("==", "!=", "<", "<=", ">", ">="):
            self.take()
            return _leaf(metric, op, [self.value()], self.known, where)
        # A metric alone is a test of a true/false metric: `filrep.reachable`.
        if _metric_type(metric, self.known, where) == BOOL:
            return _leaf(metric, "==", [True], self.known, where)
        raise self.fail("an operator (== != < <= > >= in)")


# --- the list form ---

def _parse_list(entries: list, known: Mapping[str, str]) -> Node:
    if not entries:
        raise CriteriaError("criteria: an empty list")
    operands = []
    for i, entry in enumerate(entries):
        where = f"criteria[{i}]"
        if not isinstance(entry, list) or len(entry) < 2:
            raise CriteriaError(f"{where}: expected [metric, op, value...] or [metric, value]", {"entry": i})
        metric = entry[0]
        if not isinstance(metric, str):
            raise CriteriaError(f"{where}: the metric name must be a string", {"entry": i})
        if len(entry) == 2:
            op, values = "eq", entry[1:]
        else:
            op, values = entry[1], entry[2:]
            if not isinstance(op, str) or op not in OPERATORS:
                raise CriteriaError(f"{where}: unknown operator {json.dumps(op)[:40]}",
                                    {"entry": i, "operators": list(OPERATORS)})
            if op != "in" and len(values) != 1:
                raise CriteriaError(f"{where}: {op} takes one value, got {len(values)}", {"entry": i})
        try:
            operands.append(_leaf(metric, OPERATORS[op], values, known, where))
        except CriteriaError as exc:
            exc.detail = {"entry": i, **(exc.detail or {})}
            raise
    return operands[0] if len(operands) == 1 else And(tuple(operands))


def parse(criteria: Any, known: Mapping[str, str]) -> Node:
    """The tree of a string or list criteria; `known` maps every metric name to its type
    (number, bool or string)."""
    if isinstance(criteria, str):
        size = len(criteria.encode("utf-8", "surrogatepass"))
        if not criteria.strip():
            raise CriteriaError("criteria: an empty expression")
    elif isinstance(criteria, list):
        size = len(json.dumps(criteria).encode())
    else:
        raise CriteriaError("criteria must be a string expression or a list of [metric, op, value] entries")
    if size > MAX_BYTES:
        raise CriteriaError(f"criteria: {size} bytes, more than {MAX_BYTES}", {"maxBytes": MAX_BYTES})
    node = _Parser(criteria, known).parse() if isinstance(criteria, str) else _parse_list(criteria, known)
    terms = _count_terms(node)
    if terms > MAX_TERMS:
        raise CriteriaError(f"criteria: {terms} terms, more than {MAX_TERMS}", {"maxTerms": MAX_TERMS})
    return node


def metrics_of(node: Node) -> list[str]:
    """Metric names the tree reads, in order of appearance (without the provider id)."""
    out: dict[str, None] = {}

    def walk(n: Node) -> None:
        if isinstance(n, (Compare, In)):
            if n.metric != "provider":
                out[n.metric] = None
        elif isinstance(n, Not):
            walk(n.operand)
        else:
            for child in n.operands:
                walk(child)

    walk(node)
    return list(out)


_COMPARE = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def _same_type(a: Any, b: Any) -> bool:
    # True == 1 in Python: a stored bool never equals a number, nor the other way round.
    return isinstance(a, bool) == isinstance(b, bool) and (isinstance(a, str) == isinstance(b, str))


def matches(node: Node, row: Mapping[str, Any]) -> bool:
    """Whether one provider's metrics (`row["provider"]` is its id) satisfy the tree."""
    if isinstance(node, Compare):
        value = row.get(node.metric)
        return value is not None and _same_type(value, node.value) and _COMPARE[node.op](value, node.value)
    if isinstance(node, In):
        value = row.get(node.metric)
        return value is not None and any(_same_type(value, v) and value == v for v in node.values)
    if isinstance(node, Not):
        return not matches(node.operand, row)
    if isinstance(node, And):
        return all(matches(n, row) for n in node.operands)
    return any(matches(n, row) for n in node.operands)


def select(node: Node, columns: Mapping[str, Mapping[str, Any]], everyone: Iterable[str]) -> set[str]:
    """The providers satisfying the tree, computed a column at a time: `columns[metric][provider]`
    holds the values (the provider id column is implied). Same answers as `matches`, far faster
    over thousands of providers."""
    everyone = everyone if isinstance(everyone, (set, frozenset)) else set(everyone)
    if isinstance(node, (Compare, In)):
        if node.metric == "provider":
            column: Mapping[str, Any] = {p: p for p in everyone}
        else:
            column = columns.get(node.metric, {})
        if isinstance(node, In):
            wanted = node.values
            return {p for p, v in column.items() if p in everyone and any(_same_type(v, w) and v == w for w in wanted)}
        compare, target = _COMPARE[node.op], node.value
        return {p for p, v in column.items()
                if p in everyone and v is not None and _same_type(v, target) and compare(v, target)}
    if isinstance(node, Not):
        return set(everyone) - select(node.operand, columns, everyone)
    if isinstance(node, And):
        result = set(everyone)
        for n in node.operands:
            result = select(n, columns, result)
            if not result:
                break
        return result
    result = set()
    for n in node.operands:
        result |= select(n, columns, everyone)
    return result
