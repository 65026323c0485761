"""`LocalGraph`: the fake Graph answering in this process, for a command that asks once and exits.

`secretbot diagnose --snapshot` posts one `$batch`; starting the HTTP server and a client for it
took a quarter of its start-up (aiohttp alone is ~0.1 s to import). The body goes through the
server's own batch parser, executor and router and comes back as the same `GraphReply`, so the
diagnosis is the one `FakeGraph` gives over HTTP. What needs the wire (`secretbot serve`, the
demo, the transport's tests) keeps `FakeGraph`.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from urllib.parse import parse_qsl, urlsplit

from bot.fakegraph.batch import GRAPH_JSON, BatchItem, batch_payload, parse_batch, run_batch
from bot.fakegraph.delta import DeltaHistory
from bot.fakegraph.errors import GraphError, error_body
from bot.fakegraph.routes import GraphRequest, GraphResponse, Router, single_params, split_version
from bot.fakegraph.snapshot import Snapshot
from bot.graph.transport import GraphReply

ORIGIN = "http://127.0.0.1"  # links in answers point where the HTTP fake would listen


class LocalGraph:
    """Posts to the fake Graph of `snapshot` without a socket or a token (`GraphPoster`)."""

    def __init__(self, snapshot: Snapshot, *, latency: float = 0.0) -> None:
        self._router = Router(snapshot, DeltaHistory(snapshot))
        self.latency = latency  # seconds added to every post, as `FakeGraph` adds to every request

    async def post(self, path: str, body: bytes) -> GraphReply:
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        request_id, client_request_id = str(uuid.uuid4()), str(uuid.uuid4())

        def failed(error: GraphError) -> GraphResponse:
            answer = error_body(error, request_id=request_id, client_request_id=client_request_id)
            return GraphResponse(error.status, answer, error.headers)

        try:
            response = await self._answer(path, body, failed)
        except GraphError as error:
            response = failed(error)
        headers = {"request-id": request_id, "client-request-id": client_request_id, **response.headers}
        if response.body is None:
            return GraphReply(response.status, {k.lower(): v for k, v in headers.items()}, b"")
        headers["Content-Type"] = GRAPH_JSON
        data = response.encoded or json.dumps(response.body, ensure_ascii=False).encode("utf-8")
        return GraphReply(response.status, {k.lower(): v for k, v in headers.items()}, data)

    async def _answer(self, target: str, body: bytes, failed: Callable[[GraphError], GraphResponse]) -> GraphResponse:
        parts = urlsplit(target)
        version, path = split_version(parts.path)
        if path != "/$batch":  # no writes here: `FakeGraph` carries out the actions
            params = single_params(parse_qsl(parts.query, keep_blank_values=True))
            return self._router.dispatch(GraphRequest("POST", version, path, params, origin=ORIGIN))
        items = parse_batch(batch_payload(body))

        async def execute(item: BatchItem) -> GraphResponse:
            try:
                return self._router.dispatch(item.request(version, ORIGIN))
            except GraphError as error:
                return failed(error)

        return GraphResponse(200, await run_batch(items, execute, failed))
