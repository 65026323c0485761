"""Judging credentials for expiry: days left, state, the threshold crossed, and whether a newer
credential already replaced one. Pure: the records, the clock and the thresholds in; rows out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from bot.domain import ExpiryState, InventoryCredential, ScannedCredential

DEFAULT_THRESHOLDS = (30, 14, 7, 1)  # days before the end date; and once more on expiry (threshold 0)


def check_thresholds(thresholds: Iterable[int]) -> tuple[int, ...]:
    """Thresholds sorted ascending without repeats; ValueError unless each is a whole number of days >= 1."""
    days = tuple(sorted(set(thresholds)))
    if not days or any(not isinstance(day, int) or day < 1 for day in days):
        raise ValueError(f"thresholds must be whole days of 1 or more, got {list(thresholds)!r}")
    return days


def days_left(credential: InventoryCredential, now: datetime) -> int | None:
    """Whole days until the end, as `diagnose` counts them (negative once expired); None without an end."""
    return None if credential.end is None else (credential.end - now).days


def judge(
    credentials: Iterable[InventoryCredential],
    now: datetime,
    thresholds: Iterable[int] = DEFAULT_THRESHOLDS,
    last_used: Mapping[str, datetime] | None = None,
) -> list[ScannedCredential]:
    """Every credential judged at `now`, sorted by end date (soonest first, no end date last).

    `last_used` maps a key id to its last sign-in, where the tenant reports it.
    """
    days = check_thresholds(thresholds)
    by_object: dict[tuple[str, str], list[InventoryCredential]] = defaultdict(list)
    for credential in credentials:
        by_object[(credential.object_type, credential.object_id)].append(credential)
    rows = []
    for siblings in by_object.values():
        for credential in siblings:
            left = days_left(credential, now)
            rows.append(
                ScannedCredential(
                    credential=credential,
                    days_left=left,
                    state=_state(credential, left, now, days),
                    threshold=_threshold(credential, left, now, days),
                    replaced_by=_replacement(credential, siblings),
                    last_used=(last_used or {}).get(credential.key_id),
                )
            )
    rows.sort(key=sort_key)
    return rows


def sort_key(row: ScannedCredential) -> tuple[bool, datetime | None, str, str]:
    credential = row.credential
    # (has no end, end, name, key id): the `None` end is only ever compared with another `None`.
    return (credential.end is None, credential.end, credential.display_name.lower(), credential.key_id)


def within(rows: Iterable[ScannedCredential], days: int) -> list[ScannedCredential]:
    """Rows of credentials ending within `days` days; expired ones always."""
    return [
        row for row in rows if row.state is ExpiryState.EXPIRED or (row.days_left is not None and row.days_left <= days)
    ]


def any_ends_within(rows: Iterable[ScannedCredential], days: int) -> bool:
    """True when a credential has ended or ends within `days` days (the pipeline gate of `--fail-on`)."""
    return any(row.days_left is not None and row.days_left <= days for row in rows)  # expired: negative


def _expired(credential: InventoryCredential, now: datetime) -> bool:
    return credential.end is not None and now >= credential.end


def _state(credential: InventoryCredential, left: int | None, now: datetime, days: Sequence[int]) -> ExpiryState:
    if left is None:
        return ExpiryState.NO_END
    if _expired(credential, now):
        return ExpiryState.EXPIRED
    return ExpiryState.EXPIRING if left <= days[-1] else ExpiryState.VALID


def _threshold(credential: InventoryCredential, left: int | None, now: datetime, days: Sequence[int]) -> int | None:
    if left is None:
        return None
    if _expired(credential, now):
        return 0
    return next((day for day in days if day >= left), None)


def _replacement(credential: InventoryCredential, siblings: Sequence[InventoryCredential]) -> str | None:
    """The key id of a newer credential of the same kind (and usage) on the same object that ends later.

    Of several, the one that lasts longest, so the card points at the credential clients should use.
    """
    if credential.end is None:
        return None
    end = credential.end
    candidates = [
        other
        for other in siblings
        if other.key_id != credential.key_id
        and other.kind is credential.kind
        and other.usage == credential.usage
        and _newer(other, credential)
        and (other.end is None or other.end > end)
    ]
    if not candidates:
        return None
    best = max(candidates, key=lambda other: (other.end is None, other.end or end, other.key_id))
    return best.key_id


def _newer(other: InventoryCredential, credential: InventoryCredential) -> bool:
    if other.start is None:
        return False
    return credential.start is None or other.start > credential.start
