"""Graph JSON → msgraph-sdk models → our domain dataclasses.

Graph's own models do the reading (dates, GUIDs, discriminators); this module only picks the
fields the diagnosis needs, so no Graph type travels past `bot.graph`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from kiota_serialization_json.json_parse_node import JsonParseNode
from msgraph.generated.models.application import Application as GraphApplication
from msgraph.generated.models.federated_identity_credential import FederatedIdentityCredential
from msgraph.generated.models.key_credential import KeyCredential
from msgraph.generated.models.organization import Organization
from msgraph.generated.models.password_credential import PasswordCredential
from msgraph.generated.models.service_principal import ServicePrincipal as GraphServicePrincipal
from msgraph.generated.models.user import User

from bot.domain import (
    Application,
    AuditEntry,
    Credential,
    CredentialKind,
    FederatedCredential,
    Owner,
    ServicePrincipal,
    SignIn,
    Tenant,
)


def read(data: dict[str, Any], model: Any) -> Any:
    """Deserialize one Graph JSON object with msgraph's own model class."""
    return JsonParseNode(data).get_object_value(model)


def application(
    data: dict[str, Any], owners: Sequence[dict[str, Any]] = (), federated: Sequence[dict[str, Any]] = ()
) -> Application:
    app = read(data, GraphApplication)
    credentials = tuple(_secret(p) for p in app.password_credentials or ()) + tuple(
        _certificate(k) for k in app.key_credentials or ()
    )
    return Application(
        object_id=_id(app.id),
        app_id=_id(app.app_id),
        display_name=app.display_name or "(no name)",
        sign_in_audience=app.sign_in_audience,
        credentials=credentials,
        federated_credentials=tuple(_federated(f) for f in federated),
        owners=tuple(_owner(o) for o in owners),
        deleted_at=_utc(app.deleted_date_time),
    )


def service_principal(data: dict[str, Any]) -> ServicePrincipal:
    sp = read(data, GraphServicePrincipal)
    return ServicePrincipal(
        object_id=_id(sp.id),
        app_id=_id(sp.app_id),
        display_name=sp.display_name or "(no name)",
        account_enabled=sp.account_enabled is not False,
        app_owner_organization_id=_id(sp.app_owner_organization_id) if sp.app_owner_organization_id else None,
    )


def tenant(data: dict[str, Any]) -> Tenant:
    org = read(data, Organization)
    domains = tuple(d.name.lower() for d in org.verified_domains or () if d.name)
    return Tenant(id=_id(org.id), domains=domains)


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
    return AuditEntry(
        when=_parse_time(data.get("activityDateTime")) or datetime.min.replace(tzinfo=UTC),
        activity=str(data.get("activityDisplayName") or "change"),
        actor=actor,
        result=data.get("result"),
    )


def _secret(p: PasswordCredential) -> Credential:
    return Credential(
        kind=CredentialKind.SECRET,
        key_id=_id(p.key_id),
        display_name=p.display_name,
        hint=p.hint,
        start=_utc(p.start_date_time),
        end=_utc(p.end_date_time),
    )


def _certificate(k: KeyCredential) -> Credential:
    return Credential(
        kind=CredentialKind.CERTIFICATE,
        key_id=_id(k.key_id),
        display_name=k.display_name,
        hint=None,
        start=_utc(k.start_date_time),
        end=_utc(k.end_date_time),
    )


def _federated(data: dict[str, Any]) -> FederatedCredential:
    fic = read(data, FederatedIdentityCredential)
    return FederatedCredential(
        name=fic.name or "", issuer=fic.issuer or "", subject=fic.subject or "", audiences=tuple(fic.audiences or ())
    )


def _owner(data: dict[str, Any]) -> Owner:
    user = read(data, User)
    return Owner(display_name=user.display_name, user_principal_name=user.user_principal_name, mail=user.mail)


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
