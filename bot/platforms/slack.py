"""Slack adapter: Bolt's AsyncApp mounted in our aiohttp app (or over Socket Mode).

It only translates: Slack events, slash commands and button clicks become jobs on the queue, which a
worker answers (`slack_jobs`). Message events, nearly all that Slack sends, take a quicker way past
Bolt to the same listener (`slack_messages`). Every HTTP request's signature and timestamp are
verified here before its body is parsed (Bolt's own check comes after its parsing). The ack waits until the work is
queued, so a web process that dies before it leaves Slack to deliver the event again. A signed
request is served once: Slack's retries by the answer job's key and claim, a replayed request by its
signature.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain import StateUnavailable
from bot.edge import refuse
from bot.expiry import Platform
from bot.jobs.payloads import asked_to_json
from bot.jobs.queue import JobQueue
from bot.jobs.worker import JobFunction, JobTable, RunningJob
from bot.platforms.dispatch import Dispatcher
from bot.platforms.slack_jobs import ACTION, CHECKING, COMMAND, SlackJobs
from bot.platforms.slack_messages import MessageEvents
from bot.platforms.slack_warnings import SlackDigests
from bot.ports import StateStore
from bot.settings import Settings
from bot.state import keys
from bot.warnings_post import POSTERS
from handlers.conversation import read

log = logging.getLogger(__name__)

BOLT = web.AppKey("slack_bolt", AsyncApp)
VERIFIER = web.AppKey("slack_verifier", SignatureVerifier)
MESSAGES = web.AppKey("slack_messages", MessageEvents)
# Slack's own rule: a request whose timestamp is further than this from our clock is refused, so a
# captured request cannot be replayed later (and within it, its claim refuses a second delivery).
SIGNATURE_WINDOW_SECONDS = 5 * 60
# Events come as JSON; slash commands and interactivity as forms.
_FORM = "application/x-www-form-urlencoded"  # slash commands and interactivity
_JSON = "application/json"  # the Events API
_SLACK_CONTENT_TYPES = frozenset({_JSON, _FORM})
_VERB = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")  # a verb that can name a job key; others are not ours
# slack_sdk's own limit per Web API call when it makes its session; a shared session must set it itself
# (aiohttp's default is 5 minutes).
WEB_API_TIMEOUT = 30.0


def register(
    app: web.Application,
    settings: Settings,
    dispatcher: Callable[[], Dispatcher],
    state: Callable[[], StateStore],
    jobs: Callable[[], JobQueue],
    table: JobTable,
    *,
    receive: bool = True,
) -> None:
    """Slack's jobs join `table` (for this process's worker); with `receive`, the app also takes
    Slack's requests (HTTP endpoint and/or Socket Mode). A worker alone only sends."""
    if not settings.slack_enabled:
        return
    app.cleanup_ctx.append(_lifecycle(settings, dispatcher, state, jobs, table, receive))
    if receive and settings.slack_signing_secret:  # without it Slack is on Socket Mode only: no HTTP endpoint
        app[VERIFIER] = SignatureVerifier(settings.slack_signing_secret)
        app.router.add_post("/slack/events", _events(state))


def _lifecycle(
    settings: Settings,
    dispatcher: Callable[[], Dispatcher],
    state: Callable[[], StateStore],
    jobs: Callable[[], JobQueue],
    table: JobTable,
    receive: bool,
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        # One session for every Web API call, kept for the app's lifetime: without it slack_sdk opens
        # (and closes) a session per call, a new TCP and TLS handshake for each of the two calls per
        # answer. Bolt's per-request clients copy the session from this client.
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WEB_API_TIMEOUT)) as session:
            client = AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, session=session)
            work = SlackJobs(client, dispatcher, state)
            table.functions.update(work.table())
            if POSTERS in app:
                app[POSTERS][Platform.SLACK] = SlackDigests(client, state().warnings)
            if not receive:
                yield
                return
            # Signatures are checked by _events before the body is parsed; Bolt would check them again.
            # Listeners run before the response: Slack's ack then means the work is safely queued.
            bolt = AsyncApp(
                client=client,
                signing_secret=settings.slack_signing_secret or None,
                request_verification_enabled=False,
                process_before_response=True,
            )
            queueing = _Queueing(jobs, work)
            messages = app[MESSAGES] = MessageEvents(client, queueing)
            _listen(bolt, queueing, messages)
            app[BOLT] = bolt
            socket = None
            if settings.slack_app_token:  # Socket Mode: for installs behind a firewall, no public URL
                socket = AsyncSocketModeHandler(bolt, settings.slack_app_token)
                await socket.connect_async()  # type: ignore[no-untyped-call]  # slack_bolt leaves it unannotated
            yield
            if socket is not None:
                await socket.close_async()  # type: ignore[no-untyped-call]

    return context


class _Queueing:
    """Puts Slack's work on the queue; when the queue's Redis does not answer, runs it here instead
    (once, without de-duplication), so a paste is answered even then."""

    def __init__(self, jobs: Callable[[], JobQueue], work: SlackJobs) -> None:
        self._jobs = jobs
        self._table = work.table()
        self._here: set[asyncio.Task[None]] = set()

    async def __call__(self, function: str, key: str, **payload: Any) -> None:
        try:
            if not await self._jobs().enqueue(function, key=key, **payload):
                log.info("slack work already queued function=%s", function)
            return
        except StateUnavailable as error:
            log.warning("job queue unavailable (%s): answering in this process", error.reason)
        task = asyncio.create_task(self._run_here(self._table[function], payload))
        self._here.add(task)
        task.add_done_callback(self._here.discard)

    @staticmethod
    async def _run_here(function: JobFunction, payload: dict[str, Any]) -> None:
        try:
            await function(RunningJob(), **payload)
        except Exception as error:
            log.error("slack work failed error=%s", type(error).__name__)


Enqueue = Callable[..., Awaitable[None]]


def _events(state: Callable[[], StateStore]) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        body = await request.read()  # read within bot.edge's bounds before this handler runs
        timestamp, signature = (
            request.headers.get("X-Slack-Request-Timestamp"),
            request.headers.get("X-Slack-Signature"),
        )
        problem = _unverified(request.app[VERIFIER], body, timestamp, signature)
        if problem:
            return refuse(401, f"slack request not verified: {problem}", answer="not a verified Slack request")
        if request.content_type not in _SLACK_CONTENT_TYPES:
            return refuse(400, "signed slack request with a malformed body (content type)")
        if request.content_type == _FORM and await _replayed(state, str(timestamp), str(signature)):
            return web.Response(status=200)
        if request.content_type == _JSON and (acked := await request.app[MESSAGES].take(body)) is not None:
            return acked
        try:
            # Bolt parses the body as it builds its request; a signed body that is not a Slack payload
            # (not JSON or a form, or JSON that is not an object) fails there.
            bolt_request = AsyncBoltRequest(
                body=body.decode(), query=request.query_string, headers=dict(request.headers)
            )
        except (ValueError, AttributeError, TypeError):
            return refuse(400, "signed slack request with a malformed body")
        return await to_aiohttp_response(await request.app[BOLT].async_dispatch(bolt_request))

    return handler


async def _replayed(state: Callable[[], StateStore], timestamp: str, signature: str) -> bool:
    """A signed request is served once, on any replica. Slash commands and button clicks come as forms
    and have no event id: one captured and sent again inside the signature window carries the same
    timestamp and signature, so that pair is claimed. Events come as JSON and are not claimed here:
    Slack retries an event it saw no ack for, and its answer job's key and claim (slack_jobs) make all
    deliveries one answer, also when this process dies between receiving and queueing it."""
    try:
        if not await state().claim("slack-request", _replay_key(timestamp, signature)):
            log.warning("replayed slack request dropped")
            return True
    except StateUnavailable as error:
        log.warning("state store unavailable (%s): answering without de-duplication", error.reason)
    return False


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


def _listen(bolt: AsyncApp, enqueue: Enqueue, messages: MessageEvents) -> None:
    messages.listen(bolt)
    bolt.command("/secretbot")(_on_command(enqueue))
    bolt.action(re.compile(r".+"))(_on_action(enqueue))
    bolt.error(_on_error)


def _replay_key(timestamp: str, signature: str) -> str:
    # The signature covers the timestamp and the body: the pair names one signed request.
    return hashlib.sha256(f"{timestamp}:{signature}".encode()).hexdigest()


def _on_command(enqueue: Enqueue) -> Callable[..., Awaitable[None]]:
    async def listener(ack: Callable[..., Awaitable[None]], command: dict[str, Any]) -> None:
        await enqueue(
            COMMAND,
            keys.answer_job_key("slack", f"command-{command.get('trigger_id') or uuid.uuid4().hex}"),
            asked=asked_to_json(await read(str(command.get("text") or ""))),
            channel=str(command.get("channel_id") or ""),
            user=str(command.get("user_id") or ""),
            response_url=str(command.get("response_url") or ""),
        )
        await ack(response_type="ephemeral", text=CHECKING)

    return listener


def _on_action(enqueue: Enqueue) -> Callable[..., Awaitable[None]]:
    async def listener(ack: Callable[[], Awaitable[None]], body: dict[str, Any], action: dict[str, Any]) -> None:
        user = body.get("user") or {}
        container = body.get("container") or {}
        channel = str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")
        ts = (body.get("message") or {}).get("ts") or container.get("message_ts")
        verb, item = str(action.get("action_id", "")), str(action.get("value", ""))
        message_id = str(ts or body.get("trigger_id") or uuid.uuid4().hex)
        await enqueue(
            ACTION,
            # Per presser: a double click is one job, two people's clicks (requester, approver) are two.
            keys.action_job_key(
                "slack",
                f"{channel}-{message_id}-{user.get('id', '')}",
                verb if _VERB.fullmatch(verb) else "unknown",
                item,
            ),
            verb=verb[:64],
            item=item[:256],
            user=str(user.get("id", "")),
            user_name=user.get("name"),
            channel=channel,
            ts=str(ts) if ts else None,
            # An ephemeral card (the slash command's) has no message chat.update could edit: only the
            # action's response_url can replace it.
            ephemeral=bool(container.get("is_ephemeral")),
            response_url=body.get("response_url"),
        )
        await ack()

    return listener


async def _on_error(error: Exception) -> None:
    # The type only: a Slack error may echo the request, and the request may hold a pasted secret.
    log.error("slack listener failed error=%s", type(error).__name__)
