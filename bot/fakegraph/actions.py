"""The POST actions the rotation calls: `addPassword` and `removePassword` (they change the tenant)
and `checkMemberGroups` (a read that Graph exposes as a POST).

A write replaces the served snapshot with a changed copy, so every later read (single object,
collection, `$batch`) sees the new or removed secret. A new secret's value is returned once, as
Graph does, and otherwise kept only in memory (`IssuedSecrets`) for the fake token endpoint.
"""

from __future__ import annotations

import json
import re
import secrets
import string
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from bot.fakegraph.errors import GraphError
from bot.fakegraph.routes import GraphRequest, GraphResponse, not_found
from bot.fakegraph.snapshot import DEFAULT_POLICY_ID, Snapshot
from bot.fakegraph.values import JsonObject, is_guid, parse_datetime, parse_duration

# Graph's default when endDateTime is left out: "startDateTime + 2 years".
DEFAULT_LIFETIME = timedelta(days=730)
# Apps for personal Microsoft accounts hold at most two client secrets (reference/graph.md §1.6).
PERSONAL_AUDIENCES = frozenset({"AzureADandPersonalMicrosoftAccount", "PersonalMicrosoftAccount"})
MAX_PERSONAL_SECRETS = 2
MAX_CHECKED_GROUPS = 20  # checkMemberGroups: "up to a maximum of 20 groups per request"
# Today's secret format: three characters, a digit, "Q~", 34 characters (40 in all; reference/graph.md §6).
_SECRET_ALPHABET = string.ascii_letters + string.digits + "_~.-"

_APP = r"/applications(?:\(appId='(?P<app_id>[^']*)'\)|/(?P<object_id>[^/()]+))"
_ADD = re.compile(_APP + "/addPassword")
_REMOVE = re.compile(_APP + "/removePassword")
_CHECK = re.compile(r"/(?:users|directoryObjects|groups|servicePrincipals)/(?P<member>[^/()]+)/checkMemberGroups")


@dataclass(frozen=True)
class IssuedSecret:
    """A secret this fake created: its value (memory only) and when it was added (monotonic seconds)."""

    app_id: str
    key_id: str
    value: str
    added_at: float


class IssuedSecrets:
    """The values of secrets added through the fake, by keyId. Never written anywhere."""

    def __init__(self) -> None:
        self._by_key: dict[str, IssuedSecret] = {}

    def add(self, secret: IssuedSecret) -> None:
        self._by_key[secret.key_id] = secret

    def find(self, app_id: str, value: str) -> IssuedSecret | None:
        """The secret of `app_id` with this value (compared in constant time), if the fake issued one."""
        for secret in self._by_key.values():
            if secret.app_id == app_id and secrets.compare_digest(secret.value, value):
                return secret
        return None

    def __len__(self) -> int:
        return len(self._by_key)


class Actions:
    """Answers the POST actions; `get`/`put` read and replace the snapshot the fake serves."""

    def __init__(
        self,
        get: Callable[[], Snapshot],
        put: Callable[[Snapshot], None],
        issued: IssuedSecrets,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._get = get
        self._put = put
        self.issued = issued
        self._clock = clock

    def dispatch(self, request: GraphRequest, body: object) -> GraphResponse | None:
        """The answer for an action path, or None when the path is not an action (the router's turn)."""
        for pattern, handler in (
            (_ADD, self._add_password),
            (_REMOVE, self._remove_password),
            (_CHECK, self._check_member_groups),
        ):
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            if request.method != "POST":
                raise GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request uri.")
            return handler(request, match, body)
        return None

    # --- addPassword / removePassword -----------------------------------------------------------

    def _add_password(self, request: GraphRequest, match: re.Match[str], body: object) -> GraphResponse:
        snapshot = self._get()
        app = _application(snapshot, match)
        wanted = _object_or_empty(body, "passwordCredential")
        now = self._clock()
        start = _optional_time(wanted, "startDateTime") or now
        end = _optional_time(wanted, "endDateTime") or start + DEFAULT_LIFETIME
        if end <= start:
            raise GraphError(400, "InvalidKeyEndDate", "Key credential end date is invalid.")
        display_name = wanted.get("displayName")
        if display_name is not None and not isinstance(display_name, str):
            raise _bad_property("displayName")
        _enforce_policy(snapshot, app, start, end)
        held = app.get("passwordCredentials", [])
        if app.get("signInAudience") in PERSONAL_AUDIENCES and len(held) >= MAX_PERSONAL_SECRETS:
            # The wording is the one public reports quote; the error code is not documented.
            message = f"You can only add a maximum of {MAX_PERSONAL_SECRETS} encrypted credentials."
            raise GraphError(400, "Request_BadRequest", message)
        value, key_id = _new_secret_text(), str(uuid.uuid4())
        credential = {
            "customKeyIdentifier": None,
            "displayName": display_name,
            "endDateTime": _graph_time(end),
            "hint": value[:3],
            "keyId": key_id,
            "secretText": None,
            "startDateTime": _graph_time(start),
        }
        changed = {**app, "passwordCredentials": [*app.get("passwordCredentials", []), credential]}
        self._put(_audited(_with_application(snapshot, changed), app, changed, now))
        self.issued.add(IssuedSecret(app["appId"], key_id, value, time.monotonic()))
        context = f"{request.origin}/{request.version}/$metadata#microsoft.graph.passwordCredential"
        return GraphResponse(200, {"@odata.context": context, **credential, "secretText": value})

    def _remove_password(self, request: GraphRequest, match: re.Match[str], body: object) -> GraphResponse:
        snapshot = self._get()
        app = _application(snapshot, match)
        key_id = body.get("keyId") if isinstance(body, dict) else None
        if not isinstance(key_id, str) or not is_guid(key_id):
            raise _bad_property("keyId")
        kept = [c for c in app.get("passwordCredentials", []) if c["keyId"] != key_id.lower()]
        if len(kept) == len(app.get("passwordCredentials", [])):
            # Unverified wording: Graph's exact answer for an unknown keyId is not documented.
            raise GraphError(400, "Request_BadRequest", f"No password credential found with keyId '{key_id}'.")
        changed = {**app, "passwordCredentials": kept}
        self._put(_audited(_with_application(snapshot, changed), app, changed, self._clock()))
        return GraphResponse(204)

    # --- checkMemberGroups ------------------------------------------------------------------------

    def _check_member_groups(self, request: GraphRequest, match: re.Match[str], body: object) -> GraphResponse:
        snapshot = self._get()
        member = match["member"].lower()
        known = {obj["id"] for obj in snapshot.users} | {g["id"] for g in snapshot.groups}
        known |= {sp["id"] for sp in snapshot.service_principals}
        known |= {owner["id"] for owners in snapshot.owners.values() for owner in owners}
        if member not in known:
            raise not_found(member)
        group_ids = body.get("groupIds") if isinstance(body, dict) else None
        if not isinstance(group_ids, list) or not all(is_guid(g) for g in group_ids):
            raise _bad_property("groupIds")
        if len(group_ids) > MAX_CHECKED_GROUPS:
            raise GraphError(
                400, "Request_BadRequest", f"The number of groups to check exceeds the limit of {MAX_CHECKED_GROUPS}."
            )
        member_of = snapshot.member_of(member)
        value = [group_id for group_id in group_ids if group_id.lower() in member_of]
        context = f"{request.origin}/{request.version}/$metadata#Collection(Edm.String)"
        return GraphResponse(200, {"@odata.context": context, "value": value})


def effective_password_rules(snapshot: Snapshot, app: JsonObject) -> tuple[str, list[JsonObject]]:
    """The policy id and the `passwordCredentials` restrictions in force for `app`, as Graph applies them:
    an assigned, enabled policy replaces the tenant default; a disabled one leaves nothing in force."""
    assigned = snapshot.assigned_policy(app["id"])
    if assigned is not None:
        rules = (assigned.get("restrictions") or {}).get("passwordCredentials", [])
        return assigned["id"], list(rules) if assigned.get("isEnabled", True) else []
    default = snapshot.default_app_management_policy
    if not default.get("isEnabled", False):
        return DEFAULT_POLICY_ID, []
    return DEFAULT_POLICY_ID, list((default.get("applicationRestrictions") or {}).get("passwordCredentials", []))


def _enforce_policy(snapshot: Snapshot, app: JsonObject, start: datetime, end: datetime) -> None:
    policy_id, rules = effective_password_rules(snapshot, app)
    created = parse_datetime(app.get("createdDateTime"))
    for rule in rules:
        if rule.get("state", "enabled") != "enabled":
            continue
        applies_after = parse_datetime(rule.get("restrictForAppsCreatedAfterDateTime"))
        if applies_after is not None and created is not None and created <= applies_after:
            continue  # the restriction spares apps created before its date
        kind = rule.get("restrictionType")
        if kind == "passwordAddition":
            raise GraphError(
                400,
                "CredentialTypeNotAllowedAsPerAppPolicy",
                f"Credential type not allowed as per assigned policy '{policy_id}'.",
                details=[{"code": "InvalidCredentialType", "target": "PasswordCredentials"}],
            )
        limit = parse_duration(rule.get("maxLifetime"))
        if kind == "passwordLifetime" and limit is not None and end - start > limit:
            raise GraphError(
                400,
                "CredentialInvalidLifetimeAsPerAppPolicy",
                f"Credential lifetime exceeds the max value allowed as per assigned policy '{policy_id}'.",
                details=[{"code": "InvalidKeyEndDate", "target": "EndDate"}],
            )


def _application(snapshot: Snapshot, match: re.Match[str]) -> JsonObject:
    if match["app_id"] is not None:
        app = snapshot.application(match["app_id"])
        key = match["app_id"]
    else:
        key = match["object_id"]
        if not is_guid(key):
            raise GraphError(400, "Request_BadRequest", f"Invalid object identifier '{key}'.")
        app = snapshot.application_by_id(key)
    if app is None:
        raise not_found(key)
    return app


def _with_application(snapshot: Snapshot, changed: JsonObject) -> Snapshot:
    apps = tuple(changed if app["id"] == changed["id"] else app for app in snapshot.applications)
    return replace(snapshot, applications=apps)


def _audited(snapshot: Snapshot, before: JsonObject, after: JsonObject, now: datetime) -> Snapshot:
    """The directory audit entry Entra writes for a secret added or removed (when the export has audits).

    The fake cannot tell who called, so the initiator is the application "secretbot".
    """
    if not snapshot.has_audits:
        return snapshot

    def keys(app: JsonObject) -> str:
        described = [
            f"[KeyIdentifier={c['keyId']},KeyType=Password,KeyUsage=Verify,DisplayName={c.get('displayName') or ''}]"
            for c in app.get("passwordCredentials", [])
        ]
        return json.dumps(described)

    entry = {
        "id": f"Directory_{uuid.uuid4()}",
        "category": "ApplicationManagement",
        "correlationId": str(uuid.uuid4()),
        "result": "success",
        "resultReason": "",
        "activityDisplayName": "Update application \u2013 Certificates and secrets management ",
        "activityDateTime": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "loggedByService": "Core Directory",
        "operationType": "Update",
        "initiatedBy": {"app": {"displayName": "secretbot", "appId": None, "servicePrincipalId": None}, "user": None},
        "targetResources": [
            {
                "id": after["id"],
                "displayName": after.get("displayName"),
                "type": "Application",
                "modifiedProperties": [
                    {"displayName": "KeyDescription", "oldValue": keys(before), "newValue": keys(after)},
                    {"displayName": "Included Updated Properties", "oldValue": None, "newValue": '"KeyDescription"'},
                ],
            }
        ],
        "additionalDetails": [],
    }
    return replace(snapshot, directory_audits=(*snapshot.directory_audits, entry))


def _object_or_empty(body: object, key: str) -> JsonObject:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise GraphError(400, "BadRequest", "Empty Payload. JSON content expected.")
    value = body.get(key, {})
    if not isinstance(value, dict):
        raise _bad_property(key)
    return value


def _optional_time(obj: JsonObject, key: str) -> datetime | None:
    if obj.get(key) is None:
        return None
    parsed = parse_datetime(obj[key])
    if parsed is None:
        raise _bad_property(key)
    return parsed


def _bad_property(name: str) -> GraphError:
    return GraphError(400, "BadRequest", f"Invalid value specified for property '{name}'.")


def _graph_time(moment: datetime) -> str:
    # Graph writes seven fractional digits; microseconds plus a 0 keeps the same shape.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _new_secret_text() -> str:
    def pick(count: int) -> str:
        return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(count))

    return f"{pick(3)}8Q~{pick(34)}"
