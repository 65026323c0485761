"""`GraphHttp`: requests to Microsoft Graph over aiohttp, the diagnosis's `$batch` and the bulk
reader's pages.

The hot path posts one prepared JSON body and reads one JSON answer, so it needs no request
builders or models; msgraph-sdk's httpx transport cost about five times the CPU per diagnosis here
(docs/decisions.md). Authentication is the same azure-identity credential msgraph-sdk would use.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self

from bot.domain import DirectoryError, DirectoryUnavailable, GraphAuthFailed
from bot.graph.hosts import MAX_IN_FLIGHT, scope_origin

if TYPE_CHECKING:
    import aiohttp
    from azure.core.credentials import AccessToken
    from azure.core.exceptions import AzureError
    from yarl import URL

REQUEST_TIMEOUT = 30.0  # seconds for one request, connection and answer included
# A token is renewed this long before it expires, so no request leaves with one about to lapse.
TOKEN_RENEW_BEFORE = 300.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GraphReply:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes


class GraphPoster(Protocol):
    """What `GraphDirectory` posts its `$batch` through: `GraphHttp`, or the snapshot's fake Graph in
    this process (`bot.fakegraph.local.LocalGraph`)."""

    async def post(self, path: str, body: bytes) -> GraphReply: ...


class GraphHttp:
    """One aiohttp session (at most `max_connections` open, kept alive) and one cached token for a Graph host.

    `credential` is an azure-identity async credential (for the fake Graph, `LocalBearer`). Most of
    them cache tokens themselves, but not all (AzureCliCredential runs `az` on every call), so the
    token is kept here until shortly before it expires, and one refresh serves every request waiting
    for it.
    """

    def __init__(
        self, base_url: str, credential: Any, *, max_connections: int = MAX_IN_FLIGHT, timeout: float = REQUEST_TIMEOUT
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._credential = credential
        self._scope = f"{scope_origin(self.base_url)}/.default"  # a national cloud issues tokens for its own Graph
        self._max_connections = max_connections
        self._timeout = timeout  # seconds for one request, connection and answer included
        self._session: aiohttp.ClientSession | None = None
        self._token: AccessToken | None = None
        self._token_lock = asyncio.Lock()

    async def post(self, path: str, body: bytes) -> GraphReply:
        """POST a JSON `body` to `{base_url}{path}` (e.g. "/v1.0/$batch").

        Raises azure-identity's errors when no token can be had, aiohttp's or TimeoutError when
        Graph cannot be reached; any HTTP status is returned, not raised.
        """
        from yarl import URL  # comes with aiohttp, which `_send` needs anyway

        return await self._send("POST", URL(self.base_url + path, encoded=True), body, max_bytes=None)

    async def get(self, url: URL, *, max_bytes: int) -> GraphReply:
        """GET `url` (a page of a collection), as `post` does; `DirectoryUnavailable` for an answer
        larger than `max_bytes`, which is not read further."""
        return await self._send("GET", url, None, max_bytes=max_bytes)

    async def _send(self, method: str, url: URL, body: bytes | None, *, max_bytes: int | None) -> GraphReply:
        headers = {"Authorization": f"Bearer {await self._bearer()}", "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        session = self._session or self._open()
        started = time.perf_counter()
        async with session.request(method, url, data=body, headers=headers, allow_redirects=False) as response:
            data = await response.read() if max_bytes is None else await _bounded(response, max_bytes)
        # Per request only when debugging: at INFO one line per diagnosis says enough (and costs less).
        log.debug("graph %s %s %d %.1f ms", method, url.path, response.status, (time.perf_counter() - started) * 1000)
        return GraphReply(response.status, {k.lower(): v for k, v in response.headers.items()}, data)

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _open(self) -> aiohttp.ClientSession:
        # Opened on first use, inside the running loop; every connection is kept alive for the next batch.
        import aiohttp  # ~0.1 s: here, so a module that only names this class does not pay for it

        connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=self._max_connections)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self._timeout), raise_for_status=False
        )
        return self._session

    async def _bearer(self) -> str:
        token = self._token
        if token is None or _renew_due(token):
            async with self._token_lock:
                token = self._token
                if token is None or _renew_due(token):
                    token = self._token = await self._credential.get_token(self._scope)
        return token.token


async def _bounded(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    too_large = DirectoryUnavailable(f"Microsoft Graph sent an answer larger than {max_bytes} bytes")
    if response.content_length is not None and response.content_length > max_bytes:
        raise too_large
    chunks, size = [], 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > max_bytes:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _renew_due(token: AccessToken) -> bool:
    return token.expires_on - TOKEN_RENEW_BEFORE <= time.time()


_AADSTS = re.compile(r"AADSTS\d+")  # codes run to 7 digits (AADSTS7000215)


def unreachable_errors() -> type[Exception]:
    """What `GraphHttp` raises when Graph cannot be reached (besides TimeoutError), for an `except`
    clause: evaluated only once something was raised, so a directory that never met aiohttp (the
    snapshot's in-process fake) does not import it."""
    from aiohttp import ClientError

    return ClientError


def credential_errors() -> type[AzureError]:
    """What azure-identity's credentials raise, for an `except` clause. Python evaluates the clause
    only once something was raised, so azure-core (~20 ms to import) is loaded only then: the fake
    Graph's token (`secretbot diagnose --snapshot`) never needs it."""
    from azure.core.exceptions import AzureError

    return AzureError


def token_error(error: AzureError, credential_source: str) -> DirectoryError:
    """No token for Graph: Entra refused the bot's own credential (its message may quote the
    request, so only the AADSTS code is kept), or the token endpoint could not be reached."""
    from azure.core.exceptions import ClientAuthenticationError  # loaded by the error being handled

    if isinstance(error, ClientAuthenticationError):
        code = _AADSTS.search(str(error))
        return GraphAuthFailed(credential_source, f" (no token: {code.group()})" if code else " (no token)")
    return DirectoryUnavailable(f"no token for Microsoft Graph ({type(error).__name__})")
