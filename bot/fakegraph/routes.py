"""The Graph endpoints the bot calls, answered from a `Snapshot`.

Transport-free on purpose: the aiohttp server and the `$batch` executor both hand a `GraphRequest`
to `Router.dispatch`, so an inner batch request is answered exactly like an outer one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import overload

from bot.fakegraph.delta import TOKEN_OPTIONS, Change, DeltaHistory, DeltaState, state_from_params
from bot.fakegraph.errors import GraphError
from bot.fakegraph.odata import QueryError
from bot.fakegraph.query import (
    CollectionSpec,
    QueryOptions,
    absolute_url,
    context_url,
    encode_skiptoken,
    page,
    parse_collection_query,
    parse_entity_query,
    project,
)
from bot.fakegraph.schema import (
    APP_CREDENTIAL_SIGN_IN_ACTIVITY,
    APP_MANAGEMENT_POLICY,
    APPLICATION,
    DIRECTORY_AUDIT,
    DIRECTORY_OBJECT,
    FEDERATED_IDENTITY_CREDENTIAL,
    ORGANIZATION,
    SERVICE_PRINCIPAL,
    SIGN_IN_BETA,
    SIGN_IN_V1,
    TENANT_APP_MANAGEMENT_POLICY,
    USER,
    EntityType,
)
from bot.fakegraph.snapshot import Snapshot
from bot.fakegraph.values import JsonObject, is_guid, parse_datetime

VERSIONS = ("v1.0", "beta")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class GraphRequest:
    method: str
    version: str  # "v1.0" or "beta"
    path: str  # after the version, starting with "/", percent-decoded
    params: Mapping[str, str] = field(default_factory=dict)  # decoded query options
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    origin: str = "http://127.0.0.1"  # scheme://host:port, for absolute links


@dataclass(frozen=True)
class GraphResponse:
    status: int
    body: JsonObject | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    encoded: bytes | None = None  # `body` already as JSON bytes (a cached page), sent as is


_APP_ID_KEY = r"\(appId='(?P<app_id>[^']*)'\)"
_OBJECT_ID = r"/(?P<object_id>[^/()]+)"
_APP = f"/applications(?:{_APP_ID_KEY}|{_OBJECT_ID})"

# Clause signatures each collection can filter on, with the literal kind each takes.
_DIRECTORY_FILTERS = {"appId eq": "string", "displayName eq": "string"}
_SIGN_IN_FILTERS_V1 = {
    "appId eq": "string",
    "correlationId eq": "string",
    "ipAddress eq": "string",
    "servicePrincipalId eq": "string",
    "status/errorCode eq": "number",
    "createdDateTime ge": "datetime",
    "createdDateTime le": "datetime",
}
_SIGN_IN_FILTERS_BETA = {**_SIGN_IN_FILTERS_V1, "signInEventTypes/any eq": "string"}
_AUDIT_FILTERS = {
    "category eq": "string",
    "activityDisplayName eq": "string",
    "activityDisplayName startswith": "string",
    "correlationId eq": "string",
    "activityDateTime ge": "datetime",
    "activityDateTime le": "datetime",
    "targetResources/any/id eq": "string",
}

APPLICATIONS = CollectionSpec(APPLICATION, "Application", _DIRECTORY_FILTERS, expandable={"owners": DIRECTORY_OBJECT})
SERVICE_PRINCIPALS = CollectionSpec(SERVICE_PRINCIPAL, "ServicePrincipal", _DIRECTORY_FILTERS)
OWNERS = CollectionSpec(DIRECTORY_OBJECT, "DirectoryObject")
FICS = CollectionSpec(FEDERATED_IDENTITY_CREDENTIAL, "FederatedIdentityCredential")
ORGANIZATIONS = CollectionSpec(ORGANIZATION, "Organization")
SIGN_INS = {
    "v1.0": CollectionSpec(SIGN_IN_V1, "SignIn", _SIGN_IN_FILTERS_V1, 1000, 1000, directory=False),
    "beta": CollectionSpec(SIGN_IN_BETA, "SignIn", _SIGN_IN_FILTERS_BETA, 1000, 1000, directory=False),
}
USERS = CollectionSpec(USER, "User", {"mail eq": "string", "userPrincipalName eq": "string"})
POLICIES = CollectionSpec(APP_MANAGEMENT_POLICY, "AppManagementPolicy")
AUDITS = CollectionSpec(DIRECTORY_AUDIT, "DirectoryAudit", _AUDIT_FILTERS, 1000, 1000, directory=False)
CREDENTIAL_ACTIVITIES = CollectionSpec(
    APP_CREDENTIAL_SIGN_IN_ACTIVITY, "AppCredentialSignInActivity", {"appId eq": "string"}, directory=False
)
# Graph takes `delta`, `delta()` (msgraph-sdk sends this) and the qualified `microsoft.graph.delta`.
_DELTA = r"/(?:microsoft\.graph\.)?delta(?:\(\))?"
_EVENT_TYPE_CLAUSE = "signInEventTypes/any eq"

Handler = Callable[[GraphRequest, re.Match[str]], GraphResponse]


class Router:
    """Answers GETs for the endpoints in ARCHITECTURE.md from one snapshot."""

    def __init__(self, snapshot: Snapshot, history: DeltaHistory | None = None) -> None:
        self._snapshot = snapshot
        self._history = history or DeltaHistory(snapshot)  # the tenant's versions, for delta queries
        self._routes: list[tuple[re.Pattern[str], Handler]] = [
            (re.compile(r"/applications"), self._applications),
            # Before `_APP`: "delta" would otherwise be read as an object id.
            (re.compile(r"/applications" + _DELTA), self._applications_delta),
            (re.compile(r"/servicePrincipals" + _DELTA), self._service_principals_delta),
            (re.compile(_APP), self._application),
            (re.compile(_APP + "/owners"), self._owners),
            (re.compile(_APP + "/federatedIdentityCredentials"), self._fics),
            (re.compile(r"/servicePrincipals"), self._service_principals),
            (re.compile(f"/servicePrincipals(?:{_APP_ID_KEY}|{_OBJECT_ID})"), self._service_principal),
            # msgraph-sdk sends the short cast "graph.application"; Graph accepts both spellings.
            (re.compile(r"/directory/deletedItems/(?:microsoft\.)?graph\.application"), self._deleted),
            (re.compile(r"/organization"), self._organization),
            (re.compile(r"/auditLogs/signIns"), self._sign_ins),
            (re.compile(r"/auditLogs/directoryAudits"), self._audits),
            (re.compile(r"/users"), self._users),
            (re.compile(_APP + "/appManagementPolicies"), self._assigned_policies),
            (re.compile(r"/policies/appManagementPolicies"), self._policies),
            (re.compile(r"/policies/defaultAppManagementPolicy"), self._default_policy),
            (re.compile(r"/reports/appCredentialSignInActivities"), self._credential_activities),
        ]

    def dispatch(self, request: GraphRequest) -> GraphResponse:
        for pattern, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            if request.method != "GET":
                raise GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request uri.")
            try:
                return handler(request, match)
            except QueryError as exc:
                raise GraphError(400, exc.code, exc.message) from None
        raise unknown_segment(request.path)

    # --- applications ---------------------------------------------------------------------------

    def _find_application(self, match: re.Match[str]) -> JsonObject:
        if match["app_id"] is not None:
            app = self._snapshot.application(match["app_id"])
            if app is None:
                raise not_found(match["app_id"])
            return app
        object_id = _object_id(match["object_id"])
        app = self._snapshot.application_by_id(object_id)
        if app is None:
            raise not_found(object_id)
        return app

    def _application(self, request: GraphRequest, match: re.Match[str]) -> GraphResponse:
        app = self._find_application(match)
        return self._entity(request, "applications", _credentials_view(app, request, single=True), APPLICATION)

    def _applications(self, request: GraphRequest, _: re.Match[str]) -> GraphResponse:
        owners = self._snapshot.owners if "$expand" in request.params else None

        def view(app: JsonObject) -> JsonObject:
            app = _credentials_view(app, request, single=False)
            return app if owners is None else {**app, "owners": list(owners.get(app["id"], ()))}

        return self._collection(request, "applications", _Viewed(self._snapshot.applications, view), APPLICATIONS)

    def _owners(self, request: GraphRequest, match: re.Match[str]) -> GraphResponse:
        app = self._find_application(match)
        owners = list(self._snapshot.owners.get(app["id"], ()))
        return self._collection(request, "directoryObjects", owners, OWNERS)

    def _fics(self, request: GraphRequest, match: re.Match[str]) -> GraphResponse:
        app = self._find_application(match)
        fics = list(self._snapshot.federated_credentials.get(app["id"], ()))
        return self._collection(request, f"applications('{app['id']}')/federatedIdentityCredentials", fics, FICS)

    def _deleted(self, request: GraphRequest, _: re.Match[str]) -> GraphResponse:
        deleted = [
            {"@odata.type": APPLICATION.odata_type, **_credentials_view(app, request, single=False)}
            for app in self._snapshot.deleted_applications
        ]
        return self._collection(request, "directory/deletedItems/microsoft.graph.application", deleted, APPLICATIONS)

    # --- service principals and the tenant ------------------------------------------------------

    def _service_principal(self, request: GraphRequest, match: re.Match[str]) -> GraphResponse:
        if match["app_id"] is not None:
            sp = self._snapshot.service_principal(match["app_id"])
            missing = match["app_id"]
        else:
            missing = _object_id(match["object_id"])
            sp = self._snapshot.service_principal_by_id(missing)
        if sp is None:
            raise not_found(missing)
        view = _credentials_view(sp, request, single=True)
        return self._entity(request, "servicePrincipals", view, SERVICE_PRINCIPAL)

    def _service_principals(self, request: GraphRequest, _: re.Match[str]) -> GraphResponse:
        sps = _Viewed(self._snapshot.service_principals, lambda sp: _credentials_view(sp, request, single=False))
        return self._collection(request, "servicePrincipals", sps, SERVICE_PRINCIPALS)

    def _organization(self, request: GraphRequest, _: re.Match[str]) -> GraphResponse:
        return self._collection(request, "organization", [organization(self._snapshot.tenant)], ORGANIZATIONS)

    # --- audit logs -----------------------------------------------------------------------------

    def _sign_ins(self, request: GraphRequest, _: re.Match[str]) -> GraphResponse:
        if not self._snapshot.has_sign_ins:
            # What a tenant without Entra ID P1/P2 gets; models an export without audit access.
            raise GraphError(
                403,
                "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                "Neither tenant is B2C or tenant doesn't have premium license",
            )
        spec = SIGN_INS[request.version]
        options = parse_collection_query(request.params, request.headers, spec)
        records = _newest_first(self._snapshot.sign_ins, "createdDateTime")
        if options.filter is None or _EVENT_TYPE_CLAUSE not in options.filter.signatures:
            # Graph lists only interactive user sign-ins unless signInEventTypes is filtered on
            # (and v1.0 cannot filter on it), so service-principal sign-ins need beta plus the filter.
            records = [record for record in records if _interactive(record)]
        records = [spec.entity.keep(record) for record in records]
        return self._listing(request, "auditLogs/signIns", records, spec, options)

    def _audits(self, request: GraphRequest, _: re.Match[str]) -> GraphResponse:
        if not self._snapshot.has_audits:
            raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        options = parse_collection_query(request.params, request.headers, AUDITS)
        records = _newest_first(self._snapshot.directory_audits, "activityDateTime")
        return self._listing(request, "auditLogs/directoryAudits", records, AUDITS, options)

    # --- approvers and app management policies (rotation) ----------------------------------------

    def _users(self, request: GraphRequest, _: re.Match[str]) -> GraphResponse:
        return self._collection(request, "users", self._snapshot.users, USERS)

    def _assigned_policies(self, request: GraphRequest, match: re.Match[str]) -> GraphResponse:
        app = self._find_application(match)
        assigned = self._snapshot.assigned_policy(app["id"])
        policies = [] if assigned is None else [assigned]
        return self._collection(request, "appManagementPolicies", policies, POLICIES)

    def _policies(self, request: GraphRequest, _: re.Match[str]) -> GraphResponse:
        return self._collection(
            request, "policies/appManagementPolicies", self._snapshot.app_management_policies, POLICIES
        )

    def _default_policy(self, request: GraphRequest, _: re.Match[str]) -> GraphResponse:
        policy = self._snapshot.default_app_management_policy
        return self._entity(request, "policies/defaultAppManagementPolicy", policy, TENANT_APP_MANAGEMENT_POLICY)

    def _credential_activities(self, request: GraphRequest, _: re.Match[str]) -> GraphResponse:
        """Beta only, global cloud only; the report is built from the sign-ins the snapshot holds."""
        if request.version != "beta":
            raise unknown_segment(request.path)
        if not self._snapshot.has_sign_ins:
            raise GraphError(
                403,
                "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                "Neither tenant is B2C or tenant doesn't have premium license",
            )
        records = credential_activities(self._snapshot)
        return self._collection(request, "reports/appCredentialSignInActivities", records, CREDENTIAL_ACTIVITIES)

    # --- delta queries --------------------------------------------------------------------------

    def _applications_delta(self, request: GraphRequest, _: re.Match[str]) -> GraphResponse:
        return self._delta(request, "applications", APPLICATIONS)

    def _service_principals_delta(self, request: GraphRequest, _: re.Match[str]) -> GraphResponse:
        return self._delta(request, "servicePrincipals", SERVICE_PRINCIPALS)

    def _delta(self, request: GraphRequest, collection: str, spec: CollectionSpec) -> GraphResponse:
        """One page of a delta round; the last page carries `@odata.deltaLink` instead of a next link.

        Only `$select` and `$top` are taken on the first request (Graph also takes `$filter` on ids,
        which the bot does not use); later pages and rounds carry them inside their tokens.
        """
        state = state_from_params(request.params, self._history)
        if state is None:
            options = {name: value for name, value in request.params.items() if name not in TOKEN_OPTIONS}
            parsed = parse_collection_query(options, request.headers, spec)
            state = DeltaState(self._history.current, None, parsed.select, parsed.top, self._history.epoch)
        window: Sequence[Change]
        if state.base is None:
            objects = _delta_objects(self._history.version(state.target), collection)
            total, window = len(objects), [Change(obj) for obj in objects[state.offset : state.offset + state.top]]
        else:
            changes = self._history.changes(collection, state.base, state.target)
            total, window = len(changes), changes[state.offset : state.offset + state.top]
        body: JsonObject = {"@odata.context": context_url(request.origin, request.version, collection, state.select)}
        end = state.offset + len(window)
        path = f"/{collection}/delta"
        if end < total:
            token = DeltaState(state.target, state.base, state.select, state.top, state.epoch, end).encode()
            body["@odata.nextLink"] = absolute_url(request.origin, request.version, path, {"$skiptoken": token})
        else:
            token = DeltaState(state.target, None, state.select, state.top, state.epoch).encode()
            body["@odata.deltaLink"] = absolute_url(request.origin, request.version, path, {"$deltatoken": token})
        body["value"] = [_delta_view(change, state.select, request, spec.entity) for change in window]
        return GraphResponse(200, body)

    # --- envelopes --------------------------------------------------------------------------------

    def _entity(self, request: GraphRequest, entity_set: str, obj: JsonObject, entity: EntityType) -> GraphResponse:
        select = parse_entity_query(request.params, entity)
        context = context_url(request.origin, request.version, entity_set, select) + "/$entity"
        return GraphResponse(200, {"@odata.context": context, **project(obj, select, entity)})

    def _collection(
        self, request: GraphRequest, entity_set: str, items: Sequence[JsonObject], spec: CollectionSpec
    ) -> GraphResponse:
        options = parse_collection_query(request.params, request.headers, spec)
        return self._listing(request, entity_set, items, spec, options)

    def _listing(
        self,
        request: GraphRequest,
        entity_set: str,
        items: Sequence[JsonObject],
        spec: CollectionSpec,
        options: QueryOptions,
    ) -> GraphResponse:
        if options.filter is not None:
            items = [item for item in items if options.filter.matches(item)]

        def next_link(offset: int) -> str:
            params = {name: value for name, value in request.params.items() if name != "$skiptoken"}
            params["$skiptoken"] = encode_skiptoken(offset)
            return absolute_url(request.origin, request.version, request.path, params)

        context = context_url(request.origin, request.version, entity_set, options.select)
        return GraphResponse(200, page(items, options, spec.entity, context=context, next_link=next_link))


def _delta_view(
    change: Change, select: tuple[str, ...] | None, request: GraphRequest, entity: EntityType
) -> JsonObject:
    """A new object with every selected property; a changed one with id and what changed; a removal as is."""
    if "@removed" in change.obj:
        return change.obj
    names = select or tuple(sorted(entity.properties))
    if change.changed is not None:
        names = tuple(name for name in names if name in change.changed)
    obj = _credentials_view(change.obj, request, single=False)
    return project(obj, tuple(dict.fromkeys(("id", *names))), entity)  # id always comes


def _delta_objects(snapshot: Snapshot, collection: str) -> tuple[JsonObject, ...]:
    return snapshot.applications if collection == "applications" else snapshot.service_principals


def credential_activities(snapshot: Snapshot) -> list[JsonObject]:
    """The beta appCredentialSignInActivity report: the latest successful sign-in of each credential.

    Graph computes it from its own sign-in logs; the fake computes it from the snapshot's.
    """
    latest: dict[str, JsonObject] = {}
    for sign_in in snapshot.sign_ins:
        key_id = sign_in.get("servicePrincipalCredentialKeyId")
        status = sign_in.get("status") or {}
        if not key_id or status.get("errorCode") not in (0, None):
            continue
        seen = latest.get(key_id)
        if seen is None or (parse_datetime(sign_in["createdDateTime"]) or _EPOCH) > (
            parse_datetime(seen["createdDateTime"]) or _EPOCH
        ):
            latest[key_id] = sign_in
    records = []
    for origin, objects in (("application", snapshot.applications), ("servicePrincipal", snapshot.service_principals)):
        for obj in objects:
            for kind, field_name in (("clientSecret", "passwordCredentials"), ("certificate", "keyCredentials")):
                for cred in obj.get(field_name) or ():
                    last = latest.get(cred["keyId"])
                    if last is None:
                        continue
                    sp = snapshot.service_principal(obj["appId"])
                    app = snapshot.application(obj["appId"])
                    records.append(
                        {
                            "id": f"{cred['keyId']}_{obj['id']}",
                            "keyId": cred["keyId"],
                            "keyType": kind,
                            "keyUsage": "verify" if cred.get("usage") == "Verify" else "sign",
                            "appId": obj["appId"],
                            "appObjectId": app["id"] if app else None,
                            "servicePrincipalObjectId": sp["id"] if sp else None,
                            "resourceId": last.get("resourceId"),
                            "credentialOrigin": origin,
                            "createdDateTime": cred.get("startDateTime"),
                            "expirationDateTime": cred.get("endDateTime"),
                            "signInActivity": {
                                "lastSignInDateTime": last["createdDateTime"],
                                "lastSignInRequestId": last["id"],
                            },
                        }
                    )
    return records


def organization(tenant: JsonObject) -> JsonObject:
    """The tenant as Graph's `organization` object."""
    default = tenant["defaultDomain"].lower()
    initial = next((d for d in tenant["domains"] if d.lower().endswith(".onmicrosoft.com")), None)
    domains = [
        {
            "capabilities": "Email, OfficeCommunicationsOnline",
            "isDefault": name.lower() == default,
            "isInitial": name == initial,
            "name": name,
            "type": "Managed",
        }
        for name in tenant["domains"]
    ]
    return {"id": tenant["id"], "displayName": tenant["displayName"], "tenantType": "AAD", "verifiedDomains": domains}


def not_found(key: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
    )


def split_version(path: str) -> tuple[str, str]:
    """("v1.0", "/applications") from "/v1.0/applications"; 404 for a path without a known version."""
    for version in VERSIONS:
        if path.startswith(f"/{version}/"):
            return version, path[len(version) + 1 :]
    raise unknown_segment(path)


def unknown_segment(path: str) -> GraphError:
    segments = path.split("/")[1:]
    segment = next((s for s in segments if s == ""), segments[-1] if segments else "")
    message = f"Resource not found for the segment '{segment}'."
    if segment == "":
        # The classic msgraph-sdk pitfall: httpx's trailing slash on base_url gives ".../v1.0//...".
        message += " (fake Graph: empty path segment; set the request adapter's base_url without a trailing slash)"
    return GraphError(404, "BadRequest", message)


def single_params(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Query pairs as a dict; a repeated system query option is a 400, as in Graph."""
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params and name.startswith("$"):
            raise GraphError(400, "BadRequest", f"Query option '{name}' was specified more than once.")
        params[name] = value
    return params


def _object_id(value: str) -> str:
    if not is_guid(value):
        raise GraphError(400, "Request_BadRequest", f"Invalid object identifier '{value}'.")
    return value.lower()


def _credentials_view(obj: JsonObject, request: GraphRequest, *, single: bool) -> JsonObject:
    """Graph returns a certificate's `key` only for one object with keyCredentials in $select."""
    selected = {name.strip() for name in request.params.get("$select", "").split(",")}
    wants_key = single and "keyCredentials" in selected
    if wants_key or not obj.get("keyCredentials"):
        return obj
    return {**obj, "keyCredentials": [{**cred, "key": None} for cred in obj["keyCredentials"]]}


class _Viewed(Sequence[JsonObject]):
    """`items` seen through `view` when read: a page of a 100,000-app tenant views 999 apps, not all."""

    def __init__(self, items: Sequence[JsonObject], view: Callable[[JsonObject], JsonObject]) -> None:
        self._items = items
        self._view = view

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> JsonObject: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[JsonObject]: ...
    def __getitem__(self, index: int | slice) -> JsonObject | Sequence[JsonObject]:
        if isinstance(index, slice):
            return [self._view(item) for item in self._items[index]]
        return self._view(self._items[index])


def _newest_first(records: Sequence[JsonObject], stamp: str) -> list[JsonObject]:
    # Graph lists audit logs newest first; the loader has checked every timestamp parses.
    return sorted(records, key=lambda record: parse_datetime(record[stamp]) or _EPOCH, reverse=True)


def _interactive(record: JsonObject) -> bool:
    event_types = record.get("signInEventTypes")
    if not isinstance(event_types, list):
        return record.get("isInteractive") is not False
    return "interactiveUser" in event_types
