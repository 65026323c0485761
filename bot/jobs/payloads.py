"""What a job carries, as plain JSON: the facts of a paste (`Asked`), never its text.

SAQ stores a job's keyword arguments in Redis as JSON. The parser has already cut every secret value
out before it read these facts, so a paste with a secret in it leaves nothing of the secret in the queue.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Any

from bot.domain import ParsedInput
from handlers.conversation import Asked

_TUPLES = frozenset(f.name for f in fields(ParsedInput) if isinstance(f.default, tuple))
_TIMES = frozenset({"timestamp"})
_NAMES = frozenset(f.name for f in fields(ParsedInput))


def asked_to_json(asked: Asked) -> dict[str, Any] | None:
    """None for a request for help; else every fact of the paste."""
    if asked.parsed is None:
        return None
    return {name: _plain(getattr(asked.parsed, name)) for name in _NAMES}


def asked_from_json(data: dict[str, Any] | None) -> Asked:
    """The `Asked` a job carries; ValueError for a payload this release did not write."""
    if data is None:
        return Asked(None)
    if not isinstance(data, dict) or set(data) != _NAMES:
        raise ValueError("not a paste's facts")
    return Asked(ParsedInput(**{name: _typed(name, value) for name, value in data.items()}))


def _typed(name: str, value: Any) -> Any:
    if name in _TUPLES:
        return tuple(value)
    if name in _TIMES and value:
        return datetime.fromisoformat(value)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value
