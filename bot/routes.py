"""The routes file (`SECRETBOT_ROUTES`): which channels receive which apps' expiry warnings.

```toml
[defaults]                      # every app that no route matches
slack_channel = "C0123ABCD"
teams_channel = "19:abc@thread.tacv2"
thresholds = [30, 14, 7, 1]     # days before the end date; on expiry is always added

[[route]]                       # any of app_id / name / tag (a string or a list of them)
name = "payments-*"             # display-name glob, case-insensitive
tag = "team:payments"           # an Entra app tag
slack_channel = "C0PAYMENTS"
thresholds = [60, 30, 7]        # optional: the defaults' thresholds otherwise
```

Any mistake stops the server at start: `RoutesError` names the file, the line and the reason
(tomllib's own position for a syntax error; the line of the offending table or key otherwise).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bot.expiry import DEFAULT_THRESHOLDS, AppMatcher, Destination, MatchBy, Platform, Route, Routes, checked_thresholds

DESTINATION_KEYS = {"slack_channel": Platform.SLACK, "teams_channel": Platform.TEAMS}
MATCHER_KEYS = {"app_id": MatchBy.APP_ID, "name": MatchBy.NAME, "tag": MatchBy.TAG}
DEFAULTS_KEYS = (*DESTINATION_KEYS, "thresholds")
ROUTE_KEYS = (*MATCHER_KEYS, *DESTINATION_KEYS, "thresholds")
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TOML_POSITION = re.compile(r"\(at line (\d+), column \d+\)")


class RoutesError(ValueError):
    """The routes file cannot be used; the message says where and why, and is safe to print."""

    def __init__(self, source: str, line: int | None, reason: str) -> None:
        where = f"{source}, line {line}" if line else source
        super().__init__(f"routes file {where}: {reason}")
        self.source = source
        self.line = line
        self.reason = reason


def load_routes(path: str | None) -> Routes:
    """The routes at `path`; no path means no file: no routes, no defaults, the default thresholds."""
    if not path:
        return Routes()
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else type(error).__name__
        raise RoutesError(path, None, f"cannot be read ({reason})") from None
    return parse_routes(text, path)


def parse_routes(text: str, source: str = "<routes>") -> Routes:
    import tomllib  # here: every command reads the settings, and most have no routes file

    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        position = _TOML_POSITION.search(message)
        reason = "not valid TOML: " + _TOML_POSITION.sub("", message).strip()
        raise RoutesError(source, int(position.group(1)) if position else None, reason) from None
    return _Reader(text, source).routes(document)


class _Reader:
    def __init__(self, text: str, source: str) -> None:
        self.lines = text.splitlines()
        self.source = source

    def routes(self, document: dict[str, Any]) -> Routes:
        for key in document:
            if key not in ("defaults", "route"):
                raise self._error(
                    self._line_of_key(None, key), f"unknown key {key!r}: expected [defaults] and [[route]] tables"
                )
        defaults = document.get("defaults", {})
        if not isinstance(defaults, dict):
            raise self._error(self._line_of_key(None, "defaults"), "defaults must be a table: [defaults]")
        self._known_keys(defaults, DEFAULTS_KEYS, "defaults", self._table_line("defaults"))
        thresholds = self._thresholds(defaults, DEFAULT_THRESHOLDS, self._table_line("defaults"))
        routes = document.get("route", [])
        if not isinstance(routes, list) or not all(isinstance(route, dict) for route in routes):
            raise self._error(self._line_of_key(None, "route"), "route must be a list of tables: [[route]]")
        return Routes(
            defaults=self._destinations(defaults, self._table_line("defaults")),
            thresholds=thresholds,
            routes=tuple(self._route(number, route, thresholds) for number, route in enumerate(routes)),
            source=self.source,
        )

    def _route(self, number: int, table: dict[str, Any], default_thresholds: tuple[int, ...]) -> Route:
        line = self._table_line("route", number)
        self._known_keys(table, ROUTE_KEYS, "route", line)
        matchers = tuple(
            self._matcher(by, value, line)
            for key, by in MATCHER_KEYS.items()
            for value in self._strings(table, key, line)
        )
        if not matchers:
            raise self._error(line, "this route matches nothing: give it app_id, name or tag")
        destinations = self._destinations(table, line)
        if not destinations:
            raise self._error(line, "this route sends nowhere: give it slack_channel or teams_channel")
        return Route(matchers, destinations, self._thresholds(table, default_thresholds, line), line)

    def _matcher(self, by: MatchBy, value: str, table_line: int) -> AppMatcher:
        pattern = value.strip().lower()
        line = self._line_in_table(table_line, by.value)
        if not pattern:
            raise self._error(line, f"{by.value} is empty")
        if by is MatchBy.APP_ID and not _GUID.fullmatch(pattern):
            raise self._error(line, f"app_id {value!r} is not an application (client) id")
        return AppMatcher(by, pattern)

    def _strings(self, table: dict[str, Any], key: str, table_line: int) -> list[str]:
        value = table.get(key)
        if value is None:
            return []
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(item, str) for item in values):
            raise self._error(self._line_in_table(table_line, key), f"{key} must be a string or a list of strings")
        return values

    def _destinations(self, table: dict[str, Any], table_line: int) -> tuple[Destination, ...]:
        found = []
        for key, platform in DESTINATION_KEYS.items():
            if key not in table:
                continue
            value = table[key]
            if not isinstance(value, str) or not value.strip():
                raise self._error(
                    self._line_in_table(table_line, key), f"{key} must be a channel id (a non-empty string)"
                )
            found.append(Destination(platform, value.strip()))
        return tuple(found)

    def _thresholds(self, table: dict[str, Any], default: tuple[int, ...], table_line: int) -> tuple[int, ...]:
        if "thresholds" not in table:
            return default
        try:
            return checked_thresholds(table["thresholds"])
        except ValueError as error:
            raise self._error(self._line_in_table(table_line, "thresholds"), str(error)) from None

    def _known_keys(self, table: dict[str, Any], known: tuple[str, ...], name: str, table_line: int) -> None:
        for key in table:
            if key not in known:
                line = self._line_in_table(table_line, key)
                raise self._error(line, f"unknown key {key!r} in [{name}]: expected one of {', '.join(known)}")

    # --- where in the text: tomllib gives values, not positions ----------------------------------

    def _table_line(self, name: str, number: int = 0) -> int:
        """1-based line of `[name]`, or of the number-th `[[name]]`; 0 when the table is not written out."""
        header = re.compile(rf"\s*\[\[?\s*{re.escape(name)}\s*\]\]?\s*(#.*)?$")
        seen = -1
        for index, line in enumerate(self.lines):
            if header.match(line):
                seen += 1
                if seen == number:
                    return index + 1
        return 0

    def _line_in_table(self, table_line: int, key: str) -> int:
        """The line that sets `key` inside the table starting at `table_line` (the table's line if none)."""
        assignment = re.compile(rf"\s*[\"']?{re.escape(key)}[\"']?\s*=")
        for index in range(table_line, len(self.lines)):  # table_line is 1-based: this starts below it
            line = self.lines[index]
            if line.lstrip().startswith("["):
                break
            if assignment.match(line):
                return index + 1
        return table_line

    def _line_of_key(self, _table: None, key: str) -> int:
        """A top-level key: written as `key = …` before any table, or as a `[key]` header."""
        found = self._line_in_table(0, key)
        return found or self._table_line(key)

    def _error(self, line: int, reason: str) -> RoutesError:
        return RoutesError(self.source, line or None, reason)
