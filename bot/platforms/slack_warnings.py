"""Warning digests on Slack: chat.postMessage and chat.update of the Block Kit card, owners mentioned
through users.lookupByEmail (needs the `users:read.email` scope), each channel paced to Slack's one
message per second, and Slack's 429s waited out as its Retry-After says (slack_sdk's retry handler)."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

from aiohttp import ClientError
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.expiry import ChannelUnreachable, Destination, Digest, MessageRef
from bot.pacing import ChannelPacer
from bot.ports import WarningStore
from cards.digest_blockkit import render_digest_blockkit
from handlers.mentions import slack_users

log = logging.getLogger(__name__)

# A digest's card carries its id in the message metadata, so a run that died after Slack accepted the
# post finds it (conversations.history with include_all_metadata) instead of posting it again.
DIGEST_EVENT = "secretbot_warning_digest"
FIND_MARGIN = timedelta(minutes=5)  # clock skew between us and Slack: look a little before the scan
FIND_PAGES = 5  # 1,000 messages since the scan; a busier channel gets the card again rather than never
FIND_PAGE_SIZE = 200
RATE_LIMIT_RETRIES = 3  # 429s waited out per call before the post counts as failed (claims given back)
# chat.postMessage errors that no retry fixes: people must invite the bot, fix the route, unarchive.
UNREACHABLE = frozenset({"not_in_channel", "channel_not_found", "is_archived"})
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
        metadata = {"event_type": DIGEST_EVENT, "event_payload": {"digest_id": digest.id}}
        async with self._pacer.turn(channel):
            try:
                posted = await self._client.chat_postMessage(
                    channel=channel, metadata=metadata, **render_digest_blockkit(digest)
                )
            except SlackApiError as error:
                code = error.response.get("error")
                if code in UNREACHABLE:
                    raise ChannelUnreachable(str(code)) from None
                raise
        return str(posted["ts"])

    async def find(self, digest: Digest) -> str | None:
        """Our card among the channel's messages since the scan, by the digest id in its metadata.
        Without the history scopes (or when Slack does not answer) None: posted again rather than lost."""
        oldest = f"{(digest.scanned_at - FIND_MARGIN).timestamp():.6f}"
        cursor = None
        try:
            for _ in range(FIND_PAGES):
                found = await self._client.conversations_history(
                    channel=digest.destination.channel,
                    oldest=oldest,
                    include_all_metadata=True,
                    limit=FIND_PAGE_SIZE,
                    cursor=cursor,
                )
                for message in found.get("messages") or []:
                    metadata = message.get("metadata") or {}
                    payload = metadata.get("event_payload") or {}
                    if metadata.get("event_type") == DIGEST_EVENT and payload.get("digest_id") == digest.id:
                        return str(message["ts"])
                cursor = (found.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    return None
        except (SlackClientError, ClientError, OSError, TimeoutError) as error:
            code = error.response.get("error") if isinstance(error, SlackApiError) else type(error).__name__
            log.warning("could not look for an earlier post of a digest error=%s: posting it", code)
        return None

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
