"""`FakeGraph`: an aiohttp server that answers like Microsoft Graph from a tenant snapshot.

Every outer request goes through the same steps: record it (the latest `record` requests are kept,
so a long-running demo or benchmark does not grow), wait `latency`, check the bearer token
(401), apply injected faults, then either run a `$batch` or hand it to the `Router`. Inner batch
requests skip the token and the latency (they ride on the outer request) but are recorded, flagged
`inner=True`, and can be faulted like outer ones, so tests can tell round trips from requests.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from aiohttp import web

from bot.fakegraph.actions import Actions, IssuedSecrets
from bot.fakegraph.batch import GRAPH_JSON, BatchItem, batch_payload, parse_batch, run_batch
from bot.fakegraph.delta import DeltaHistory
from bot.fakegraph.errors import GraphError, error_body
from bot.fakegraph.faults import Fault, make_fault
from bot.fakegraph.pages import CachingRouter
from bot.fakegraph.routes import GraphRequest, GraphResponse, Router, single_params, split_version
from bot.fakegraph.snapshot import Snapshot

_WWW_AUTHENTICATE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
    'client_id="00000003-0000-0000-c000-000000000000"'
)


@dataclass
class RecordedRequest:
    """One request as the fake saw it. Filled in further when the response is ready."""

    method: str
    path: str  # decoded, with the version: "/v1.0/applications(appId='…')"
    query_string: str  # decoded: "$filter=appId eq '…'&$select=id"
    headers: Mapping[str, str]
    time: float  # time.monotonic() on arrival
    inner: bool = False  # True: one request inside a $batch (not an HTTP round trip)
    batch_id: str | None = None  # the inner request's id in its batch
    status: int | None = None
    elapsed: float | None = None  # seconds from arrival to response, injected latency included
    connection: int | None = None  # which TCP connection an outer request came on: 1, 2, … in order of arrival


@dataclass(frozen=True)
class _Ids:
    request_id: str
    client_request_id: str


# Requests kept for `FakeGraph.requests`: each holds its headers (~5 KB), and keeping every one made
# a long demo or benchmark grow by ~5 MiB per 1,000 requests. A test reads far fewer.
RECORDED_REQUESTS = 1000


class FakeGraph:
    """A Graph-shaped HTTP server for one snapshot. Use as `async with FakeGraph(snapshot) as graph:`."""

    def __init__(
        self,
        snapshot: Snapshot,
        *,
        latency: float = 0.0,
        record: int = RECORDED_REQUESTS,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """`clock` is the tenant's "now" for what the fake writes (a new secret's start, an audit or a
        sign-in's time, whether a secret has expired); the demo's fixed clock keeps its tenant at one moment."""
        self.snapshot = snapshot
        self.clock = clock or (lambda: datetime.now(UTC))
        self.latency = latency  # seconds added to every outer request; may be changed at any time
        self._recorded: deque[RecordedRequest] = deque(maxlen=record)  # the latest `record` requests
        self._round_trips = 0
        self._connections_seen: set[int] = set()
        self._in_flight = 0
        self._max_in_flight = 0
        self._faults: list[Fault] = []
        self._connections: weakref.WeakKeyDictionary[asyncio.BaseTransport, int] = weakref.WeakKeyDictionary()
        self._connection_numbers = itertools.count(1)
        self._history = DeltaHistory(snapshot)  # every version served, so delta links can ask what changed
        self._router = Router(snapshot, self._history)
        # Secrets added through addPassword, their values in memory only (for the fake token endpoint).
        self.issued = IssuedSecrets()
        self._actions = Actions(lambda: self.snapshot, self.use_snapshot, self.issued, self.clock)
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on host:port (0: a free port) and return the base URL, without a trailing slash."""
        if self._runner is not None:
            raise RuntimeError("FakeGraph is already running")
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # A short shutdown: stop() should not wait long for a request parked in injected latency.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self._runner = runner
        self._base_url = f"http://{shown}:{bound_port}"
        return self._base_url

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT`; Graph paths start with "/v1.0" or "/beta" after it."""
        if self._base_url is None:
            raise RuntimeError("FakeGraph has not been started")
        return self._base_url

    # --- test controls ----------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """The latest requests (up to `record`, outer and inner), oldest first."""
        return list(self._recorded)

    @property
    def round_trips(self) -> int:
        """HTTP requests received (a `$batch` counts once, whatever it holds), recorded or not."""
        return self._round_trips

    @property
    def connections(self) -> int:
        """TCP connections the requests arrived on (a kept-alive connection counts once)."""
        return len(self._connections_seen)

    @property
    def max_in_flight(self) -> int:
        """The most HTTP requests this server was answering at one time."""
        return self._max_in_flight

    def add_fault(
        self,
        path_pattern: str,
        status: int,
        *,
        times: int | None = None,
        retry_after: float | None = None,
        method: str | None = None,
        retry_after_as_date: bool = False,
        applied: bool = False,
        delay: float = 0.0,
    ) -> Fault:
        """Answer requests whose path matches the regex `path_pattern` with a Graph error `status`.

        Applies to outer and inner `$batch` requests alike; the path includes the version
        ("/beta/auditLogs/signIns"). `times=None` means every time. `retry_after` adds a
        `Retry-After` header (whole seconds, rounded up; with `retry_after_as_date`, as the HTTP date
        that many seconds from now). The first matching active fault wins.

        For the POST actions (addPassword, removePassword): `applied=True` carries the write out and
        then answers with the error, and `delay` holds the answer back that many seconds (longer than
        the client's timeout: a write whose answer never came).
        """
        fault = make_fault(
            path_pattern,
            status,
            times=times,
            retry_after=retry_after,
            method=method,
            retry_after_as_date=retry_after_as_date,
            applied=applied,
            delay=delay,
        )
        self._faults.append(fault)
        return fault

    def use_snapshot(self, snapshot: Snapshot) -> None:
        """Serve `snapshot` from the next request on, as if the tenant had changed (a secret added)."""
        self.snapshot = snapshot
        self._history.advance(snapshot)
        self._router = Router(snapshot, self._history)

    def expire_delta_tokens(self) -> None:
        """Refuse every delta link issued so far (400 syncStateNotFound), as Graph does after 7 days."""
        self._history.expire()

    def cache_pages(self) -> None:
        """Keep every answered GET, encoded, and send the same bytes when it is asked again.

        For serving a huge tenant (`bot.fakegraph.synthetic`) faster than a reader can take it; the
        snapshot must not change meanwhile (`use_snapshot` returns to answering every request anew).
        """
        self._router = CachingRouter(self.snapshot, self._history)

    def reset(self) -> None:
        """Forget recorded requests, the counts and faults."""
        self._recorded.clear()
        self._round_trips = 0
        self._connections_seen.clear()
        self._max_in_flight = self._in_flight
        self._faults.clear()

    # --- request handling -------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query_string=request.query_string,
            headers=dict(request.headers),
            time=time.monotonic(),
            connection=self._connection(request),
        )
        self._recorded.append(record)
        self._round_trips += 1
        if record.connection is not None:
            self._connections_seen.add(record.connection)
        self._in_flight += 1
        self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            if self.latency > 0:
                await asyncio.sleep(self.latency)
            ids = _Ids(str(uuid.uuid4()), request.headers.get("client-request-id", str(uuid.uuid4())))
            try:
                response = await self._outer(request, ids)
            except GraphError as error:
                response = _error_response(error, ids)
        finally:
            self._in_flight -= 1
        record.status = response.status
        record.elapsed = time.monotonic() - record.time
        return _web_response(response, ids)

    async def _outer(self, request: web.Request, ids: _Ids) -> GraphResponse:
        authorization = request.headers.get("Authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise GraphError(
                401, "InvalidAuthenticationToken", "Access token is empty.", {"WWW-Authenticate": _WWW_AUTHENTICATE}
            )
        fault = self._fault(request.method, request.path)
        if fault is not None and not fault.applied:
            await asyncio.sleep(fault.delay)
            raise fault.error()
        version, path = split_version(request.path)
        origin = f"{request.scheme}://{request.host}"
        if request.method == "POST" and path != "/$batch":
            headers = {name.lower(): value for name, value in request.headers.items()}
            graph_request = GraphRequest(
                request.method, version, path, single_params(request.query.items()), headers, origin
            )
            answer = self._actions.dispatch(graph_request, _action_body(await request.read()))
            if answer is not None:
                if fault is not None:  # the write happened; its answer is lost
                    await asyncio.sleep(fault.delay)
                    raise fault.error()
                return answer
        if fault is not None:  # `applied` means nothing for a read: answer with the error
            await asyncio.sleep(fault.delay)
            raise fault.error()
        if path == "/$batch":
            if request.method != "POST":
                raise GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request uri.")
            items = parse_batch(batch_payload(await request.read()))

            async def execute(item: BatchItem) -> GraphResponse:
                return self._inner(item, version, origin, ids)

            body = await run_batch(items, execute, lambda error: _error_response(error, ids))
            return GraphResponse(200, body)
        headers = {name.lower(): value for name, value in request.headers.items()}
        params = single_params(request.query.items())
        return self._router.dispatch(GraphRequest(request.method, version, path, params, headers, origin))

    def _inner(self, item: BatchItem, version: str, origin: str, ids: _Ids) -> GraphResponse:
        path, _, query = item.url.partition("?")
        record = RecordedRequest(
            method=item.method,
            path=f"/{version}/{path.lstrip('/')}",
            query_string=query,
            headers=dict(item.headers),
            time=time.monotonic(),
            inner=True,
            batch_id=item.id,
        )
        self._recorded.append(record)
        try:
            graph_request = item.request(version, origin)
            record.path = f"/{version}{graph_request.path}"
            self._apply_faults(item.method, record.path)
            response = self._router.dispatch(graph_request)
        except GraphError as error:
            response = _error_response(error, ids)
        record.status = response.status
        record.elapsed = time.monotonic() - record.time
        return response

    def _connection(self, request: web.Request) -> int | None:
        # Keyed by the transport object, not the client's port: loopback reuses ports at once.
        transport = request.transport
        if transport is None:
            return None
        if transport not in self._connections:
            self._connections[transport] = next(self._connection_numbers)
        return self._connections[transport]

    def _apply_faults(self, method: str, path: str) -> None:
        fault = self._fault(method, path)
        if fault is not None:
            raise fault.error()

    def _fault(self, method: str, path: str) -> Fault | None:
        for fault in self._faults:
            if fault.matches(method, path):
                fault.hits += 1
                return fault
        return None


def _action_body(body: bytes) -> object:
    """An action's JSON body; an empty one is None (addPassword takes defaults)."""
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload.") from None


def _error_response(error: GraphError, ids: _Ids) -> GraphResponse:
    body = error_body(error, request_id=ids.request_id, client_request_id=ids.client_request_id)
    return GraphResponse(error.status, body, error.headers)


def _web_response(response: GraphResponse, ids: _Ids) -> web.Response:
    headers = {"request-id": ids.request_id, "client-request-id": ids.client_request_id, **response.headers}
    if response.body is None:
        return web.Response(status=response.status, headers=headers)
    headers["Content-Type"] = GRAPH_JSON
    body = response.encoded or json.dumps(response.body, ensure_ascii=False).encode("utf-8")
    return web.Response(status=response.status, body=body, headers=headers)
