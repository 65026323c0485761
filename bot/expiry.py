"""Domain vocabulary of expiry warnings: where a warning goes, to whom, what kind of problem it
names, and what people did about it. Plain frozen dataclasses and enums, stdlib only, like
`bot.domain` (which it extends; kept apart so the scan's and the warnings' types grow separately).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.domain import CredentialKind, InventoryCredential, ObjectType, Owner, ScannedCredential

# Days before the end date at which a credential is warned; 0 (on expiry) is always added.
DEFAULT_THRESHOLDS: tuple[int, ...] = (30, 14, 7, 1)
MAX_THRESHOLD = 3650  # ten years: Entra certificates may live that long; anything beyond is a typo


def checked_thresholds(values: object) -> tuple[int, ...]:
    """Thresholds as given (routes file, chat command), largest first; ValueError says what is wrong.

    >>> checked_thresholds([7, 30, 14])
    (30, 14, 7)
    """
    if not isinstance(values, list | tuple) or not values:
        raise ValueError("thresholds must be a non-empty list of whole days, like [30, 14, 7, 1]")
    seen: set[int] = set()
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"threshold {value!r} is not a whole number of days")
        if not 1 <= value <= MAX_THRESHOLD:
            raise ValueError(f"threshold {value} is out of range: days before the end date, 1 to {MAX_THRESHOLD}")
        if value in seen:
            raise ValueError(f"threshold {value} is listed twice")
        seen.add(value)
    return tuple(sorted(seen, reverse=True))


def threshold_for(days_left: int | None, thresholds: tuple[int, ...]) -> int | None:
    """The smallest threshold >= days_left; 0 once expired; None when none applies (or no end date).

    >>> threshold_for(10, (30, 14, 7, 1)), threshold_for(-3, (30,)), threshold_for(40, (30,))
    (14, 0, None)
    """
    if days_left is None:
        return None
    if days_left < 0:
        return 0
    reached = [t for t in thresholds if t >= days_left]
    return min(reached) if reached else None


class Platform(StrEnum):
    SLACK = "slack"
    TEAMS = "teams"
    CONSOLE = "console"  # the demo's web console: its channel view receives the defaults' warnings


@dataclass(frozen=True, order=True)
class Destination:
    """Where a digest is posted: a Slack channel id or a Teams conversation the bot is installed in."""

    platform: Platform
    channel: str

    def __str__(self) -> str:
        return f"{self.platform.value} {self.channel}"


def credential_key(credential: InventoryCredential) -> str:
    """One credential across scans: its object and key id (lower-case GUIDs, so never a `:`)."""
    return f"{credential.object_id.lower()}.{credential.key_id.lower()}"


def owner_address(owner: Owner) -> str | None:
    """The address an owner is looked up by in Slack (mail first: a UPN is often not a mailbox)."""
    address = owner.mail or owner.user_principal_name
    return address.lower() if address else None


# --- which apps: routes and subscriptions ---------------------------------------------------------


class MatchBy(StrEnum):
    APP_ID = "app_id"
    NAME = "name"  # a display-name glob, case-insensitive (`payments-*`)
    TAG = "tag"  # an Entra app tag, case-insensitive
    ALL = "all"


@dataclass(frozen=True)
class AppMatcher:
    by: MatchBy
    pattern: str = ""  # lower-case; empty for ALL

    def matches(self, credential: InventoryCredential) -> bool:
        if self.by is MatchBy.ALL:
            return True
        if self.by is MatchBy.APP_ID:
            return credential.app_id.lower() == self.pattern
        if self.by is MatchBy.TAG:
            return any(tag.lower() == self.pattern for tag in credential.tags)
        return fnmatch.fnmatchcase(credential.display_name.lower(), self.pattern)

    def __str__(self) -> str:
        """How chat commands and the `watching` list write it: `all`, `tag:NAME`, an app id, a glob."""
        return {MatchBy.ALL: "all", MatchBy.TAG: f"tag:{self.pattern}"}.get(self.by, self.pattern)


@dataclass(frozen=True)
class Route:
    """One `[[route]]` table: apps matching any matcher go to every destination, at these thresholds."""

    matchers: tuple[AppMatcher, ...]
    destinations: tuple[Destination, ...]
    thresholds: tuple[int, ...]
    line: int = 0  # where the table starts in the routes file, for messages


@dataclass(frozen=True)
class Routes:
    """The routes file: `defaults` receive every app no route matches."""

    defaults: tuple[Destination, ...] = ()
    thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS
    routes: tuple[Route, ...] = ()
    source: str | None = None  # the file's path; None when SECRETBOT_ROUTES is not set


@dataclass(frozen=True)
class Stamp:
    """Who did something, and when (the name as the chat platform gave it, else the user id)."""

    by: str
    at: datetime


@dataclass(frozen=True)
class Subscription:
    """`watch <matcher> [thresholds]` typed in a channel: that channel receives those apps' warnings."""

    destination: Destination
    matcher: AppMatcher
    thresholds: tuple[int, ...]
    added: Stamp | None = None


# --- what a warning says --------------------------------------------------------------------------


class Problem(StrEnum):
    """What kind of problem a warned credential is, which decides what the card asks people to do."""

    ROTATION_NEEDED = "rotation_needed"  # expires in N days, no replacement
    ROTATED = "rotated"  # expires in N days, but a newer credential of the same kind outlives it
    EXPIRED_REPLACED = "expired_replaced"  # expired, a newer one took over: remove the old one
    EXPIRED_UNUSED = "expired_unused"  # expired and unused for N days: safe to remove
    EXPIRED_ONLY = "expired_only"  # expired, still the object's only credential: it cannot sign in
    EXPIRED = "expired"  # expired, other credentials exist but none of its kind outlives it


class Outcome(StrEnum):
    """What a later scan saw happen to a warned credential ("cards follow reality")."""

    REMOVED = "removed"  # gone, and nothing of its kind replaced it
    REPLACED = "replaced"  # gone, and a newer credential of its kind is there
    RENEWED = "renewed"  # still there, but a newer credential of its kind now outlives it


@dataclass(frozen=True)
class WarningRow:
    """One credential in one digest: the judged scan row, the threshold it crossed there, its problem."""

    scanned: ScannedCredential
    threshold: int  # of this destination; 0 once expired
    problem: Problem
    unused_days: int | None = None  # days since last use, when the tenant reports it
    replaced_by_name: str | None = None  # the newer credential's display name, when it has one
    outcome: Outcome | None = None  # set when a later scan found the problem gone

    @property
    def key(self) -> str:
        return credential_key(self.scanned.credential)

    @property
    def credential(self) -> InventoryCredential:
        return self.scanned.credential

    @property
    def owners(self) -> tuple[Owner, ...]:
        return self.scanned.credential.owners


@dataclass(frozen=True)
class MessageRef:
    """Where a digest was posted, so a later scan can update it in place (Slack `ts`, Teams activity id)."""

    platform: Platform
    channel: str
    message_id: str


@dataclass(frozen=True)
class Snooze:
    until: datetime
    stamp: Stamp


@dataclass(frozen=True)
class RotationPointer:
    """A rotation requested from a warning, which the warning's card then points at: the request's id,
    the app's name and who asked (ids and names only, never a secret)."""

    request_id: str
    app: str
    by: str
    at: datetime


@dataclass(frozen=True)
class Digest:
    """One destination's warnings from one scan, most urgent first; buttons carry only its `id`.

    `slack_users` maps an owner's mail or UPN (lower-case) to the Slack user id the adapter looked up,
    so the card can be drawn again later (after a button) exactly as it was posted.
    """

    id: str
    destination: Destination
    scanned_at: datetime
    rows: tuple[WarningRow, ...]
    slack_users: tuple[tuple[str, str], ...] = ()
    acknowledged: Stamp | None = None
    snoozed: Snooze | None = None
    rechecked: Stamp | None = None  # Check again: who asked Graph about these credentials, and when
    # Apps of its rows the bot may rotate, checked when the digest was prepared (tag or list, the
    # permission, ownership); None: not checked (a digest posted without rotation wired), the click checks.
    rotatable: tuple[str, ...] | None = None
    rotation_note: str | None = None  # why Request rotation is not offered, when rows need one
    # Rotations requested from this warning, oldest first. Kept apart from the digest's record (the
    # store adds them when it reads one), so a scan saving the digest again never drops them.
    rotations: tuple[RotationPointer, ...] = ()


def rotation_candidate(row: WarningRow) -> bool:
    """A row a rotation from its digest would act on: an application's client secret that needs one."""
    credential = row.scanned.credential
    return (
        credential.object_type is ObjectType.APPLICATION
        and credential.kind is CredentialKind.SECRET
        and row.problem in (Problem.ROTATION_NEEDED, Problem.EXPIRED_ONLY, Problem.EXPIRED)
        and row.outcome is None
    )


@dataclass(frozen=True)
class ScanSummary:
    """The last successful scan, as /metrics reports it from any process."""

    finished_at: float  # Unix time
    seconds: float
    credentials: tuple[tuple[str, str, int], ...] = ()  # (state, threshold or "none", how many)


class ChannelUnreachable(Exception):
    """The platform refused a post to a channel for a reason only people can fix: the bot is not a
    member or not installed there, the channel does not exist (or is private to the bot), it is
    archived. `code` is the platform's own word for it (Slack's error, or "not_installed")."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code
