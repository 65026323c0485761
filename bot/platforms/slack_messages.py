"""Slack message events: which are ours to answer, queued as answer jobs.

They are nearly all the requests Slack sends, and Slack waits for each ack. So over HTTP a message
event goes straight to its listener here: Bolt's dispatch (its context, middleware chain, listener
matching and argument building) was a quarter of the web tier's CPU per ack, and an ack in a burst
waits for the CPU of every event before it (docs/benchmarks.md). Everything else, and every message
over Socket Mode, still goes through Bolt, which calls the same listener.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.jobs.payloads import asked_to_json
from bot.platforms.slack_jobs import ANSWER
from bot.state import keys
from handlers.conversation import read

log = logging.getLogger(__name__)

Enqueue = Callable[..., Awaitable[None]]

_CODE = re.compile(r"AADSTS\d{5,7}", re.IGNORECASE)
# Message subtypes that are edits, joins, bot posts and the like, never a person pasting an error.
_QUIET_SUBTYPES = frozenset({"bot_message", "message_changed", "message_deleted", "channel_join", "thread_broadcast"})
_ALWAYS = {"app_mention": True, "message": False}  # event type -> answered in channels without a code too
AUTH_RETRY_SECONDS = 60.0  # after a failed auth.test, message events go through Bolt for this long


class MessageEvents:
    def __init__(self, client: AsyncWebClient, enqueue: Enqueue) -> None:
        self._client = client
        self._enqueue = enqueue
        self._bot_user: str | None = None
        self._asking = asyncio.Lock()
        self._ask_again_at = 0.0

    def listen(self, bolt: AsyncApp) -> None:
        for kind, always in _ALWAYS.items():
            bolt.event(kind)(self._bolt_listener(always=always))

    async def take(self, body: bytes) -> web.Response | None:
        """The ack of a signed JSON body that is a message event, once it is queued; None for any other
        body, which is Bolt's to serve (also while the bot's own user id cannot be learned)."""
        try:
            envelope = json.loads(body)
        except ValueError:
            return None
        if not isinstance(envelope, dict) or envelope.get("type") != "event_callback":
            return None
        event = envelope.get("event")
        always = _ALWAYS.get(str(event.get("type"))) if isinstance(event, dict) else None
        if event is None or always is None:
            return None
        bot_user = await self._bot_user_id()
        if bot_user is None:
            return None
        try:
            if event.get("user") != bot_user:  # the bot's own messages, as Bolt leaves them out
                await self.answer(event, envelope, bot_user, always=always)
        except Exception as error:  # as Bolt answers a failed listener: a 500, which Slack retries
            log.error("slack listener failed error=%s", type(error).__name__)
            return web.Response(status=500)
        return web.Response(status=200)

    async def answer(
        self, event: dict[str, Any], envelope: dict[str, Any], bot_user: str | None, *, always: bool
    ) -> None:
        if event.get("bot_id") or event.get("subtype") in _QUIET_SUBTYPES:
            return
        text = str(event.get("text") or "")
        direct = event.get("channel_type") == "im"
        # In channels only a message with an AADSTS code is ours to answer, and one that mentions the
        # bot is answered through its app_mention event, not twice.
        if not (always or direct) and (not _CODE.search(text) or f"<@{bot_user}>" in text):
            return
        channel, thread = str(event["channel"]), str(event.get("thread_ts") or event["ts"])
        event_id = str(envelope.get("event_id") or f"{channel}-{event['ts']}")
        # "@secretbot rotate …" is a command: read it without the mention that addressed it (Teams' SDK
        # cuts the mention out the same way).
        text = text.strip().removeprefix(f"<@{bot_user}>")
        await self._enqueue(
            ANSWER,
            keys.answer_job_key("slack", event_id),
            asked=asked_to_json(await read(text)),  # the facts only: no secret value reaches Redis
            channel=channel,
            thread=thread,
            user=str(event.get("user") or ""),
            event=event_id,
            owner=uuid.uuid4().hex,  # this delivery's claim on the event, kept across its retries
        )

    def _bolt_listener(self, *, always: bool) -> Callable[..., Awaitable[None]]:
        async def listener(event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext) -> None:
            await self.answer(event, body, context.bot_user_id, always=always)

        return listener

    async def _bot_user_id(self) -> str | None:
        """The bot's user id (for mentions), asked of Slack once, as Bolt's authorization does."""
        if self._bot_user is None and time.monotonic() >= self._ask_again_at:
            async with self._asking:
                if self._bot_user is None and time.monotonic() >= self._ask_again_at:
                    try:
                        self._bot_user = str((await self._client.auth_test())["user_id"])
                    except (SlackApiError, aiohttp.ClientError, TimeoutError, KeyError) as error:
                        self._ask_again_at = time.monotonic() + AUTH_RETRY_SECONDS
                        log.warning("slack auth.test failed (%s): message events go through Bolt", type(error).__name__)
        return self._bot_user
