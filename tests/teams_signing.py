"""Microsoft's signing-key endpoint, played by a local server, so tests can send really signed tokens.

The Agents SDK names the key sets it wants by Microsoft's URLs (for Bot Framework tokens
https://login.botframework.com/v1/.well-known/keys). The bot fetches them through its own cache
(`bot.platforms.teams_auth.SigningKeys`), which a test can point at one local URL instead: that is
`teams_auth.key_endpoint_for_tests`, read when the app is created. Only code can set it, on purpose:
nothing in `serve` does and no environment variable reaches it.

The server counts the requests it gets (`hits`), so tests can tell which tokens made the bot fetch
keys; with `hang=True` it takes requests and never answers, like an unreachable endpoint.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.platforms import teams_auth


class KeyServer:
    def __init__(self, jwks: dict[str, Any], *, hang: bool = False) -> None:
        self.jwks = jwks
        self.hang = hang
        self.hits = 0
        self.url = ""
        self._release = asyncio.Event()
        self._server: TestServer | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/keys", self._keys)
        self._server = TestServer(app, host="127.0.0.1", port=0)
        await self._server.start_server()
        self.url = str(self._server.make_url("/keys"))

    async def stop(self) -> None:
        self._release.set()  # a hanging request ends, so the server can close
        if self._server is not None:
            await self._server.close()

    async def _keys(self, request: web.Request) -> web.Response:
        self.hits += 1
        if self.hang:
            await self._release.wait()
        return web.json_response(self.jwks)


@asynccontextmanager
async def serving_signing_keys(jwks: dict[str, Any], *, hang: bool = False) -> AsyncIterator[KeyServer]:
    """Within the block, apps created fetch every signing-key set from a local server serving `jwks`
    (a JSON Web Key Set: `{"keys": [{"kid", "kty", "n", "e", …}]}`). Everything else the validator
    does (signature, expiry, audience, issuer) stays as it is."""
    server = KeyServer(jwks, hang=hang)
    await server.start()
    previous = teams_auth.key_endpoint_for_tests
    teams_auth.key_endpoint_for_tests = server.url
    try:
        yield server
    finally:
        teams_auth.key_endpoint_for_tests = previous
        await server.stop()
