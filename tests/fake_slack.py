"""A local stand-in for the Slack Web API: records every call and answers like Slack does."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.test_utils import TestServer

BOT_USER = "U0SECRETBOT"


@dataclass
class SlackCall:
    method: str
    args: dict[str, Any]
    authorization: str | None
    connection: int | None = None  # which TCP connection the call came on: 1, 2, … in order of arrival
    answered: bool = True  # False while the fake holds the call (see `FakeSlack.hold`)
    at: float = 0.0  # when it arrived (time.monotonic)
    ts: str | None = None  # the message ts a chat.postMessage or chat.update answered with
    posted_at: float = 0.0  # when it arrived (time.time): what conversations.history's `oldest` compares


@dataclass
class FakeSlack:
    calls: list[SlackCall] = field(default_factory=list)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    server: TestServer | None = None
    _connections: dict[asyncio.BaseTransport, int] = field(default_factory=dict)  # kept: numbers stay unique
    _holds: dict[str, int] = field(default_factory=dict)
    _released: asyncio.Event = field(default_factory=asyncio.Event)
    _applied: bool = True
    # users.lookupByEmail: address (lower-case) -> user id; any other address is `users_not_found`.
    users: dict[str, str] = field(default_factory=dict)
    lookup_error: str | None = None  # e.g. "missing_scope": an install made before users:read.email
    # Slack's chat.postMessage limit, when set: a channel's second message within this many seconds
    # gets 429 with Retry-After (whole seconds, as Slack sends it).
    per_channel_seconds: float | None = None
    refused: int = 0  # messages answered 429
    _last_post: dict[str, float] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)  # user id -> profile email, for users.info
    # channel -> the error Slack gives a bot that cannot post or read there (not_in_channel,
    # channel_not_found, is_archived): chat.postMessage and conversations.history answer it.
    refusing: dict[str, str] = field(default_factory=dict)
    # method -> (calls left to refuse, Retry-After seconds): Slack's other limits (per method, per
    # workspace) answer 429 whatever the channel's pace; see `throttle`.
    _throttled: dict[str, tuple[int, int]] = field(default_factory=dict)
    _failing: dict[str, tuple[int, str]] = field(default_factory=dict)  # method -> (calls left, error)

    def hold(self, method: str, count: int = 1) -> None:
        """Leave the next `count` calls of `method` waiting, as a slow Slack would: `release()` then
        answers them, `drop()` ends them unapplied (their caller died before Slack acted on them)."""
        self._holds[method] = count

    def throttle(self, method: str, times: int, retry_after: int) -> None:
        """Answer the next `times` calls of `method` 429 with `Retry-After: retry_after` (whole
        seconds, as Slack sends it), counted in `refused`."""
        self._throttled[method] = (times, retry_after)

    def fail(self, method: str, times: int, error: str) -> None:
        """Answer the next `times` calls of `method` with `{"ok": false, "error": error}`."""
        self._failing[method] = (times, error)

    def release(self) -> None:
        self._released.set()

    def drop(self) -> None:
        self._applied = False
        self._released.set()

    def delivered(self, method: str) -> list[dict[str, Any]]:
        """Calls of `method` that Slack answered (a held call whose caller died never was)."""
        return [c.args for c in self.calls if c.method == method and c.answered]

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        # slack_sdk reads some methods with GET (users.lookupByEmail, users.info)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_post("/response/{id}", self._response_url)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return str(self.server.make_url("/api/"))

    async def stop(self) -> None:
        if self.server:
            await self.server.close()

    def url(self, path: str) -> str:
        assert self.server is not None
        return str(self.server.make_url(path))

    def called(self, method: str) -> list[dict[str, Any]]:
        return [c.args for c in self.calls if c.method == method]

    def api_connections(self) -> int:
        """How many TCP connections the Web API calls so far arrived on."""
        return len({c.connection for c in self.calls if c.method != "response_url"})

    def open_connections(self) -> int:
        """Client connections the server holds open right now (kept alive or busy)."""
        assert self.server is not None and self.server.runner is not None and self.server.runner.server is not None
        return len(self.server.runner.server.connections)

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _arguments(request)
        call = SlackCall(method, args, request.headers.get("Authorization"), self._connection(request))
        call.at, call.posted_at = time.monotonic(), time.time()
        self.calls.append(call)
        if self._holds.get(method):
            self._holds[method] -= 1
            call.answered = False
            await self._released.wait()
            if not self._applied:
                return web.Response(status=499)
            call.answered = True
        failures, error = self._failing.get(method, (0, ""))
        if failures:
            self._failing[method] = (failures - 1, error)
            call.answered = False
            return web.json_response({"ok": False, "error": error})
        left, retry_after = self._throttled.get(method, (0, 0))
        if left:
            self._throttled[method] = (left - 1, retry_after)
            self.refused += 1
            call.answered = False
            headers = {"Retry-After": str(retry_after)}
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429, headers=headers)
        if method == "auth.test":
            return web.json_response({"ok": True, "user_id": BOT_USER, "bot_id": "B0SECRETBOT", "team_id": "T0TEAM"})
        if method == "users.lookupByEmail" and self.lookup_error:
            return web.json_response({"ok": False, "error": self.lookup_error})
        if method == "users.lookupByEmail":
            user = self.users.get(str(args.get("email", "")).lower())
            if user is None:
                return web.json_response({"ok": False, "error": "users_not_found"})
            return web.json_response({"ok": True, "user": {"id": user, "name": user.lower()}})
        refused = self.refusing.get(str(args.get("channel")))
        if method in ("chat.postMessage", "conversations.history") and refused:
            call.answered = False
            return web.json_response({"ok": False, "error": refused})
        if method in ("chat.postMessage", "chat.update") and self.per_channel_seconds is not None:
            channel = str(args.get("channel"))
            last = self._last_post.get(channel)
            if last is not None and call.at - last < self.per_channel_seconds:
                self.refused += 1
                call.answered = False
                return web.json_response(
                    {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "1"}
                )
            self._last_post[channel] = call.at
        if method in ("chat.postMessage", "chat.update"):
            ts = args.get("ts") or f"1700000000.{next(self._ts):06d}"
            call.ts = ts
            return web.json_response({"ok": True, "channel": args.get("channel"), "ts": ts})
        if method == "conversations.history":
            return web.json_response({"ok": True, "messages": self._history(args), "has_more": False})
        if method == "users.info" and args.get("user") in self.emails:
            profile = {"email": self.emails[args["user"]]}
            return web.json_response({"ok": True, "user": {"id": args["user"], "profile": profile}})
        return web.json_response({"ok": False, "error": "unknown_method"})

    def _history(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        """The channel's messages that Slack accepted, newest first, with their metadata when asked."""
        oldest = float(args.get("oldest") or 0)
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        found = []
        for call in reversed(self.calls):
            if call.method != "chat.postMessage" or not call.answered or call.ts is None:
                continue
            if call.args.get("channel") != args.get("channel") or call.posted_at < oldest:
                continue
            message = {"type": "message", "ts": call.ts, "text": call.args.get("text", ""), "bot_id": "B0SECRETBOT"}
            if with_metadata and isinstance(call.args.get("metadata"), dict):
                message["metadata"] = call.args["metadata"]
            found.append(message)
        return found

    def _connection(self, request: web.Request) -> int | None:
        # Keyed by the transport object, not the client's port: loopback reuses ports at once.
        if request.transport is None:
            return None
        return self._connections.setdefault(request.transport, len(self._connections) + 1)

    async def _response_url(self, request: web.Request) -> web.Response:
        self.calls.append(SlackCall("response_url", await request.json(), None))
        return web.json_response({"ok": True})


async def _arguments(request: web.Request) -> dict[str, Any]:
    if request.method == "GET":
        return dict(request.query)
    raw = await request.text()
    if request.content_type == "application/json":
        return dict(json.loads(raw or "{}"))
    args: dict[str, Any] = dict(parse_qsl(raw)) | dict(request.query)
    for key in ("blocks", "attachments"):
        if isinstance(args.get(key), str):
            args[key] = json.loads(args[key])
    return args
