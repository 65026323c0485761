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


def asked_to_json(asked: Asked) -> dict[str, Any]:
    """Every fact of the paste (none for a request for help), and a command's text with any secret cut out."""
    facts = None if asked.parsed is None else {name: _plain(getattr(asked.parsed, name)) for name in _NAMES}
    return {"facts": facts, "command": asked.command}


def asked_from_json(data: dict[str, Any]) -> Asked:
    """The `Asked` a job carries; ValueError for a payload this release did not write."""
    if not isinstance(data, dict) or set(data) != {"facts", "command"}:
        raise ValueError("not what a message asked")
    facts, command = data["facts"], data["command"]
    if facts is not None and (not isinstance(facts, dict) or set(facts) != _NAMES):
        raise ValueError("not a paste's facts")
    parsed = None if facts is None else ParsedInput(**{name: _typed(name, value) for name, value in facts.items()})
    return Asked(parsed, command if isinstance(command, str) else None)


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
