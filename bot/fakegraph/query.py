"""Collection query options ($select, $filter, $top, $skiptoken, $count) and response envelopes."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from bot.fakegraph.odata import Filter, QueryError, parse_filter
from bot.fakegraph.schema import EntityType
from bot.fakegraph.values import JsonObject

_COLLECTION_OPTIONS = frozenset(("$select", "$filter", "$top", "$skiptoken", "$count", "$expand"))
_ENTITY_OPTIONS = frozenset(("$select",))
_SKIPTOKEN_PREFIX = b"fakegraph-offset:"
# Graph's limits with $expand on directory objects: at most 100 objects a page, whatever $top says,
# and at most 20 related objects each (learn.microsoft.com/graph/query-parameters, "expand").
EXPAND_MAX_TOP = 100
EXPAND_MAX_ITEMS = 20
_EXPAND = re.compile(r"(?P<name>[A-Za-z]+)(?:\(\$select=(?P<select>[A-Za-z,]+)\))?")


@dataclass(frozen=True)
class CollectionSpec:
    """How one Graph collection answers queries."""

    entity: EntityType
    resource: str  # the entity as Graph names it in error messages, e.g. "Application"
    filters: Mapping[str, str] = field(default_factory=dict)  # clause signature → literal kind
    default_top: int = 100
    max_top: int = 999
    # Directory collections (Entra) and the reports service use different error codes.
    directory: bool = True
    expandable: Mapping[str, EntityType] = field(default_factory=dict)  # navigation property → its type

    @property
    def bad_request_code(self) -> str:
        return "Request_BadRequest" if self.directory else "BadRequest"

    @property
    def unsupported_code(self) -> str:
        return "Request_UnsupportedQuery" if self.directory else "BadRequest"


@dataclass(frozen=True)
class Expand:
    name: str  # the navigation property, e.g. "owners"
    entity: EntityType
    select: tuple[str, ...] | None = None


@dataclass(frozen=True)
class QueryOptions:
    select: tuple[str, ...] | None = None
    filter: Filter | None = None
    top: int = 100
    offset: int = 0
    count: bool = False
    expand: Expand | None = None


def parse_collection_query(params: Mapping[str, str], headers: Mapping[str, str], spec: CollectionSpec) -> QueryOptions:
    """Validate the query options of a collection GET. `headers` keys are lower case."""
    _check_options(params, _COLLECTION_OPTIONS, spec.bad_request_code)
    select = _select(params["$select"], spec.entity, spec.bad_request_code) if "$select" in params else None
    filter_ = None
    if "$filter" in params:
        filter_ = parse_filter(
            params["$filter"],
            spec.filters,
            resource=spec.resource,
            unsupported_code=spec.unsupported_code,
        )
    top = _top(params["$top"], spec) if "$top" in params else spec.default_top
    offset = decode_skiptoken(params["$skiptoken"], spec) if "$skiptoken" in params else 0
    count = _count(params.get("$count"), headers, spec)
    expand = _expand(params["$expand"], spec) if "$expand" in params else None
    if expand is not None:
        top = min(top, EXPAND_MAX_TOP)
    return QueryOptions(select=select, filter=filter_, top=top, offset=offset, count=count, expand=expand)


def parse_entity_query(params: Mapping[str, str], entity: EntityType) -> tuple[str, ...] | None:
    """Validate the query options of a single-object GET: only $select applies."""
    _check_options(params, _ENTITY_OPTIONS, "Request_BadRequest")
    return _select(params["$select"], entity, "Request_BadRequest") if "$select" in params else None


def _check_options(params: Mapping[str, str], allowed: frozenset[str], code: str) -> None:
    for name in params:
        if name.startswith("$") and name not in allowed:
            # Graph supports more ($expand, $orderby, $search…); the fake refuses rather than ignore them.
            raise QueryError(code, f"The query option '{name}' is not supported here by the fake Graph.")


def _select(text: str, entity: EntityType, code: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(","))
    for name in names:
        if name not in entity.properties:
            raise QueryError(code, f"Could not find a property named '{name}' on type 'microsoft.graph.{entity.name}'.")
    return names


def _expand(text: str, spec: CollectionSpec) -> Expand:
    """`owners` or `owners($select=id,displayName)`: one navigation property, as the bot asks for."""
    match = _EXPAND.fullmatch(text.strip())
    if match is None or match["name"] not in spec.expandable:
        raise QueryError(spec.bad_request_code, f"The $expand value '{text}' is not supported here by the fake Graph.")
    entity = spec.expandable[match["name"]]
    select = _select(match["select"], entity, spec.bad_request_code) if match["select"] else None
    return Expand(match["name"], entity, select)


def _top(text: str, spec: CollectionSpec) -> int:
    if text.isdigit() and 1 <= int(text) <= spec.max_top:
        return int(text)
    raise QueryError(
        spec.bad_request_code, f"Invalid page size specified: '{text}'. Must be between 1 and {spec.max_top} inclusive."
    )


def _count(value: str | None, headers: Mapping[str, str], spec: CollectionSpec) -> bool:
    if value is None or value == "false":
        return False
    if value != "true":
        raise QueryError(spec.bad_request_code, f"Invalid value '{value}' for $count.")
    # Directory objects count only with the advanced-query header (aad-advanced-queries).
    if not spec.directory or headers.get("consistencylevel", "").lower() != "eventual":
        raise QueryError(spec.bad_request_code, "$count is not currently supported.")
    return True


def encode_skiptoken(offset: int) -> str:
    """An opaque token for the next page (Graph's are opaque too: callers must not parse them)."""
    return base64.urlsafe_b64encode(_SKIPTOKEN_PREFIX + str(offset).encode()).decode().rstrip("=")


def decode_skiptoken(token: str, spec: CollectionSpec) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    digits = raw.removeprefix(_SKIPTOKEN_PREFIX)
    if not raw.startswith(_SKIPTOKEN_PREFIX) or not digits.isdigit():
        raise QueryError(spec.bad_request_code, "The $skiptoken value is not valid.")
    return int(digits)


def project(obj: JsonObject, select: tuple[str, ...] | None, entity: EntityType) -> JsonObject:
    """Apply $select: only the named properties (null, or [] for non-nullable collections, if unset).

    `@odata.type` stays where the object carries it (polymorphic collections such as owners). `id`
    is not added unless selected: Entra returns only what was asked for.
    """
    if select is None:
        return dict(obj)
    projected: JsonObject = {"@odata.type": obj["@odata.type"]} if "@odata.type" in obj else {}
    for name in select:
        projected[name] = obj.get(name, [] if name in entity.collections else None)
    return projected


def context_url(origin: str, version: str, entity_set: str, select: tuple[str, ...] | None) -> str:
    """`@odata.context`, e.g. `…/v1.0/$metadata#applications(id,appId)`; add "/$entity" for one object."""
    selected = f"({','.join(select)})" if select else ""
    return f"{origin}/{version}/$metadata#{entity_set}{selected}"


def page(
    items: Sequence[JsonObject],
    options: QueryOptions,
    entity: EntityType,
    *,
    context: str,
    next_link: Callable[[int], str],
) -> JsonObject:
    """One page of `items` (already filtered and ordered) as a Graph collection response."""
    window = items[options.offset : options.offset + options.top]
    body: JsonObject = {"@odata.context": context}
    if options.count:
        body["@odata.count"] = len(items)
    end = options.offset + len(window)
    if end < len(items):
        body["@odata.nextLink"] = next_link(end)
    body["value"] = [_expanded(item, project(item, options.select, entity), options.expand) for item in window]
    return body


def _expanded(item: JsonObject, projected: JsonObject, expand: Expand | None) -> JsonObject:
    if expand is not None:
        related = item.get(expand.name, [])[:EXPAND_MAX_ITEMS]
        projected[expand.name] = [project(obj, expand.select, expand.entity) for obj in related]
    return projected


def absolute_url(origin: str, version: str, path: str, params: Mapping[str, str]) -> str:
    """An absolute URL back to the fake, as Graph builds `@odata.nextLink`."""
    query = "&".join(f"{quote(name, safe='$')}={quote(value, safe=_SAFE)}" for name, value in params.items())
    url = f"{origin}/{version}{quote(path, safe=_SAFE)}"
    return f"{url}?{query}" if query else url


_SAFE = "/'(),:$=@"
