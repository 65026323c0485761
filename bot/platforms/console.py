"""The demo's web console: a third chat platform, served at `/` by the same aiohttp app.

Like the Slack and Teams adapters it only translates: a pasted message or a button press (JSON from
the page) becomes an Inbound object for the dispatcher, and the answer goes back rendered for Teams
(Adaptive Card), Slack (Block Kit) and as text. The page draws the Teams card with Microsoft's own
renderer, served from the project's node_modules, never from a copy in the repository.

Nothing here logs or returns pasted text, except the transcript copy with secret values cut out.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.domain import Diagnosis, Notice, NoticeReason
from bot.edge import MAX_BODY, refuse
from bot.expiry import Destination, Digest, MessageRef, Platform
from bot.platforms.dispatch import Dispatcher
from bot.preview import Assets, PreviewError
from bot.rotation_types import WORKING
from bot.warnings_post import Posters
from cards.adaptive import render_adaptive
from cards.blockkit import render_blockkit
from cards.digest_adaptive import render_digest_adaptive
from cards.digest_blockkit import render_digest_blockkit
from cards.digest_text import render_digest_text
from cards.text import render_text
from handlers.diagnose import PARSE_IN_THREAD_CHARS
from handlers.inbound import Actor, InboundAction, InboundMessage
from handlers.parse import transcript_text
from handlers.rotation_actions import from_a_warning, rotation_answer, warning_pointing_at

log = logging.getLogger(__name__)

MAX_PASTE_CHARS = 1_000_000  # the parser's measured worst case; a bigger paste is refused with 413
MAX_BODY_BYTES = 8 * MAX_PASTE_CHARS  # room for JSON escapes (up to 6 bytes for one character)
MAX_TRANSCRIPT_CHARS = 4000  # the echo of a paste in the chat is cut here; the bot reads all of it
SORRY = "Sorry, something went wrong on my side. The server log says what; please try again."
OLD_BUTTON = "This button is no longer supported. Paste the error again for a fresh answer."
_NOTICE_STATUS = {NoticeReason.EXPIRED: 410, NoticeReason.UNAVAILABLE: 503}
_STATIC = "console_page"
_CONVERSATION = "console"
CHANNEL = "warnings"  # the channel view's id: the demo's defaults destination for expiry warnings


@dataclass(frozen=True)
class Sample:
    cause: str
    title: str
    text: str


@dataclass(frozen=True)
class ConsolePerson:
    """Someone the console can act as: whoever is chosen presses the buttons and sends the pastes, so one
    page can ask for a rotation as one person and approve it as another."""

    key: str  # what the page sends as "as"
    name: str
    role: str  # shown beside the name, e.g. "asks" or "approver"
    user_id: str
    aad_object_id: str | None = None  # an Entra user of the snapshot: approver groups are checked in Graph

    def actor(self) -> Actor:
        return Actor(platform="console", user_id=self.user_id, name=self.name, aad_object_id=self.aad_object_id)


YOU = ConsolePerson("you", "You", "", "console-user")


@dataclass(frozen=True)
class ConsoleOptions:
    """What the demo tells the page about itself: the tenant it reads and the clock it uses."""

    samples: Sequence[Sample]
    tenant: str  # e.g. "Northwind Operations (bundled sample tenant)"
    clock: str  # e.g. "fixed at 2026-11-20 09:00 UTC" or "now"
    # Loopback hosts answer only to loopback names: a web page elsewhere cannot reach the console
    # by pointing its own domain at 127.0.0.1 (DNS rebinding).
    loopback_only: bool = True
    people: Sequence[ConsolePerson] = (YOU,)  # the first is who the page starts as


OPTIONS = web.AppKey("console_options", ConsoleOptions)
# () -> whether rotation is offered and which of its parts are local fakes (bot.app's /readyz words)
ROTATION: web.AppKey[Callable[[], str]] = web.AppKey("console_rotation")
ASSETS = web.AppKey("console_assets", object)  # Assets, or the PreviewError saying what is missing


class ConsoleChannel:
    """The channel view's messages, in memory: warning digests as the scan posts and updates them,
    and the "could not scan" notices. A `DigestPoster` (bot.warnings_post)."""

    def __init__(self) -> None:
        self.messages: dict[str, Digest | str] = {}

    async def prepare(self, digest: Digest) -> Digest:
        return digest

    async def post(self, digest: Digest) -> str:
        message_id = f"m{len(self.messages) + 1}"
        self.messages[message_id] = digest
        return message_id

    async def find(self, digest: Digest) -> str | None:
        return next((k for k, v in self.messages.items() if isinstance(v, Digest) and v.id == digest.id), None)

    async def update(self, message: MessageRef, digest: Digest) -> None:
        self.messages[message.message_id] = digest

    async def notice(self, destination: Destination, text: str) -> None:
        self.messages[f"m{len(self.messages) + 1}"] = text

    def redrawn(self, digest: Digest) -> None:
        """A button changed a digest: its message shows the new one (as chat.update would)."""
        for message_id, shown in self.messages.items():
            if isinstance(shown, Digest) and shown.id == digest.id:
                self.messages[message_id] = digest

    def view(self) -> list[dict[str, Any]]:
        return [
            {"id": message_id, "answer": _digest_answer(shown)}
            if isinstance(shown, Digest)
            else {"id": message_id, "text": shown}
            for message_id, shown in self.messages.items()
        ]


def register(
    app: web.Application,
    options: ConsoleOptions,
    dispatcher: Callable[[], Dispatcher],
    run_scan: Callable[[], Awaitable[None]] | None = None,
    posters: Posters | None = None,
    rotation: Callable[[], str] = lambda: "not offered",
) -> None:
    """`run_scan` runs the expiry scan at once ("Run the scan now"); its warnings arrive in the
    channel view, which joins `posters`. `rotation` says whether rotation is offered and which of its
    parts are local fakes (shown on the page)."""
    channel = ConsoleChannel()
    if posters is not None:
        posters[Platform.CONSOLE] = channel
    app.router.add_get("/", _page)
    # A sub-application, so that its guard covers the console and nothing else.
    console = web.Application(middlewares=[_guard])
    console[OPTIONS] = options
    console[MAX_BODY] = MAX_BODY_BYTES
    console[ASSETS] = _find_assets()
    console[ROTATION] = rotation
    console.router.add_static("/static", _static_dir(), append_version=True)
    console.router.add_get("/vendor/{name}", _vendor)
    console.router.add_get("/api/about", _about)
    console.router.add_post("/api/messages", _handler(lambda body: _message(body, dispatcher(), options)))
    console.router.add_post("/api/actions", _handler(lambda body: _action(body, dispatcher(), channel, options)))
    console.router.add_get("/api/rotations/{id}", lambda request: _rotation(request, dispatcher()))
    console.router.add_get("/api/channel", lambda _request: _channel(channel))
    if run_scan is not None:
        console.router.add_post("/api/scan", _handler(lambda _body: _scan(run_scan, channel)))
    app.add_subapp("/console", console)


# --- translation ------------------------------------------------------------------------------


def _person(body: dict[str, Any], options: ConsoleOptions) -> ConsolePerson | None:
    """Who the page acts as: its "as", or the first person when it names nobody."""
    wanted = body.get("as")
    if wanted is None:
        return options.people[0]
    return next((p for p in options.people if p.key == wanted), None)


async def _message(body: dict[str, Any], dispatcher: Dispatcher, options: ConsoleOptions) -> web.Response:
    text, person = body.get("text"), _person(body, options)
    if not isinstance(text, str):
        return _error(400, "Send the paste as {'text': '…'}.")
    if person is None:
        return _error(400, "Nobody of that name is in this demo.")
    message = InboundMessage(text=text, actor=person.actor(), conversation_id=_CONVERSATION)
    diagnosis = await dispatcher.message(message)
    # The same redaction the parser ran, and off the event loop for the same large pastes.
    big = len(text) > PARSE_IN_THREAD_CHARS
    shown = await asyncio.to_thread(transcript_text, text) if big else transcript_text(text)
    you = {
        "text": shown if len(shown) <= MAX_TRANSCRIPT_CHARS else shown[:MAX_TRANSCRIPT_CHARS] + "\n…",
        "secret_removed": diagnosis.input.secret_value_detected,
    }
    return web.json_response({"you": you, "answer": _answer(diagnosis)})


async def _channel(channel: ConsoleChannel) -> web.Response:
    return web.json_response({"messages": channel.view()})


async def _scan(run_scan: Callable[[], Awaitable[None]], channel: ConsoleChannel) -> web.Response:
    await run_scan()
    return await _channel(channel)


async def _rotation(request: web.Request, dispatcher: Dispatcher) -> web.Response:
    """A rotation's card as it is now: the page asks again while the worker moves it on (where Slack and
    Teams have the worker update the message)."""
    rotations = dispatcher.deps.rotations
    rotation = await rotations.store.get(request.match_info["id"][:64]) if rotations else None
    if rotation is None:
        return _error(404, "There is no such rotation request.")
    return web.json_response({"answer": _answer(await rotation_answer(rotation, dispatcher.deps))})


async def _action(
    body: dict[str, Any], dispatcher: Dispatcher, channel: ConsoleChannel, options: ConsoleOptions
) -> web.Response:
    verb, ident, person = body.get("verb"), body.get("id"), _person(body, options)
    if not (isinstance(verb, str) and isinstance(ident, str)):
        return _error(400, "Send the button as {'verb': '…', 'id': '…'}.")
    if person is None:
        return _error(400, "Nobody of that name is in this demo.")
    action = InboundAction(verb=verb, id=ident, actor=person.actor(), conversation_id=_CONVERSATION)
    answer = await dispatcher.action(action)
    if answer is None:
        return _error(404, OLD_BUTTON)
    if isinstance(answer, Notice) and answer.reason is NoticeReason.NOT_SET_UP:
        return web.json_response({"notice": answer.text})  # an answer, not a failure: the card stays
    if isinstance(answer, Notice) and answer.reason is NoticeReason.REFUSED:
        # For the presser only (Slack answers it ephemerally): the page shows it to that person.
        return web.json_response({"notice": answer.text, "for": person.key})
    if isinstance(answer, Notice):  # the page shows the text under the card and keeps the card
        return _error(_NOTICE_STATUS[answer.reason], answer.text)
    if isinstance(answer, Digest):
        channel.redrawn(answer)
        return web.json_response({"answer": _digest_answer(answer)})
    if answer.rotation is not None and from_a_warning(verb, ident):
        # As on Slack and Teams: the warning stays, pointing at the request, which the page shows below it.
        warning = await warning_pointing_at(ident, answer.rotation, dispatcher.deps)
        if warning is not None:
            channel.redrawn(warning)
            return web.json_response({"answer": _digest_answer(warning), "request": _answer(answer)})
    return web.json_response({"answer": _answer(answer)})


def _digest_answer(digest: Digest) -> dict[str, Any]:
    return {
        "cause": "expiry_warning",
        "teams": render_digest_adaptive(digest),
        "slack": render_digest_blockkit(digest),
        "text": render_digest_text(digest),
    }


def _answer(diagnosis: Diagnosis) -> dict[str, Any]:
    primary, rotation = diagnosis.primary, diagnosis.rotation
    answer: dict[str, Any] = {
        "cause": primary.cause.value if primary else ("rotation" if rotation else None),
        "teams": render_adaptive(diagnosis),
        "slack": render_blockkit(diagnosis),
        "text": render_text(diagnosis),
    }
    if rotation is not None:  # the page follows a rotation the worker is moving on
        answer["rotation"] = {"id": rotation.id, "state": rotation.state.value, "working": rotation.state in WORKING}
    return answer


def _handler(
    translate: Callable[[dict[str, Any]], Awaitable[web.Response]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            # A page on another site can post forms and plain text here without asking; JSON it cannot.
            return _error(415, "The console accepts application/json only.")
        raw = await request.read()  # read by bot.edge already, up to MAX_BODY_BYTES
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(400, "The request body is not JSON.")
        if not isinstance(body, dict):
            return _error(400, "The request body must be a JSON object.")
        if len(str(body.get("text", ""))) > MAX_PASTE_CHARS:
            return _error(413, "That paste is too large; the console reads up to 1 MB.")
        try:
            return await translate(body)
        except Exception as error:
            # The type only: a message could quote the paste.
            log.error("console request failed error=%s", type(error).__name__)
            return _error(500, SORRY)

    return handle


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


# --- the page ---------------------------------------------------------------------------------


async def _page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(_static_dir() / "index.html", headers=_PAGE_HEADERS)


async def _about(request: web.Request) -> web.Response:
    options = request.app[OPTIONS]
    assets = request.app[ASSETS]
    return web.json_response(
        {
            "tenant": options.tenant,
            "clock": options.clock,
            "samples": [{"cause": s.cause, "title": s.title, "text": s.text} for s in options.samples],
            "people": [{"key": p.key, "name": p.name, "role": p.role} for p in options.people],
            "rotation": request.app[ROTATION](),
            # When the renderer is missing, the page says how to install it and shows text instead.
            "renderer": None if isinstance(assets, Assets) else str(assets),
        }
    )


async def _vendor(request: web.Request) -> web.StreamResponse:
    assets = request.app[ASSETS]
    files = _vendor_files(assets) if isinstance(assets, Assets) else {}
    path = files.get(request.match_info["name"])
    if path is None:
        raise web.HTTPNotFound(text=str(assets) if not isinstance(assets, Assets) else "no such file")
    return web.FileResponse(path, headers={"Cache-Control": "max-age=3600"})


def _vendor_files(assets: Assets) -> dict[str, Path]:
    return {
        "adaptivecards.min.js": assets.renderer,
        "markdown-it.min.js": assets.markdown,
        "teams-host-config.json": assets.host_config,
        "teams-container.css": assets.css,
    }


def _find_assets() -> Assets | PreviewError:
    try:
        return Assets.find()
    except PreviewError as missing:
        log.warning("console: %s; the console shows text answers until then", missing)
        return missing


def _static_dir() -> Path:
    return Path(str(resources.files(__package__).joinpath(_STATIC)))


# Only our own files run on the page; cards are drawn as DOM by the renderer, never as raw HTML.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


# --- who may talk to the console --------------------------------------------------------------


@web.middleware
async def loopback_only(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """For a server on loopback (`ConsoleOptions.loopback_only`), on every route: only requests made to
    a loopback name are served, so a page elsewhere cannot reach any of it by pointing its own
    domain at 127.0.0.1 (DNS rebinding)."""
    if not is_loopback(request.url.host or ""):
        return refuse(403, "The demo console answers on 127.0.0.1 or localhost only.")
    return await handler(request)


@web.middleware
async def _guard(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    origin = request.headers.get("Origin")
    if request.method == "POST" and origin is not None and origin != f"{request.scheme}://{request.host}":
        return refuse(403, "Requests from other sites are refused.")
    return await handler(request)


def is_loopback(host: str) -> bool:
    """A host name or address (no port) that only reaches this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
