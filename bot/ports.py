"""The seams between use cases and infrastructure, as Protocols.

`handlers` depend on these; `bot.graph` and `bot.fakegraph` (and later state and vault modules)
implement them; only the composition root wires the two together.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from bot.domain import Activity, ActivityQuery, AppLookup, GraphMode, Question


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
