"""Warning digests on Teams: a proactive post of the Adaptive Card to the conversation reference the
bot kept when it was installed there (or last spoken to), and an update of that activity later.
Owners are mentioned by Entra object id, so nothing needs looking up."""

from __future__ import annotations

from collections.abc import Callable

from microsoft_agents.activity import Activity, ActivityTypes, ConversationReference
from microsoft_agents.hosting.core import ChannelServiceAdapter, ClaimsIdentity, TurnContext

from bot.expiry import ChannelUnreachable, Destination, Digest, MessageRef
from bot.platforms.teams_jobs import card_activity
from bot.ports import StateStore
from cards.digest_adaptive import render_digest_adaptive
from cards.digest_view import digest_view


class NotInstalled(ChannelUnreachable):
    """The bot has no conversation reference for this Teams channel: it was never installed there."""

    def __init__(self) -> None:
        super().__init__("not_installed")


class TeamsDigests:
    def __init__(
        self, adapter: ChannelServiceAdapter, identity: ClaimsIdentity, state: Callable[[], StateStore]
    ) -> None:
        self._adapter = adapter
        self._identity = identity
        self._state = state

    async def prepare(self, digest: Digest) -> Digest:
        return digest

    async def post(self, digest: Digest) -> str:
        activity = card_activity(render_digest_adaptive(digest), summary=digest_view(digest).title)
        return await self._send(digest.destination.channel, activity) or ""

    async def find(self, digest: Digest) -> str | None:
        """Always None: a bot cannot read a Teams channel's messages back (the connector has no
        history), so a post that Teams accepted just before a crash is posted again (docs/warnings.md)."""
        return None

    async def update(self, message: MessageRef, digest: Digest) -> None:
        if not message.message_id:
            return
        activity = card_activity(render_digest_adaptive(digest), id=message.message_id)

        async def replace(turn: TurnContext) -> None:
            await turn.update_activity(activity)

        await self._adapter.continue_conversation_with_claims(
            self._identity, await self._continuation(message.channel), replace
        )

    async def notice(self, destination: Destination, text: str) -> None:
        await self._send(destination.channel, Activity(type=ActivityTypes.message, text=text))

    async def _send(self, channel: str, activity: Activity) -> str | None:
        sent: list[str | None] = []

        async def send(turn: TurnContext) -> None:
            response = await turn.send_activity(activity)
            sent.append(response.id if response else None)

        await self._adapter.continue_conversation_with_claims(self._identity, await self._continuation(channel), send)
        return sent[0] if sent else None

    async def _continuation(self, channel: str) -> Activity:
        reference = await self._state().conversation("teams", channel)
        if reference is None:
            raise NotInstalled
        conversation = ConversationReference.model_validate(reference)
        continuation = conversation.get_continuation_activity()
        continuation.id = None  # a new post in the conversation, not a reply to an earlier message
        return continuation
