"""A tiny OData `$filter` parser and evaluator for exactly the clauses the bot sends.

Grammar (linear time: one regex-driven tokenizer pass, recursive descent without backtracking):

    filter    := primary ("and" primary)*
    primary   := "(" filter ")" | path op literal | path "/any(" var ":" var ("/" name)* op literal ")"
               | "startswith(" path "," 'string' ")"
    op        := "eq" | "ge" | "le"
    literal   := 'string' | number | 2026-01-01T00:00:00Z | true | false | null

Each collection passes the clauses it supports as signatures, e.g. `"appId eq"`,
`"status/errorCode eq"`, `"signInEventTypes/any eq"`, `"targetResources/any/id eq"`,
`"activityDisplayName startswith"`, each with the
literal kind it takes. Anything else is a `QueryError`, which the server answers with a 400 as Graph
does. `or`, `not`, `ne` and functions other than `startswith` are deliberately absent: the bot does not
use them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from bot.fakegraph.values import JsonObject, parse_datetime

MAX_FILTER_LENGTH = 2048
MAX_NESTING = 16  # parentheses; bounds the recursion

Literal = str | int | float | bool | datetime | None
_Ordered = TypeVar("_Ordered", datetime, float)

_TOKEN = re.compile(
    r"(?P<ws>\s+)"
    r"|(?P<string>'(?:[^']|'')*')"
    r"|(?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?(?:Z|[+-]\d{2}:\d{2}))"
    r"|(?P<number>-?\d+(?:\.\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<punct>[()/:,])"
)
_OPERATORS = frozenset(("eq", "ge", "le"))


class QueryError(ValueError):
    """A query option Graph (or this fake) would refuse: becomes a 400 with `code`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class _Compare:
    path: tuple[str, ...]
    op: str
    value: Literal

    @property
    def signature(self) -> str:
        return f"{'/'.join(self.path)} {self.op}"

    def matches(self, obj: JsonObject) -> bool:
        return _compare(_resolve(obj, self.path), self.op, self.value)


@dataclass(frozen=True)
class _Any:
    collection: tuple[str, ...]
    inner: tuple[str, ...]  # the path after the lambda variable: () for `t eq …`, ("id",) for `t/id eq …`
    op: str
    value: Literal

    @property
    def signature(self) -> str:
        return "/".join((*self.collection, "any", *self.inner)) + f" {self.op}"

    def matches(self, obj: JsonObject) -> bool:
        items = _resolve(obj, self.collection)
        if not isinstance(items, list):
            return False
        return any(_compare(_resolve(item, self.inner), self.op, self.value) for item in items)


@dataclass(frozen=True)
class Filter:
    """A parsed `$filter`: a conjunction of supported clauses."""

    clauses: tuple[_Compare | _Any, ...]

    @property
    def signatures(self) -> frozenset[str]:
        return frozenset(clause.signature for clause in self.clauses)

    def matches(self, obj: JsonObject) -> bool:
        return all(clause.matches(obj) for clause in self.clauses)


def parse_filter(
    text: str, supported: Mapping[str, str], *, resource: str, unsupported_code: str = "BadRequest"
) -> Filter:
    """Parse `text`; `supported` maps clause signatures to literal kinds ("string", "number", "datetime").

    `resource` names the entity in messages (e.g. "Application"); `unsupported_code` is the error
    code the owning Graph service uses for a valid clause it cannot filter on.
    """
    if len(text) > MAX_FILTER_LENGTH:
        raise QueryError("BadRequest", f"Invalid filter clause: longer than {MAX_FILTER_LENGTH} characters.")
    parser = _Parser(_tokenize(text))
    clauses = parser.parse()
    for clause in clauses:
        kind = supported.get(clause.signature)
        if kind is None:
            raise QueryError(
                unsupported_code,
                f"Unsupported or invalid query filter clause specified for property "
                f"'{'/'.join(clause.path if isinstance(clause, _Compare) else clause.collection)}' "
                f"of resource '{resource}'.",
            )
        if _kind(clause.value) != kind:
            raise QueryError(
                "BadRequest",
                f"Invalid filter clause: '{clause.signature}' takes a {kind} literal, not a {_kind(clause.value)}.",
            )
    return Filter(tuple(clauses))


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise QueryError("BadRequest", f"Invalid filter clause: unexpected character at position {position}.")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append((kind, match.group()))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self._tokens = tokens
        self._index = 0

    def parse(self) -> list[_Compare | _Any]:
        clauses = self._conjunction(0)
        if self._index < len(self._tokens):
            word = self._tokens[self._index][1]
            raise QueryError("BadRequest", f"Invalid filter clause: unexpected '{word}' (only 'and' is supported).")
        return clauses

    def _conjunction(self, depth: int) -> list[_Compare | _Any]:
        clauses = self._primary(depth)
        while self._peek() == ("name", "and"):
            self._index += 1
            clauses += self._primary(depth)
        return clauses

    def _primary(self, depth: int) -> list[_Compare | _Any]:
        if self._peek() == ("punct", "("):
            if depth >= MAX_NESTING:
                raise QueryError("BadRequest", "Invalid filter clause: parentheses nested too deeply.")
            self._index += 1
            clauses = self._conjunction(depth + 1)
            self._expect("punct", ")")
            return clauses
        return [self._predicate()]

    def _predicate(self) -> _Compare | _Any:
        if self._peek() == ("name", "startswith") and self._peek(1) == ("punct", "("):
            return self._startswith()
        path = [self._expect("name")]
        while self._peek() == ("punct", "/"):
            self._index += 1
            segment = self._expect("name")
            if segment == "any" and self._peek() == ("punct", "("):
                return self._lambda(tuple(path))
            path.append(segment)
        op = self._operator()
        return _Compare(tuple(path), op, self._literal())

    def _startswith(self) -> _Compare:
        """`startswith(activityDisplayName, 'Update application')`: a property path and a string."""
        self._index += 2
        path = [self._expect("name")]
        while self._peek() == ("punct", "/"):
            self._index += 1
            path.append(self._expect("name"))
        self._expect("punct", ",")
        value = self._literal()
        self._expect("punct", ")")
        return _Compare(tuple(path), "startswith", value)

    def _lambda(self, collection: tuple[str, ...]) -> _Any:
        self._expect("punct", "(")
        variable = self._expect("name")
        self._expect("punct", ":")
        if self._expect("name") != variable:
            raise QueryError("BadRequest", f"Invalid filter clause: the lambda must test '{variable}'.")
        inner = []
        while self._peek() == ("punct", "/"):
            self._index += 1
            inner.append(self._expect("name"))
        op = self._operator()
        value = self._literal()
        self._expect("punct", ")")
        return _Any(collection, tuple(inner), op, value)

    def _operator(self) -> str:
        op = self._expect("name")
        if op not in _OPERATORS:
            raise QueryError("BadRequest", f"Invalid filter clause: operator '{op}' is not supported.")
        return op

    def _literal(self) -> Literal:
        token = self._next("a literal")
        kind, text = token
        if kind == "string":
            return text[1:-1].replace("''", "'")
        if kind == "datetime":
            return parse_datetime(text)
        if kind == "number":
            return float(text) if "." in text else int(text)
        if token == ("name", "true") or token == ("name", "false"):
            return text == "true"
        if token == ("name", "null"):
            return None
        raise QueryError("BadRequest", f"Invalid filter clause: expected a literal, found '{text}'.")

    def _peek(self, ahead: int = 0) -> tuple[str, str] | None:
        index = self._index + ahead
        return self._tokens[index] if index < len(self._tokens) else None

    def _next(self, wanted: str) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise QueryError("BadRequest", f"Invalid filter clause: expected {wanted}, found the end.")
        self._index += 1
        return token

    def _expect(self, kind: str, text: str | None = None) -> str:
        found_kind, found_text = self._next(repr(text) if text else f"a {kind}")
        if found_kind != kind or (text is not None and found_text != text):
            raise QueryError("BadRequest", f"Invalid filter clause: expected {text or kind}, found '{found_text}'.")
        return found_text


def _kind(value: Literal) -> str:
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, bool) or value is None:
        return "boolean" if isinstance(value, bool) else "null"
    if isinstance(value, int | float):
        return "number"
    return "string"


def _resolve(obj: object, path: tuple[str, ...]) -> object:
    for name in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(name)
    return obj


def _compare(actual: object, op: str, expected: Literal) -> bool:
    if isinstance(expected, datetime):
        moment = parse_datetime(actual)
        return moment is not None and _ordered(moment, op, expected)
    if isinstance(expected, str):
        # Graph compares these ids and names case-insensitively.
        if not isinstance(actual, str):
            return False
        if op == "startswith":
            return actual.casefold().startswith(expected.casefold())
        return op == "eq" and actual.casefold() == expected.casefold()
    if isinstance(expected, int | float) and not isinstance(expected, bool):
        if isinstance(actual, bool) or not isinstance(actual, int | float):
            return False
        return _ordered(actual, op, expected)
    return op == "eq" and actual == expected


def _ordered(actual: _Ordered, op: str, expected: _Ordered) -> bool:
    if op == "eq":
        return actual == expected
    if op == "ge":
        return actual >= expected
    return actual <= expected
