"""Value helpers shared by the snapshot loader and the query evaluator: GUIDs and Graph datetimes."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

# A Graph object as decoded from JSON. Values stay `Any` because Graph objects are open-ended.
JsonObject = dict[str, Any]

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def is_guid(value: object) -> bool:
    """True for the canonical 8-4-4-4-12 hex form Graph uses for ids, appIds and keyIds."""
    return isinstance(value, str) and _GUID.fullmatch(value) is not None


def parse_datetime(value: object) -> datetime | None:
    """Read a Graph `DateTimeOffset` (ISO 8601, up to 7 fractional digits) as an aware UTC datetime.

    Graph always sends UTC; a value without an offset is read as UTC too. Anything else is None.
    """
    if not isinstance(value, str) or len(value) < 10 or not value[:4].isdigit():
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def describe(value: object) -> str:
    """A short single-line rendering of a JSON value for error messages."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return repr(text.replace("\n", " ").replace("\r", " "))
    return f"the number {value}"
