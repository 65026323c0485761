"""A local stand-in for the Bot Framework connector (the activity's `serviceUrl`): records what the bot sends."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class ConnectorCall:
    method: str
    path: str
    body: dict[str, Any]
    authorization: str | None
    raw: str  # the body as sent, to search for text that must never leave the bot
    id: str = ""  # the activity id the fake answered with: a new post's, or the updated one's


@dataclass
class FakeConnector:
    calls: list[ConnectorCall] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    server: TestServer | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v3/conversations/{conversation}/activities", self._activity)
        app.router.add_post("/v3/conversations/{conversation}/activities/{reply_to}", self._activity)
        app.router.add_put("/v3/conversations/{conversation}/activities/{activity}", self._activity)
        self.server = TestServer(app, host="127.0.0.1", port=0)
        await self.server.start_server()
        return self.url

    async def stop(self) -> None:
        if self.server:
            await self.server.close()

    @property
    def url(self) -> str:
        """The serviceUrl to put into activities, with the trailing slash Teams uses."""
        assert self.server is not None
        return str(self.server.make_url("/"))

    def sent(self, kind: str = "message", method: str = "POST") -> list[ConnectorCall]:
        return [c for c in self.calls if c.method == method and c.body.get("type") == kind]

    async def _activity(self, request: web.Request) -> web.Response:
        raw = await request.text()
        activity = request.match_info.get("activity") or f"1700000000{next(self._ids):03d}"
        self.calls.append(
            ConnectorCall(
                request.method, request.path, json.loads(raw), request.headers.get("Authorization"), raw, activity
            )
        )
        return web.json_response({"id": activity})
