"""Value helpers shared by the snapshot loader and the query evaluator: GUIDs and Graph datetimes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
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


# ISO 8601 durations as Graph's policies write them ("P90D", "P1Y", "PT12H"). Graph does not say how it
# counts a year or a month; 365 and 30 days are assumed (never longer than the calendar allows).
_DURATION = re.compile(
    r"P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)


def parse_duration(value: object) -> timedelta | None:
    """An ISO 8601 duration as a timedelta, or None when it is not one."""
    if not isinstance(value, str):
        return None
    match = _DURATION.fullmatch(value)
    if match is None or value in ("P", "PT") or value.endswith("T"):
        return None
    parts = {name: float(number) for name, number in match.groupdict().items() if number is not None}
    days = parts.get("years", 0) * 365 + parts.get("months", 0) * 30 + parts.get("weeks", 0) * 7 + parts.get("days", 0)
    return timedelta(
        days=days, hours=parts.get("hours", 0), minutes=parts.get("minutes", 0), seconds=parts.get("seconds", 0)
    )
