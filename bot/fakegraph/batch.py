"""JSON batching (`POST /{version}/$batch`): validation, `dependsOn`, and the response envelope.

Rules from Graph's json-batching page: at most 20 requests, unique ids, relative URLs, `headers`
required with a `body`, the outer status is 200 whatever the inner ones are, and a request whose
dependency failed answers 424. Requests run in the listed order, so `dependsOn` may only name an
earlier request (the "fully sequential" batches Graph recommends).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from bot.fakegraph.errors import GraphError
from bot.fakegraph.routes import GraphRequest, GraphResponse, single_params
from bot.fakegraph.values import JsonObject, describe

MAX_REQUESTS = 20
GRAPH_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"


@dataclass(frozen=True)
class BatchItem:
    id: str
    method: str
    url: str
    headers: Mapping[str, str]
    depends_on: tuple[str, ...] = ()

    def target(self) -> tuple[str, dict[str, str]]:
        """The decoded path (with a leading "/") and query options of the relative URL."""
        parts = urlsplit(self.url)
        if parts.scheme or parts.netloc:
            raise GraphError(400, "BadRequest", f"Invalid request URL '{self.url}': batch URLs must be relative.")
        path = unquote(parts.path)
        params = single_params(parse_qsl(parts.query, keep_blank_values=True))
        return (path if path.startswith("/") else "/" + path), params

    def request(self, version: str, origin: str) -> GraphRequest:
        """The item as the router takes a request (raises GraphError for a URL that is not relative)."""
        path, params = self.target()
        headers = {name.lower(): value for name, value in self.headers.items()}
        return GraphRequest(self.method, version, path, params, headers, origin)


def batch_payload(raw: bytes) -> object:
    """The batch body's JSON; a body that is not JSON fails the whole batch with a 400."""
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise GraphError(400, "BadRequest", "Invalid batch payload format: the body is not JSON.") from None


def parse_batch(payload: object) -> list[BatchItem]:
    """Validate a batch body; any problem fails the whole batch with a 400, as Graph does."""
    requests = payload.get("requests") if isinstance(payload, dict) else None
    if not isinstance(requests, list) or not requests:
        raise _invalid("the body must be an object with a non-empty 'requests' array")
    if len(requests) > MAX_REQUESTS:
        raise GraphError(
            400, "BadRequest", f"Number of batch requests {len(requests)} exceeds the limit of {MAX_REQUESTS}."
        )
    items: list[BatchItem] = []
    for index, raw in enumerate(requests):
        item = _item(raw, index)
        if any(earlier.id == item.id for earlier in items):
            raise GraphError(400, "BadRequest", f"Batch request ids must be unique: '{item.id}' appears twice.")
        known = {earlier.id for earlier in items}
        for dependency in item.depends_on:
            if dependency not in known:
                raise _invalid(f"request '{item.id}' depends on '{dependency}', which is not an earlier request")
        items.append(item)
    return items


def _item(raw: object, index: int) -> BatchItem:
    if not isinstance(raw, dict):
        raise _invalid(f"requests[{index}] is {describe(raw)}, not an object")
    fields = {name: raw.get(name) for name in ("id", "method", "url")}
    for name, value in fields.items():
        if not isinstance(value, str) or not value:
            raise _invalid(f"requests[{index}] needs a string '{name}'")
    headers = raw.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise _invalid(f"requests[{index}] 'headers' must be an object of strings")
    if raw.get("body") is not None and not any(name.lower() == "content-type" for name in headers):
        raise _invalid(f"requests[{index}] has a body but no Content-Type header")
    depends_on = raw.get("dependsOn") or []
    if not isinstance(depends_on, list) or not all(isinstance(d, str) for d in depends_on):
        raise _invalid(f"requests[{index}] 'dependsOn' must be an array of request ids")
    return BatchItem(
        id=str(fields["id"]),
        method=str(fields["method"]).upper(),
        url=str(fields["url"]),
        headers=headers,
        depends_on=tuple(depends_on),
    )


def _invalid(detail: str) -> GraphError:
    return GraphError(400, "BadRequest", f"Invalid batch payload format: {detail}.")


async def run_batch(
    items: list[BatchItem],
    execute: Callable[[BatchItem], Awaitable[GraphResponse]],
    fail: Callable[[GraphError], GraphResponse],
) -> JsonObject:
    """Run `items` in order through `execute`; `fail` renders an error (used for 424)."""
    statuses: dict[str, int] = {}
    responses = []
    for item in items:
        if any(not 200 <= statuses[dependency] < 300 for dependency in item.depends_on):
            response = fail(GraphError(424, "FailedDependency", "A request this request depends on failed."))
        else:
            response = await execute(item)
        statuses[item.id] = response.status
        responses.append(_entry(item.id, response))
    return {"responses": responses}


def _entry(request_id: str, response: GraphResponse) -> JsonObject:
    headers = dict(response.headers)
    entry: JsonObject = {"id": request_id, "status": response.status, "headers": headers}
    if response.body is not None:
        headers["Content-Type"] = GRAPH_JSON
        entry["body"] = response.body
    return entry
