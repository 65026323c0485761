"""A rotation request and its audit trail: the state machine's vocabulary, stdlib only like `bot.domain`.

requested -> approved -> added -> stored -> proven -> done -> retiring -> retired, with the side
exits rejected, expired and failed. A record holds ids, hints and dates, never a secret's value: it
is stored in Redis, listed by the CLI and drawn on cards.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

MARKER_PREFIX = "secretbot-rotation-"  # a new secret's display name: this prefix and the request id


class RotationState(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    ADDED = "added"  # Graph holds the new secret; the value is only in the worker's memory
    STORED = "stored"  # the value is in Key Vault
    PROVEN = "proven"  # a token was issued for the new secret
    DONE = "done"
    RETIRING = "retiring"  # an approver asked to remove the old secret
    RETIRED = "retired"
    REJECTED = "rejected"
    EXPIRED = "expired"  # nobody approved within the approval TTL
    FAILED = "failed"


# States a rotation never leaves.
FINAL = frozenset({RotationState.RETIRED, RotationState.REJECTED, RotationState.EXPIRED, RotationState.FAILED})
# States in which a worker has something to do.
WORKING = frozenset(
    {RotationState.APPROVED, RotationState.ADDED, RotationState.STORED, RotationState.PROVEN, RotationState.RETIRING}
)


@dataclass(frozen=True)
class Person:
    """Who did something: the chat platform's user id, and a name to show."""

    platform: str
    user_id: str
    name: str | None = None

    @property
    def shown(self) -> str:
        return self.name or self.user_id


@dataclass(frozen=True)
class AuditEntry:
    """One transition: when, into which state, by whom, and the Graph / Key Vault ids involved."""

    at: datetime
    state: RotationState
    by: str  # a person's name or id, or "secretbot" for the worker's steps
    detail: str = ""
    ids: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Rotation:
    id: str
    app_id: str
    object_id: str
    app_name: str
    tenant_id: str
    requester: Person
    reason: str
    requested_at: datetime
    expires_at: datetime  # approval must come before this
    lifetime_days: int
    vault_name: str  # the Key Vault secret's name
    vault_location: str
    replaces: str | None = None  # the key id of the secret it replaces
    replaces_hint: str | None = None
    state: RotationState = RotationState.REQUESTED
    approved_by: Person | None = None
    approved_at: datetime | None = None
    new_key_id: str | None = None
    new_hint: str | None = None
    new_start: datetime | None = None
    new_end: datetime | None = None
    vault_version: str | None = None
    problem: str | None = None  # why it failed or was rejected, in words safe to show
    retired_by: Person | None = None
    proof_attempts: int = 0  # token requests made with the new secret so far (one per job run)
    where: dict[str, str] = field(default_factory=dict)  # where its card is (platform, channel, message id)
    history: tuple[AuditEntry, ...] = ()
    # Every other message showing its card (the `rotate` command's answer, the approvers' channel's
    # copy): same keys as `where`, plus `reference` (JSON) for a Teams conversation.
    cards: tuple[dict[str, str], ...] = ()

    @property
    def marker(self) -> str:
        """The new secret's display name in Entra: how a lost addPassword is found again."""
        return MARKER_PREFIX + self.id

    @property
    def places(self) -> tuple[dict[str, str], ...]:
        """Every message that shows this rotation's card and can be updated: each follows its steps."""
        asked = (self.where,) if self.where.get("message_id") else ()
        return asked + self.cards

    def showing(self, place: dict[str, str]) -> Rotation | None:
        """This rotation with `place` (a message showing its card) among its places; None when it is already."""
        if any(_same_message(place, known) for known in self.places):
            return None
        return replace(self, cards=(*self.cards, dict(place)))

    def moved(self, state: RotationState, by: str, at: datetime, detail: str = "", **changes: Any) -> Rotation:
        """This rotation in `state`, with `changes` and the transition added to its history."""
        ids = {k: str(v) for k, v in changes.items() if k in _AUDITED_IDS and v is not None}
        entry = AuditEntry(at, state, by, detail, ids)
        return replace(self, state=state, history=(*self.history, entry), **changes)

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=_encode, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Rotation:
        data = json.loads(raw)
        for name in _DATES:
            if data.get(name):
                data[name] = datetime.fromisoformat(data[name])
        for name in ("requester", "approved_by", "retired_by"):
            if data.get(name):
                data[name] = Person(**data[name])
        data["state"] = RotationState(data["state"])
        data["cards"] = tuple(data.get("cards", ()))
        data["history"] = tuple(
            AuditEntry(datetime.fromisoformat(e["at"]), RotationState(e["state"]), e["by"], e["detail"], e["ids"])
            for e in data.get("history", ())
        )
        return cls(**data)


@dataclass(frozen=True)
class RotationOffer:
    """On a diagnosis card: rotating this app's secret from chat is possible (a button), or why not."""

    app_id: str
    why_not: str | None = None


# Application permissions that let the bot add and remove an app's secrets: OwnedBy (the least, for apps
# the bot owns) or All. Either way the bot is asked to be an owner of the apps it rotates.
WRITE_ROLES = ("Application.ReadWrite.OwnedBy", "Application.ReadWrite.All")


@dataclass(frozen=True)
class BotIdentity:
    """Who the bot is to Entra, read from its own Graph access token: the service principal's object id
    (`oid`), its app id (`appid` / `azp`) and the application permissions consented for it (`roles`)."""

    object_id: str | None
    app_id: str | None
    roles: frozenset[str] = frozenset()

    @property
    def may_write_apps(self) -> bool:
        return any(role in self.roles for role in WRITE_ROLES)

    @property
    def shown(self) -> str:
        """How to name the bot's service principal to an admin adding it as an owner."""
        if self.app_id and self.object_id:
            return f"the bot's service principal (object id {self.object_id}, app id {self.app_id})"
        return f"the bot's service principal ({self.object_id or self.app_id or 'unknown id'})"


_AUDITED_IDS = frozenset({"new_key_id", "vault_version", "vault_name", "replaces"})
_DATES = ("requested_at", "expires_at", "approved_at", "new_start", "new_end")


def _same_message(one: dict[str, str], other: dict[str, str]) -> bool:
    return all(one.get(k) == other.get(k) for k in ("platform", "channel", "message_id"))


def _encode(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not part of a rotation record")
