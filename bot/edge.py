"""The HTTP edge: how much of a request, and for how long, the server reads before any handler runs,
and the single warning a refused request leaves in the log.

Every limit of the server is here. A stranger's request costs at most these bounds and one log line:
no handler parses a byte that was not read within them.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler, Middleware

log = logging.getLogger(__name__)

# Headers. aiohttp has no timer of its own for reading headers; its keep-alive timer is one: it starts
# when a connection opens (and again after each response) and closes the connection unless the next
# request's headers are complete by then. So this is both the time a client has to send its headers
# and how long an idle kept-alive connection stays open. Slack and Bot Framework send their headers
# at once; 15 s is generous for them and lets their connection pools reuse a connection between
# bursts. A proxy in front that keeps idle upstream connections longer should close them sooner, so
# it never reuses one the server is closing.
HEADER_TIMEOUT = 15.0
# The request line and each header line (bytes) and the number of headers: aiohttp's defaults, named
# here so every limit is in one place. Slack's and Teams' requests carry a few short headers.
MAX_LINE_BYTES = 8190
MAX_HEADERS = 128
# Body time. Slack gives up on an ack after 3 s and Bot Framework after 15 s, and both send their
# small bodies at once; 10 s also reads a 1 MB console paste over a slow link. A client still sending
# after that is cut off with 408.
BODY_TIMEOUT = 10.0
# After a 408 or a broken body: how long our half-closed connection stays open so the client can read
# the answer before the close (and its own next bytes) could reset it. Short, so a client cut off
# holds nothing for long.
LINGER = 0.5
# Body size, unless a sub-application sets MAX_BODY for its own routes (the demo console does): 1 MiB,
# aiohttp's default. A Slack message is at most 40,000 characters and a Teams card well under 100 KB,
# so a real event or activity stays far below it even JSON-escaped.
MAX_BODY_BYTES = 1 << 20

MAX_BODY = web.AppKey("max_body_bytes", int)


@dataclass(frozen=True)
class Limits:
    """The bounds one server runs with; tests shorten the timeouts."""

    header_timeout: float = HEADER_TIMEOUT
    body_timeout: float = BODY_TIMEOUT
    max_body_bytes: int = MAX_BODY_BYTES

    def server_options(self) -> dict[str, Any]:
        """Keyword arguments for `web.run_app`, `web.AppRunner` or aiohttp's `TestServer`."""
        return {
            "keepalive_timeout": self.header_timeout,
            "max_line_size": MAX_LINE_BYTES,
            "max_field_size": MAX_LINE_BYTES,
            "max_headers": MAX_HEADERS,
            "logger": _ServerLog(logging.getLogger("aiohttp.server"), {}),
        }


LIMITS = Limits()  # the server's


def refuse(status: int, reason: str, *, answer: str | None = None) -> web.Response:
    """The answer to a request the server will not serve, and its one log line (a warning: the
    client's doing, never a stack). `reason` must not quote the request; the client is told `answer`
    when given (e.g. not which check a forged request failed), else `reason`."""
    log.warning("refused %d: %s", status, reason)
    return web.json_response({"error": answer or reason}, status=status)


def bounded_body(limits: Limits) -> Middleware:
    """A middleware that reads every request's body within the limits before the handler runs, so
    `request.read()`, `.text()`, `.json()` and `.post()` in handlers and SDKs return at once."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.body_exists:
            return await handler(request)
        limit = next((app[MAX_BODY] for app in reversed(request.match_info.apps) if MAX_BODY in app), None)
        limit = limit or limits.max_body_bytes
        if (request.content_length or 0) > limit:
            return refuse(413, f"the body is larger than {limit} bytes")
        # request.read() counts chunked bodies as they come, up to the app's client_max_size (set from
        # limits.max_body_bytes); only a sub-application's own limit needs a copy of the request.
        bounded = request if limit == limits.max_body_bytes else request.clone(client_max_size=limit)
        try:
            async with asyncio.timeout(limits.body_timeout):
                await bounded.read()
        except web.HTTPRequestEntityTooLarge:
            return refuse(413, f"the body is larger than {limit} bytes")
        except TimeoutError:
            return await _cut_off(bounded, refuse(408, f"the body took longer than {limits.body_timeout:g} s"))
        except web.RequestPayloadError as error:  # e.g. a body that is not the gzip it claims to be
            malformed = refuse(400, f"the body is malformed ({type(error.__cause__ or error).__name__})")
            return await _cut_off(bounded, malformed)  # the rest of the stream would fail the same way
        return await handler(bounded)

    return middleware


async def _cut_off(request: web.Request, response: web.Response) -> web.Response:
    """Send `response` and close the connection, instead of aiohttp's usual reading of the rest of the
    body (up to 10 s more of a client that is already too slow, or of a stream that is broken)."""
    response.force_close()  # says `Connection: close`, so the client does not reuse it
    await response.prepare(request)
    await response.write_eof()
    # Closing a socket that still receives data resets the connection, and a reset can reach the client
    # before it has read the answer. So end our side first and let it read, for a bounded moment.
    transport = request.transport
    if transport is not None and transport.can_write_eof():
        transport.write_eof()
        await asyncio.sleep(LINGER)
    request.protocol.force_close()
    return response


class _ServerLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server log, except for a request too malformed to reach a handler (a bad request line,
    an overlong header) or a body that breaks while aiohttp drains it after the answer (not the gzip
    it claims to be): aiohttp logs those with a stack trace, as an error (or at debug level for junk
    as a connection's first line, such as TLS sent to a plain-HTTP port). They are the client's
    doing and say nothing about the server: one line without the stack, a warning at most."""

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        error = kwargs.get("exc_info")
        if isinstance(error, (HttpProcessingError, web.RequestPayloadError)):
            kwargs.pop("exc_info")
            level, msg = min(level, logging.WARNING), "refused 400: malformed HTTP request (%s)"
            args = (type(error.__cause__ or error).__name__,)
        super().log(level, msg, *args, **kwargs)
