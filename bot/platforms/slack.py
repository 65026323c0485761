"""Slack adapter: Bolt's AsyncApp mounted in our aiohttp app (or over Socket Mode).

It only translates: Slack events, slash commands and button clicks become Inbound objects for the
dispatcher, and answers become Block Kit. Every HTTP request's signature and timestamp are verified
here before its body is parsed (Bolt's own check comes after its parsing), and a signed request is
served once: Slack's retries by their event id, a replayed request by its signature.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain import Diagnosis, Notice, StateUnavailable
from bot.edge import refuse
from bot.platforms.dispatch import Dispatcher
from bot.ports import StateStore
from bot.settings import Settings
from cards.blockkit import render_blockkit
from handlers.inbound import Actor, InboundAction, InboundMessage

log = logging.getLogger(__name__)

BOLT = web.AppKey("slack_bolt", AsyncApp)
VERIFIER = web.AppKey("slack_verifier", SignatureVerifier)
# Slack's own rule: a request whose timestamp is further than this from our clock is refused, so a
# captured request cannot be replayed later (and within it, its claim refuses a second delivery).
SIGNATURE_WINDOW_SECONDS = 5 * 60
# Events come as JSON; slash commands and interactivity as forms.
_SLACK_CONTENT_TYPES = frozenset({"application/json", "application/x-www-form-urlencoded"})
CHECKING = "Checking… :hourglass_flowing_sand:"
_CODE = re.compile(r"AADSTS\d{5,7}", re.IGNORECASE)
# Message subtypes that are edits, joins, bot posts and the like, never a person pasting an error.
_QUIET_SUBTYPES = frozenset({"bot_message", "message_changed", "message_deleted", "channel_join", "thread_broadcast"})
# slack_sdk's own limit per Web API call when it makes its session; a shared session must set it itself
# (aiohttp's default is 5 minutes).
WEB_API_TIMEOUT = 30.0


def register(
    app: web.Application,
    settings: Settings,
    dispatcher: Callable[[], Dispatcher],
    state: Callable[[], StateStore],
) -> None:
    if not settings.slack_enabled:
        return
    app.cleanup_ctx.append(_lifecycle(settings, dispatcher, state))
    if settings.slack_signing_secret:  # without it Slack is on Socket Mode only: no HTTP endpoint
        app[VERIFIER] = SignatureVerifier(settings.slack_signing_secret)
        app.router.add_post("/slack/events", _events)


def _lifecycle(
    settings: Settings, dispatcher: Callable[[], Dispatcher], state: Callable[[], StateStore]
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        # One session for every Web API call, kept for the app's lifetime: without it slack_sdk opens
        # (and closes) a session per call, a new TCP and TLS handshake for each of the two calls per
        # answer. Bolt's per-request clients copy the session from this client.
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WEB_API_TIMEOUT)) as session:
            client = AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, session=session)
            # Signatures are checked by _events before the body is parsed; Bolt would check them again.
            bolt = AsyncApp(
                client=client,
                signing_secret=settings.slack_signing_secret or None,
                request_verification_enabled=False,
            )
            _listen(bolt, dispatcher, state)
            app[BOLT] = bolt
            socket = None
            if settings.slack_app_token:  # Socket Mode: for installs behind a firewall, no public URL
                socket = AsyncSocketModeHandler(bolt, settings.slack_app_token)
                await socket.connect_async()  # type: ignore[no-untyped-call]  # slack_bolt leaves it unannotated
            yield
            if socket is not None:
                await socket.close_async()  # type: ignore[no-untyped-call]

    return context


async def _events(request: web.Request) -> web.Response:
    body = await request.read()  # read within bot.edge's bounds before this handler runs
    problem = _unverified(
        request.app[VERIFIER],
        body,
        request.headers.get("X-Slack-Request-Timestamp"),
        request.headers.get("X-Slack-Signature"),
    )
    if problem:
        return refuse(401, f"slack request not verified: {problem}", answer="not a verified Slack request")
    if request.content_type not in _SLACK_CONTENT_TYPES:
        return refuse(400, "signed slack request with a malformed body (content type)")
    try:
        # Bolt parses the body as it builds its request; a signed body that is not a Slack payload (not
        # JSON or a form, or JSON that is not an object) fails there.
        bolt_request = AsyncBoltRequest(body=body.decode(), query=request.query_string, headers=dict(request.headers))
    except (ValueError, AttributeError, TypeError):
        return refuse(400, "signed slack request with a malformed body")
    return await to_aiohttp_response(await request.app[BOLT].async_dispatch(bolt_request))


def _unverified(verifier: SignatureVerifier, body: bytes, timestamp: str | None, signature: str | None) -> str | None:
    """Why the request is not Slack's, or None when its signature and timestamp are right."""
    if not (timestamp and signature):
        return "no signature"
    try:
        age = time.time() - int(timestamp)
    except ValueError:
        return "the timestamp is not a number"
    if abs(age) > SIGNATURE_WINDOW_SECONDS:
        return "the timestamp is more than 5 minutes off"
    try:
        return None if verifier.is_valid(body=body, timestamp=timestamp, signature=signature) else "bad signature"
    except UnicodeDecodeError:  # Slack signs text; these bytes cannot be what it signed
        return "the body is not UTF-8"


def _listen(bolt: AsyncApp, dispatcher: Callable[[], Dispatcher], state: Callable[[], StateStore]) -> None:
    bolt.middleware(_once(state))
    bolt.event("app_mention")(_on_message(dispatcher, always=True))
    bolt.event("message")(_on_message(dispatcher, always=False))
    bolt.command("/secretbot")(_on_command(dispatcher))
    bolt.action(re.compile(r".+"))(_on_action(dispatcher))
    bolt.error(_on_error)


def _once(state: Callable[[], StateStore]) -> Callable[..., Awaitable[Any]]:
    """Each request is served once, on any replica. Slack retries an event it thinks we missed, signed
    anew: only its first delivery is answered. A slash command or button click has no event id; one
    captured and sent again inside the signature window carries the same timestamp and signature, so
    that pair is claimed instead. Either way a repeat gets an empty 200: Slack sees its delivery
    done, and a replay learns nothing. One claim per request keeps the ack path at one round trip."""

    async def middleware(request: AsyncBoltRequest, body: dict[str, Any], next: Callable[[], Awaitable[Any]]) -> Any:
        event_id = body.get("event_id")
        signature = request.headers.get("x-slack-signature", [""])[0]  # none over Socket Mode
        try:
            if isinstance(event_id, str):
                if not await state().claim("slack-event", event_id):
                    log.info("repeated slack event dropped event_id=%s", event_id)
                    return BoltResponse(status=200, body="")
            elif signature:
                timestamp = request.headers.get("x-slack-request-timestamp", [""])[0]
                if not await state().claim("slack-request", _replay_key(timestamp, signature)):
                    log.warning("replayed slack request dropped")
                    return BoltResponse(status=200, body="")
        except StateUnavailable as error:
            log.warning("state store unavailable (%s): answering without de-duplication", error.reason)
        return await next()

    return middleware


def _replay_key(timestamp: str, signature: str) -> str:
    # The signature covers the timestamp and the body: the pair names one signed request.
    return hashlib.sha256(f"{timestamp}:{signature}".encode()).hexdigest()


def _on_message(dispatcher: Callable[[], Dispatcher], *, always: bool) -> Callable[..., Awaitable[None]]:
    async def listener(event: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext) -> None:
        if event.get("bot_id") or event.get("subtype") in _QUIET_SUBTYPES:
            return
        text = str(event.get("text") or "")
        direct = event.get("channel_type") == "im"
        # In channels only a message with an AADSTS code is ours to answer, and one that mentions the
        # bot is answered through its app_mention event, not twice.
        if not (always or direct) and (not _CODE.search(text) or f"<@{context.bot_user_id}>" in text):
            return
        channel, thread = event["channel"], event.get("thread_ts") or event["ts"]
        placeholder = await client.chat_postMessage(channel=channel, thread_ts=thread, text=CHECKING)
        diagnosis = await dispatcher().message(_inbound(text, event.get("user"), channel))
        await client.chat_update(channel=channel, ts=placeholder["ts"], **_message(diagnosis))

    return listener


def _on_command(dispatcher: Callable[[], Dispatcher]) -> Callable[..., Awaitable[None]]:
    async def listener(ack: Callable[..., Awaitable[None]], command: dict[str, Any], respond: Any) -> None:
        await ack(response_type="ephemeral", text=CHECKING)
        diagnosis = await dispatcher().message(
            _inbound(command.get("text", ""), command.get("user_id"), command.get("channel_id", ""))
        )
        await respond(replace_original=True, response_type="ephemeral", **_message(diagnosis))

    return listener


def _on_action(dispatcher: Callable[[], Dispatcher]) -> Callable[..., Awaitable[None]]:
    async def listener(
        ack: Callable[[], Awaitable[None]],
        body: dict[str, Any],
        action: dict[str, Any],
        client: AsyncWebClient,
        respond: Any,
    ) -> None:
        await ack()
        user = body.get("user") or {}
        container = body.get("container") or {}
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id", "")
        inbound = InboundAction(
            verb=str(action.get("action_id", "")),
            id=str(action.get("value", "")),
            actor=Actor("slack", str(user.get("id", "")), user.get("name")),
            conversation_id=channel,
        )
        answer = await dispatcher().action(inbound)
        if answer is None:
            return
        if isinstance(answer, Notice):  # only the person who pressed sees it; the card stays
            await respond(text=answer.text, response_type="ephemeral", replace_original=False)
            return
        ts = (body.get("message") or {}).get("ts") or container.get("message_ts")
        if container.get("is_ephemeral") or not ts:
            # An ephemeral answer (the slash command's) has no message chat.update could edit: only
            # the action's response_url can replace it.
            await respond(replace_original=True, response_type="ephemeral", **_message(answer))
            return
        await client.chat_update(channel=channel, ts=ts, **_message(answer))

    return listener


async def _on_error(error: Exception) -> None:
    # The type only: a Slack error may echo the request, and the request may hold a pasted secret.
    log.error("slack listener failed error=%s", type(error).__name__)


def _inbound(text: str, user: Any, channel: str) -> InboundMessage:
    return InboundMessage(text=text, actor=Actor("slack", str(user or "")), conversation_id=channel)


def _message(diagnosis: Diagnosis) -> dict[str, Any]:
    rendered = render_blockkit(diagnosis)
    return {"text": rendered["text"], "blocks": rendered["blocks"]}
