"""Expiry: judging credentials (days left, state, the threshold crossed, whether a newer credential
already replaced one), then turning a judged scan into warning digests and following reality.

Judging is pure: the records, the clock and the thresholds in; rows out.

The scan job calls, in order:
1. `plan_digests(rows, routes, subscriptions, now)`: one candidate digest per destination; then
   `store.claim_digest(candidate, now)` keeps only the credentials not warned there before, claiming
   them in the ledger and saving the digest in one step (so a second scan, replica or `scan --post`
   finds nothing left to warn, and a crash right after leaves a saved digest to post);
   `prepare_digests` does both;
2. per digest: fill `slack_users` (handlers.mentions), `store.save_digest`, post it, then
   `store.record_message`; when posting fails, `release_digest` so the next scan warns again;
3. `follow_reality(previous, current, store)`: the kept digests whose cards must be updated in place
   because a credential they show was removed, renewed or replaced.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from bot.domain import ExpiryState, InventoryCredential, ScannedCredential
from bot.expiry import (
    DEFAULT_THRESHOLDS,
    Destination,
    Digest,
    Outcome,
    Platform,
    Problem,
    Routes,
    Subscription,
    WarningRow,
    credential_key,
)
from bot.ports import WarningStore
from handlers.routing import due


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


# --- from a judged scan to digests --------------------------------------------------------------

ID_BYTES = 16  # secrets.token_urlsafe(16): a button's id, not guessable

# Most urgent first: an app that can no longer sign in, then credentials that need a rotation, then
# clean-up work (an expired credential next to a valid one, already rotated, replaced, unused).
URGENCY = {
    Problem.EXPIRED_ONLY: 0,
    Problem.ROTATION_NEEDED: 1,
    Problem.EXPIRED: 2,
    Problem.ROTATED: 3,
    Problem.EXPIRED_REPLACED: 4,
    Problem.EXPIRED_UNUSED: 5,
}


def warning_row(
    row: ScannedCredential, threshold: int, siblings: Sequence[ScannedCredential], now: datetime
) -> WarningRow:
    """`row` judged as a warning: which kind of problem it is, given the other credentials of its object."""
    days = row.days_left if row.days_left is not None else 0
    unused = (now - row.last_used).days if row.last_used is not None else None
    newer = next((s for s in siblings if s.credential.key_id == row.replaced_by), None)
    replaced_by_name = newer.credential.name if newer else None
    if days >= 0:
        problem = Problem.ROTATED if row.replaced_by else Problem.ROTATION_NEEDED
        return WarningRow(row, threshold, problem, unused, replaced_by_name)
    if row.replaced_by:
        problem = Problem.EXPIRED_REPLACED
    elif unused is not None:
        problem = Problem.EXPIRED_UNUSED
    elif not any(_usable(s) for s in siblings if s.credential.key_id != row.credential.key_id):
        problem = Problem.EXPIRED_ONLY
    else:
        problem = Problem.EXPIRED
    return WarningRow(row, threshold, problem, unused, replaced_by_name)


def _usable(row: ScannedCredential) -> bool:
    return row.days_left is None or row.days_left >= 0


def ordered(rows: Iterable[WarningRow]) -> tuple[WarningRow, ...]:
    """Most urgent first (see URGENCY), then the end nearest to now (the soonest to expire, the most
    recently expired: a credential that broke yesterday is an outage, one that broke a year ago is
    clean-up), then by app name."""
    return tuple(
        sorted(
            rows,
            key=lambda r: (
                URGENCY[r.problem],
                abs(r.scanned.days_left or 0),
                r.credential.display_name.lower(),
                r.key,
            ),
        )
    )


def by_object(rows: Iterable[ScannedCredential]) -> dict[str, list[ScannedCredential]]:
    grouped: dict[str, list[ScannedCredential]] = {}
    for row in rows:
        grouped.setdefault(row.credential.object_id, []).append(row)
    return grouped


def plan_digests(
    rows: Sequence[ScannedCredential], routes: Routes, subscriptions: Sequence[Subscription], now: datetime
) -> list[Digest]:
    """One candidate digest per destination with every credential that crossed a threshold there,
    warned before or not (`store.claim_digest` keeps what was not), each under a fresh id."""
    siblings = by_object(rows)
    return [
        Digest(
            secrets.token_urlsafe(ID_BYTES),
            destination,
            now,
            ordered(warning_row(row, threshold, siblings[row.credential.object_id], now) for row, threshold in items),
        )
        for destination, items in sorted(due(rows, routes, subscriptions).items())
    ]


async def prepare_digests(
    rows: Sequence[ScannedCredential],
    routes: Routes,
    subscriptions: Sequence[Subscription],
    store: WarningStore,
    now: datetime,
) -> list[Digest]:
    """One digest per destination with every credential that crossed a threshold there and was not
    warned there yet (claimed and saved now); destinations with nothing new get none. Raises
    StateUnavailable: without the ledger nobody can tell what was warned, so nothing is posted rather
    than everything."""
    claimed = [await store.claim_digest(candidate, now) for candidate in plan_digests(rows, routes, subscriptions, now)]
    return [digest for digest in claimed if digest is not None]


async def release_digest(digest: Digest, store: WarningStore) -> None:
    """The digest could not be posted: give its claims back so the next scan warns again, and drop
    the digest, so a retried run does not post it besides the new digest that claims them again."""
    await store.release_digest(digest)


def outcomes(previous: Iterable[ScannedCredential], current: Iterable[ScannedCredential]) -> dict[str, Outcome]:
    """What happened between two scans to each credential that a card may show (by credential key).

    - gone, and its object now has a credential of the same kind ending later: REPLACED;
    - gone otherwise (removed, or its whole app deleted): REMOVED;
    - still there, and a newer credential of its kind now outlives it where none did: RENEWED.
    """
    now_rows = {credential_key(row.credential): row for row in current}
    now_objects = by_object(now_rows.values())
    found: dict[str, Outcome] = {}
    for row in previous:
        key = credential_key(row.credential)
        later = now_rows.get(key)
        if later is None:
            newer = any(
                other.credential.kind is row.credential.kind and _ends_after(other, row)
                for other in now_objects.get(row.credential.object_id, ())
            )
            found[key] = Outcome.REPLACED if newer else Outcome.REMOVED
        elif later.replaced_by and not row.replaced_by:
            found[key] = Outcome.RENEWED
    return found


def _ends_after(other: ScannedCredential, row: ScannedCredential) -> bool:
    mine, theirs = row.credential.end, other.credential.end
    return mine is not None and (theirs is None or theirs > mine)


def with_outcomes(digest: Digest, changes: dict[str, Outcome]) -> Digest | None:
    """The digest with each changed row marked; None when nothing on it changed."""
    rows = tuple(
        replace(row, outcome=changes[row.key]) if row.key in changes and row.outcome != changes[row.key] else row
        for row in digest.rows
    )
    return replace(digest, rows=rows) if rows != digest.rows else None


async def follow_reality(
    previous: Iterable[ScannedCredential], current: Iterable[ScannedCredential], store: WarningStore
) -> list[Digest]:
    """Kept digests whose cards must be updated in place, already saved with their new rows; the
    caller draws each again and updates the message at `store.message(digest.id)`."""
    changes = outcomes(previous, current)
    ids = sorted({digest_id for key in changes for digest_id in await store.digests_showing(key)})
    updated = []
    for digest_id in ids:
        digest = await store.digest(digest_id)
        changed = with_outcomes(digest, changes) if digest is not None else None
        if changed is not None:
            await store.save_digest(changed)
            updated.append(changed)
    return updated


async def follow_open_digests(
    current: Iterable[ScannedCredential], store: WarningStore, changed: Collection[str] | None = None
) -> list[Digest]:
    """`follow_reality` against every card still open: their rows are what was warned. Cards whose
    rows are all resolved, or whose digest expired, are closed so later scans skip them.

    With `changed` (object ids), `current` holds only some objects' rows: only rows of the changed
    objects are compared, as only a change can remove, renew or replace a credential; none, no work.
    """
    if changed is not None and not changed:
        return []
    previous: list[ScannedCredential] = []
    for digest_id in await store.open_digests():
        digest = await store.digest(digest_id)
        if digest is None or all(row.outcome is not None for row in digest.rows):
            await store.mark_closed(digest_id)
            continue
        previous.extend(
            row.scanned
            for row in digest.rows
            if row.outcome is None and (changed is None or row.credential.object_id in changed)
        )
    updated = await follow_reality(previous, current, store)
    for digest in updated:
        if all(row.outcome is not None for row in digest.rows):
            await store.mark_closed(digest.id)
    return updated


# Why the platform refused a channel, and what people can do about it (keyed by the platform's code).
_CANNOT_POST = {
    "not_in_channel": ("I am not a member of it", "invite me there or fix the route"),
    "channel_not_found": (
        "it does not exist, or it is private and I am not in it",
        "fix the route or the watch that names it, or invite me",
    ),
    "is_archived": ("it is archived", "unarchive it or fix the route"),
    "not_installed": ("I am not installed there", "add me to that team and channel, or fix the route"),
}


def cannot_post(destination: Destination, code: str, *, here: bool = False) -> str:
    """The notice for a channel that refuses warnings: to the defaults (`here` False), or in
    `watching` for the channel itself. Its warnings are not lost: their claims were given back."""
    why, fix = _CANNOT_POST.get(code, (f"the platform answered {code}", "check the route"))
    if here:
        return f"I cannot post expiry warnings here: {why}. To receive them, {fix}."
    where = f"<#{destination.channel}>" if destination.platform is Platform.SLACK else f"{destination}"
    return (
        f"I cannot post expiry warnings to {where}: {why}. To fix it, {fix}. "
        "Its warnings are kept and posted there by the first scan after that."
    )
