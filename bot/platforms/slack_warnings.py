"""Warning digests on Slack: chat.postMessage and chat.update of the Block Kit card, owners mentioned
through users.lookupByEmail (needs the `users:read.email` scope), each channel paced to Slack's one
message per second, and Slack's 429s waited out as its Retry-After says (slack_sdk's retry handler)."""

from __future__ import annotations

import logging
from dataclasses import replace

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.expiry import Destination, Digest, MessageRef
from bot.pacing import ChannelPacer
from bot.ports import WarningStore
from cards.digest_blockkit import render_digest_blockkit
from handlers.mentions import slack_users

log = logging.getLogger(__name__)

RATE_LIMIT_RETRIES = 3  # 429s waited out per call before the post counts as failed (claims given back)
_NOBODY = frozenset({"users_not_found", "user_not_found"})


def with_rate_limit_retries(client: AsyncWebClient) -> AsyncWebClient:
    """The client, now waiting out Slack's 429 answers (Retry-After) before it gives up."""
    if not any(isinstance(h, AsyncRateLimitErrorRetryHandler) for h in client.retry_handlers):
        client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES))
    return client


class SlackDigests:
    def __init__(self, client: AsyncWebClient, store: WarningStore, pacer: ChannelPacer | None = None) -> None:
        self._client = with_rate_limit_retries(client)
        self._store = store
        self._pacer = pacer or ChannelPacer()

    async def prepare(self, digest: Digest) -> Digest:
        owners = [owner for row in digest.rows for owner in row.owners]
        return replace(digest, slack_users=await slack_users(owners, self._lookup, self._store))

    async def post(self, digest: Digest) -> str:
        channel = digest.destination.channel
        async with self._pacer.turn(channel):
            posted = await self._client.chat_postMessage(channel=channel, **render_digest_blockkit(digest))
        return str(posted["ts"])

    async def update(self, message: MessageRef, digest: Digest) -> None:
        async with self._pacer.turn(message.channel):
            card = render_digest_blockkit(digest)
            await self._client.chat_update(channel=message.channel, ts=message.message_id, **card)

    async def notice(self, destination: Destination, text: str) -> None:
        async with self._pacer.turn(destination.channel):
            await self._client.chat_postMessage(channel=destination.channel, text=f":warning: {text}")

    async def _lookup(self, address: str) -> str | None:
        try:
            found = await self._client.users_lookupByEmail(email=address)
        except SlackApiError as error:
            if error.response.get("error") in _NOBODY:
                return None
            raise
        user = found.get("user") or {}
        return str(user["id"]) if user.get("id") else None
