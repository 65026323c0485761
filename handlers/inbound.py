"""What reaches the use cases from any chat platform, already translated out of Slack or Teams JSON."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from bot.expiry import Routes
from bot.ports import Directory, StateStore

if TYPE_CHECKING:
    from handlers.rotation import Rotations


@dataclass(frozen=True)
class Actor:
    platform: str  # "slack" | "teams" | "console"
    user_id: str
    name: str | None = None
    aad_object_id: str | None = None  # Teams users carry their Entra object id
    email: str | None = None  # a Slack user's profile email, when the adapter read it (approver checks)


@dataclass(frozen=True)
class InboundMessage:
    text: str  # markup already stripped by the adapter; may still hold a secret until parsed
    actor: Actor
    conversation_id: str


@dataclass(frozen=True)
class InboundAction:
    """A button press: the verb says what, the id says on which stored object."""

    verb: str
    id: str
    actor: Actor
    conversation_id: str
    message_id: str | None = None  # the card's message (Slack ts), when the adapter can update it later
    reference: str | None = None  # JSON: how to post there later (a Teams conversation reference)


@dataclass(frozen=True)
class Deps:
    directory: Directory | None
    state: StateStore
    now: Callable[[], datetime]
    routes: Routes = field(default_factory=Routes)  # SECRETBOT_ROUTES, for `watching` and default thresholds
    rotations: Rotations | None = None  # None: rotation is not offered here (handlers/rotation.py)
