"""Graph JSON → our domain dataclasses.

Plain JSON is read here on purpose: msgraph-sdk's models re-import their whole dependency tree for
every object they deserialize (5-9 ms each, see docs/benchmarks.md), which would block the event
loop for most of a diagnosis. The fake Graph's honesty tests still hold every answer against
msgraph's models, so the shapes read here are Graph's own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bot.domain import (
    Application,
    AuditedKey,
    AuditEntry,
    Credential,
    CredentialKind,
    FederatedCredential,
    Owner,
    ServicePrincipal,
    SignIn,
    Tenant,
)

Json = dict[str, Any]
DISABLED_BY_MICROSOFT = "DisabledDueToViolationOfServicesAgreement"


def application(data: Json, owners: Sequence[Json] = (), federated: Sequence[Json] = ()) -> Application:
    credentials = tuple(_credential(p, CredentialKind.SECRET) for p in _list(data, "passwordCredentials"))
    credentials += tuple(_credential(k, CredentialKind.CERTIFICATE) for k in _list(data, "keyCredentials"))
    return Application(
        object_id=_id(data.get("id")),
        app_id=_id(data.get("appId")),
        display_name=_text(data.get("displayName")) or "(no name)",
        sign_in_audience=_text(data.get("signInAudience")),
        credentials=credentials,
        federated_credentials=tuple(_federated(f) for f in federated),
        owners=tuple(_owner(o) for o in owners),
        deleted_at=_parse_time(data.get("deletedDateTime")),
        disabled_by_microsoft=data.get("disabledByMicrosoftStatus") == DISABLED_BY_MICROSOFT,
        tags=tuple(str(t) for t in data["tags"]) if isinstance(data.get("tags"), list) else None,
    )


def service_principal(data: Json) -> ServicePrincipal:
    owner = data.get("appOwnerOrganizationId")
    return ServicePrincipal(
        object_id=_id(data.get("id")),
        app_id=_id(data.get("appId")),
        display_name=_text(data.get("displayName")) or "(no name)",
        account_enabled=data.get("accountEnabled") is not False,
        app_owner_organization_id=_id(owner) if owner else None,
    )


def tenant(data: Json) -> Tenant:
    domains = tuple(str(d["name"]).lower() for d in _list(data, "verifiedDomains") if d.get("name"))
    return Tenant(id=_id(data.get("id")), domains=domains)


def sign_in(data: dict[str, Any]) -> SignIn:
    """Beta sign-ins carry fields msgraph's v1.0 model does not have, so they are read as plain JSON."""
    status = data.get("status") or {}
    code = status.get("errorCode")
    return SignIn(
        created=_parse_time(data.get("createdDateTime")) or datetime.min.replace(tzinfo=UTC),
        error_code=int(code) if code else None,
        ip_address=data.get("ipAddress"),
        credential_key_id=_lower(data.get("servicePrincipalCredentialKeyId")),
        correlation_id=_lower(data.get("correlationId")),
        credential_type=data.get("clientCredentialType"),
    )


def audit_entry(data: dict[str, Any]) -> AuditEntry:
    initiated = data.get("initiatedBy") or {}
    user = initiated.get("user") or {}
    app = initiated.get("app") or {}
    actor = user.get("userPrincipalName") or user.get("displayName") or app.get("displayName")
    target = next(iter(_list(data, "targetResources")), {})
    changes = {str(p.get("displayName")): p for p in _list(target, "modifiedProperties")}
    before = _audited_keys((changes.get("KeyDescription") or {}).get("oldValue"))
    after = _audited_keys((changes.get("KeyDescription") or {}).get("newValue"))
    return AuditEntry(
        when=_parse_time(data.get("activityDateTime")) or datetime.min.replace(tzinfo=UTC),
        activity=str(data.get("activityDisplayName") or "change"),
        actor=actor,
        result=data.get("result"),
        target_type=_text(target.get("type")),
        added=tuple(key for key_id, key in after.items() if key_id not in before),
        removed=tuple(key for key_id, key in before.items() if key_id not in after),
        account_enabled=_new_flag((changes.get("AccountEnabled") or {}).get("newValue")),
    )


# One KeyDescription entry: "[KeyIdentifier=<guid>,KeyType=Password,KeyUsage=Verify,DisplayName=<name>]".
_KEY_DESCRIPTION = re.compile(
    r"\[KeyIdentifier=(?P<key_id>[0-9a-fA-F-]{36}),KeyType=(?P<type>[^,\]]*)(?:,[^\]]*?)?"
    r"(?:,DisplayName=(?P<name>.*))?\]$"
)
_KEY_KINDS = {"Password": CredentialKind.SECRET, "AsymmetricX509Cert": CredentialKind.CERTIFICATE}


def _audited_keys(value: object) -> dict[str, AuditedKey]:
    """The keys listed in a KeyDescription old or new value (a JSON-encoded array of strings)."""
    keys = {}
    for entry in _json_list(value):
        match = _KEY_DESCRIPTION.match(str(entry).strip())
        if match:
            key_id = match["key_id"].lower()
            keys[key_id] = AuditedKey(key_id, _KEY_KINDS.get(match["type"]), match["name"] or None)
    return keys


def _new_flag(value: object) -> bool | None:
    """`[false]` / `[true]`, as audit entries write a changed boolean."""
    values = _json_list(value)
    return values[0] if values and isinstance(values[0], bool) else None


def _json_list(value: object) -> list[Any]:
    if not isinstance(value, str):
        return []
    try:
        decoded = json.loads(value)
    except ValueError:
        return []
    return decoded if isinstance(decoded, list) else []


def _credential(data: Json, kind: CredentialKind) -> Credential:
    return Credential(
        kind=kind,
        key_id=_id(data.get("keyId")),
        display_name=_text(data.get("displayName")),
        hint=_text(data.get("hint")) if kind is CredentialKind.SECRET else None,
        start=_parse_time(data.get("startDateTime")),
        end=_parse_time(data.get("endDateTime")),
    )


def _federated(data: Json) -> FederatedCredential:
    audiences = tuple(str(a) for a in data.get("audiences") or ())
    return FederatedCredential(
        name=_text(data.get("name")) or "",
        issuer=_text(data.get("issuer")) or "",
        subject=_text(data.get("subject")) or "",
        audiences=audiences,
    )


def _owner(data: Json) -> Owner:
    return Owner(
        display_name=_text(data.get("displayName")),
        user_principal_name=_text(data.get("userPrincipalName")),
        mail=_text(data.get("mail")),
        object_id=_text(data.get("id")),
    )


def _list(data: Json, key: str) -> list[Json]:
    return [item for item in data.get(key) or () if isinstance(item, dict)]


def _text(value: object) -> str | None:
    return str(value) if value is not None else None


def _id(value: object) -> str:
    return str(value).lower() if value is not None else ""


def _lower(value: object) -> str | None:
    return str(value).lower() if value else None


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return _utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None
