"""The seams between use cases and infrastructure, as Protocols.

`handlers` depend on these; `bot.graph` and `bot.fakegraph` (and later state and vault modules)
implement them; only the composition root wires the two together.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from bot.credential_types import DirectoryUser, NewPassword, PasswordPolicy, Proof, SecretValue, StoredSecret
from bot.domain import Activity, ActivityQuery, AppLookup, GraphMode, Question
from bot.expiry import (
    AppMatcher,
    Destination,
    Digest,
    MessageRef,
    RotationPointer,
    ScanSummary,
    Stamp,
    Subscription,
)
from bot.rotation_types import Rotation


class Directory(Protocol):
    """What the diagnosis needs to know about a tenant's applications."""

    @property
    def mode(self) -> GraphMode: ...

    async def lookup(self, app_id: str, activity: ActivityQuery | None = None) -> AppLookup:
        """Application, service principal, deleted application, owners and tenant for one appId.

        With `activity`, the directory may answer the logs too, in the same round trip
        (`AppLookup.activity`); when it leaves them None the caller asks `activity()`.

        Raises `PermissionDenied`, `Throttled` or `DirectoryUnavailable` (bot.domain) when Graph
        cannot answer at all; a refused part of the lookup is reported in `missing_permissions`.
        """
        ...

    async def activity(
        self,
        app_id: str,
        object_id: str | None,
        *,
        correlation_id: str | None,
        since: datetime,
        around: datetime | None = None,
        sp_object_id: str | None = None,
    ) -> Activity:
        """Sign-ins of the app's service principal and audit entries about the app and its SP.

        `correlation_id`: the failed request's sign-ins, if the log has them; `around`: the error's
        time, to read the app's sign-ins near it (else its latest); `since`: where the logs end.
        """
        ...


class StateStore(Protocol):
    """Shared state that must hold across replicas and restarts (Redis in production).

    Every method raises `bot.domain.StateUnavailable` when the store cannot be reached, so callers
    can degrade (answer without de-duplication) instead of failing.
    """

    async def claim(self, kind: str, key: str) -> bool:
        """True the first time `(kind, key)` is claimed within its TTL, False for a repeat.

        Used to answer a Slack event once although Slack retries it, on any number of replicas, and
        to refuse a signed Slack request replayed inside its signature window.
        """
        ...

    async def claim_for(self, kind: str, key: str, owner: str) -> bool:
        """Like `claim`, but True again for the same `owner` (a job run again after its worker died)."""
        ...

    async def forget_lost_conversations(self, platform: str) -> int:
        """Drop conversation index entries whose reference is gone; how many were dropped."""
        ...

    async def save_conversation(self, platform: str, conversation_id: str, reference: dict[str, Any]) -> None:
        """Remember where the bot can post later without being spoken to (Teams proactive messages)."""
        ...

    async def conversation(self, platform: str, conversation_id: str) -> dict[str, Any] | None: ...

    async def conversations(self, platform: str) -> list[dict[str, Any]]: ...

    async def save_question(self, question_id: str, question: Question) -> None:
        """Keep the question behind an answer's Check again button, for a while (keys.QUESTION_TTL)."""
        ...

    async def question(self, question_id: str) -> Question | None:
        """The question saved under `question_id`, or None when it expired, never existed or is unreadable."""
        ...

    async def ping(self) -> bool:
        """True when the store answers; never raises."""
        ...

    @property
    def warnings(self) -> WarningStore:
        """The expiry warnings' state, on the same store."""
        ...


class WarningStore(Protocol):
    """Who was warned of what, what people did about it, and who watches which apps.

    Shared across scans, restarts and replicas; every method raises `StateUnavailable` when the store
    cannot be reached. `key` is a credential key (`bot.expiry.credential_key`).
    """

    async def should_warn(self, destination: Destination, key: str, threshold: int, now: datetime) -> bool:
        """True exactly once per (destination, credential, threshold), for whichever caller asks first;
        False while acknowledged at that threshold or snoozed, and one True more when a snooze ends."""
        ...

    async def claim_warnings(self, destination: Destination, items: list[tuple[str, int]], now: datetime) -> list[bool]:
        """`should_warn` for each (credential key, threshold) of one destination, in a few round trips."""
        ...

    async def claim_digest(self, candidate: Digest, now: datetime) -> Digest | None:
        """`claim_warnings` for every row of `candidate` and, in the same atomic step, `save_digest` of
        the rows claimed: the candidate with only those rows, or None (nothing claimed, nothing saved).
        A crash cannot leave a claim without the digest that is to post it."""
        ...

    async def release(self, destination: Destination, key: str, threshold: int) -> None:
        """Give back a claim whose warning could not be posted, so the next scan warns again."""
        ...

    async def release_digest(self, digest: Digest) -> None:
        """`release` every row of a digest that could not be posted and forget the digest, in one step."""
        ...

    async def acknowledge(self, destination: Destination, items: list[tuple[str, int]], stamp: Stamp) -> None:
        """Record Acknowledge for each (credential key, threshold): not warned again at those thresholds."""
        ...

    async def acknowledged(self, destination: Destination, key: str, threshold: int) -> Stamp | None: ...

    async def snooze(self, destination: Destination, keys: list[str], until: datetime, stamp: Stamp) -> None:
        """No warning for these credentials before `until`; then one reminder."""
        ...

    async def rechecks(self, now: datetime) -> list[tuple[str, float]]:
        """Object ids a scan must judge by `now` though nothing of theirs crossed a threshold (a snooze
        that ended, a warning given back), each with its score to pass to `rechecked`."""
        ...

    async def rechecked(self, items: list[tuple[str, float]]) -> None:
        """Those objects were judged and their warnings claimed: forget them (unless asked again since)."""
        ...

    async def save_digest(self, digest: Digest) -> None:
        """Keep a digest for its buttons and later updates, indexed by each of its credentials."""
        ...

    async def digest(self, digest_id: str) -> Digest | None: ...

    async def point_at_rotation(self, digest_id: str, pointer: RotationPointer) -> None:
        """A rotation was requested from this digest's warning: its card points at it from now on (each
        request once, however often this is said), whatever later saves of the digest carry."""
        ...

    async def record_message(self, digest_id: str, message: MessageRef) -> None:
        """Where the digest was posted (after posting it), so a later scan can update it in place."""
        ...

    async def message(self, digest_id: str) -> MessageRef | None: ...

    async def abandoned_digests(self, now: datetime) -> list[str]:
        """Ids of digests claimed but not posted for longer than a run lasts (keys.PENDING_DIGEST_LEASE),
        now the caller's to post: each is handed to one caller, and again after another lease."""
        ...

    async def forget_pending(self, digest_id: str) -> None:
        """The digest is no longer waiting to be posted (its record expired, or it was posted)."""
        ...

    async def digests_showing(self, key: str) -> list[str]:
        """Ids of the kept digests that show this credential."""
        ...

    async def open_digests(self) -> list[str]:
        """Ids of the posted digests whose cards a later scan may still have to update."""
        ...

    async def mark_open(self, digest_id: str) -> None: ...

    async def mark_closed(self, digest_id: str) -> None:
        """The card is all resolved (or its digest is gone): no scan needs to look at it again."""
        ...

    async def subscribe(self, subscription: Subscription) -> bool:
        """Save a `watch`; False when it replaced one for the same matcher in that channel."""
        ...

    async def unsubscribe(self, destination: Destination, matcher: AppMatcher) -> bool:
        """Remove a `watch`; False when the channel did not watch that."""
        ...

    async def subscriptions(self, destination: Destination | None = None) -> list[Subscription]:
        """One channel's subscriptions, or every channel's (for a scan)."""
        ...

    async def save_scan_summary(self, summary: ScanSummary) -> None:
        """The last successful scan, for every process's /metrics."""
        ...

    async def scan_summary(self) -> ScanSummary | None: ...

    async def mark_unreachable(self, destination: Destination, error: str, now: datetime) -> bool:
        """The platform refused posts to this channel (`error`, its code); True the first time in a
        while (keys.UNREACHABLE_TTL), when the defaults are to be told."""
        ...

    async def unreachable(self, destination: Destination) -> str | None:
        """The error code that made this channel unreachable, while it is remembered."""
        ...

    async def mark_reachable(self, destination: Destination) -> None: ...

    async def slack_user(self, address: str) -> str | None:
        """A cached users.lookupByEmail answer: a user id, "" for nobody, None when not cached."""
        ...

    async def save_slack_user(self, address: str, user_id: str) -> None: ...


class SecretVault(Protocol):
    """Where a rotated secret's value goes (Azure Key Vault; an in-memory fake in demo mode)."""

    @property
    def is_fake(self) -> bool:
        """True for the embedded stand-in: the console and /readyz say so."""
        ...

    @property
    def location(self) -> str:
        """The vault's URL (or the fake's label), for cards and audit entries."""
        ...

    async def store(
        self, name: str, value: SecretValue, *, content_type: str, tags: dict[str, str], expires_on: datetime
    ) -> StoredSecret:
        """Store `value` as a new version of secret `name`. Raises `VaultRefused` or `VaultUnavailable`
        (bot.credential_types), whose messages never contain the value."""
        ...

    async def read(self, name: str, version: str) -> SecretValue:
        """One stored version's value (a rotation resumed after a crash proves the secret it stored).
        Raises `VaultRefused` or `VaultUnavailable`."""
        ...


class CredentialWriter(Protocol):
    """The Graph calls a rotation makes. Every failure is a `GraphWriteError` (bot.credential_types)."""

    async def add_password(self, object_id: str, display_name: str, end: datetime) -> NewPassword:
        """addPassword, sent once (never retried: a retried POST can add two secrets). A
        `WriteOutcomeUnknown` means: read the app's credentials before adding again."""
        ...

    async def remove_password(self, object_id: str, key_id: str) -> None:
        """removePassword; a key id the app no longer has counts as removed."""
        ...

    async def password_policy(self, object_id: str) -> PasswordPolicy:
        """The app management policy in force for new client secrets on this app."""
        ...

    async def password_key_ids(self, object_id: str) -> dict[str, str | None]:
        """The app's client secrets now (keyId → displayName): how an addPassword whose answer was
        lost is found by its marker."""
        ...

    async def application_tags(self, object_id: str) -> tuple[str, ...]:
        """The app's Entra tags (`secretbot:rotate`, `secretbot:keyvault-secret=NAME`)."""
        ...


class PeopleDirectory(Protocol):
    """Who may approve: a chat user's Entra account and the groups it belongs to."""

    async def user_by_email(self, email: str) -> DirectoryUser | None: ...

    async def member_groups(self, user_id: str, group_ids: list[str]) -> set[str]:
        """Which of `group_ids` the user belongs to, directly or through nested groups."""
        ...


class TokenProver(Protocol):
    """Asks Entra for a token with a new secret, for as long as propagation may take."""

    async def prove(self, tenant: str, client_id: str, secret: SecretValue) -> Proof:
        """Try, pausing in place, until proven, refused or past the deadline."""
        ...

    async def attempt(self, tenant: str, client_id: str, secret: SecretValue) -> Proof:
        """One token request."""
        ...

    def pause_after(self, attempts: int) -> float | None:
        """Seconds before the next request after `attempts` failed ones; None past the deadline."""
        ...


class RotationStore(Protocol):
    """Rotation requests and their audit trail (Redis). Raises `StateUnavailable` like `StateStore`."""

    async def create(self, rotation: Rotation) -> bool:
        """Save a new request; False when that id exists already."""
        ...

    async def get(self, rotation_id: str) -> Rotation | None: ...

    async def change(
        self, rotation_id: str, change: Callable[[Rotation], Rotation | None]
    ) -> tuple[Rotation | None, bool]:
        """Compare-and-set: `change` sees the record as stored and returns it changed, or None to leave
        it; it may be called again when another writer got there first. Returns (the record now,
        whether this call changed it); (None, False) when there is no such record."""
        ...

    async def hold(self, rotation_id: str, owner: str) -> bool:
        """Take or renew the lease on advancing this rotation (one worker at a time): True while
        `owner` holds it. A lease not renewed lapses (keys.ROTATION_LEASE)."""
        ...

    async def release(self, rotation_id: str, owner: str) -> None: ...

    async def recent(self, limit: int = 100) -> list[Rotation]:
        """The latest requests, newest first."""
        ...

    async def due(self, now: datetime, limit: int = ...) -> list[str]:
        """Ids of requests whose approval deadline is at or before `now` (from an index, no scan)."""
        ...

    async def settled(self, rotation_id: str) -> None:
        """Stop watching this request's deadline."""
        ...
