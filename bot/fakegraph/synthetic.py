"""A large synthetic tenant, generated in-process, for paging tests and the bulk-read benchmark.

Deterministic (the same `apps` and `seed` give the same tenant, byte for byte) and shaped like a
real export: every app has a service principal, 0-3 client secrets and 0-2 certificates with
Graph's own credential fields, some already expired, and 0-2 owners from a small staff.
"""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime, timedelta

from bot.fakegraph.snapshot import Snapshot
from bot.fakegraph.values import JsonObject

SYNTHETIC_TENANT_ID = "5a1e0c3b-7d2f-4e69-8b14-c0ffee0b0a7d"
SYNTHETIC_DOMAIN = "synthetic-tenant.onmicrosoft.com"
# Credentials start within two years before this moment and last 6-24 months, so a share has expired.
_REFERENCE = datetime(2026, 11, 20, tzinfo=UTC)
_STAFF = 40
_HINT_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789~._-"
_AUDIENCES = ("AzureADMyOrg", "AzureADMyOrg", "AzureADMyOrg", "AzureADMultipleOrgs")


def synthetic_snapshot(apps: int, *, seed: int = 11, service_principals: int | None = None) -> Snapshot:
    """A tenant of `apps` applications, each with a service principal (see the module docstring).

    With `service_principals`, only that many apps have one, and those carry the credentials a real
    tenant's enterprise apps hold: a SAML signing certificate (Sign and Verify keys and the password
    that holds its private key, one thumbprint) on one in ten, a client secret on one in twenty.
    """
    rng = random.Random(seed)
    staff = [_user(rng, number) for number in range(1, _STAFF + 1)]
    applications: list[JsonObject] = []
    sps: list[JsonObject] = []
    owners: dict[str, tuple[JsonObject, ...]] = {}
    for number in range(1, apps + 1):
        app = _application(rng, number)
        applications.append(app)
        if service_principals is None:
            sps.append(_service_principal(rng, app))
        elif number <= service_principals:
            sps.append(_enterprise_service_principal(rng, app))
        owners[app["id"]] = tuple(rng.sample(staff, rng.randint(0, 2)))
    return Snapshot(
        tenant={
            "id": SYNTHETIC_TENANT_ID,
            "displayName": "Synthetic Tenant",
            "defaultDomain": SYNTHETIC_DOMAIN,
            "domains": [SYNTHETIC_DOMAIN],
        },
        applications=tuple(applications),
        service_principals=tuple(sps),
        owners=owners,
        has_service_principals=True,
        has_deleted_applications=True,
    )


def _guid(rng: random.Random) -> str:
    # A version-4 GUID, formatted by hand: uuid.UUID() is a third of the generation time.
    digits = f"{rng.getrandbits(128):032x}"
    variant = "89ab"[int(digits[16], 16) & 3]
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{variant}{digits[17:20]}-{digits[20:]}"


def _stamp(moment: datetime) -> str:
    return moment.replace(tzinfo=None).isoformat() + "Z"  # whole seconds; several times faster than strftime


def _window(rng: random.Random) -> tuple[str, str]:
    start = _REFERENCE - timedelta(days=rng.randint(0, 730), seconds=rng.randint(0, 86_399))
    return _stamp(start), _stamp(start + timedelta(days=rng.choice((180, 365, 365, 730))))


def _secret(rng: random.Random, name: str, index: int) -> JsonObject:
    start, end = _window(rng)
    return {
        "customKeyIdentifier": None,
        "displayName": f"{name}-secret-{index}",
        "endDateTime": end,
        "hint": "".join(rng.choices(_HINT_CHARS, k=3)),
        "keyId": _guid(rng),
        "secretText": None,
        "startDateTime": start,
    }


def _certificate(rng: random.Random, name: str) -> JsonObject:
    start, end = _window(rng)
    return {
        "customKeyIdentifier": base64.b64encode(rng.randbytes(20)).decode(),  # a SHA-1 thumbprint
        "displayName": f"CN={name}.{SYNTHETIC_DOMAIN}",
        "endDateTime": end,
        "key": None,
        "keyId": _guid(rng),
        "startDateTime": start,
        "type": "AsymmetricX509Cert",
        "usage": "Verify",
    }


def _application(rng: random.Random, number: int) -> JsonObject:
    name = f"app-{number:06d}"
    return {
        "id": _guid(rng),
        "appId": _guid(rng),
        "displayName": name,
        "createdDateTime": _stamp(_REFERENCE - timedelta(days=rng.randint(30, 2000))),
        "signInAudience": rng.choice(_AUDIENCES),
        "publisherDomain": SYNTHETIC_DOMAIN,
        "identifierUris": [],
        "tags": [],
        "passwordCredentials": [_secret(rng, name, index) for index in range(1, rng.randint(0, 3) + 1)],
        "keyCredentials": [_certificate(rng, name) for _ in range(rng.randint(0, 2))],
    }


def _service_principal(rng: random.Random, app: JsonObject) -> JsonObject:
    return {
        "id": _guid(rng),
        "appId": app["appId"],
        "displayName": app["displayName"],
        "appDisplayName": app["displayName"],
        "accountEnabled": rng.random() > 0.02,
        "appOwnerOrganizationId": SYNTHETIC_TENANT_ID,
        "servicePrincipalType": "Application",
        "servicePrincipalNames": [app["appId"]],
        "signInAudience": app["signInAudience"],
        "tags": ["WindowsAzureActiveDirectoryIntegratedApp"],
        "passwordCredentials": [],
        "keyCredentials": [_certificate(rng, app["displayName"])] if rng.random() < 0.05 else [],
    }


def _enterprise_service_principal(rng: random.Random, app: JsonObject) -> JsonObject:
    sp = _service_principal(rng, app)
    roll = rng.random()
    if roll < 0.10:
        start, end = _window(rng)
        thumbprint = base64.b64encode(rng.randbytes(20)).decode()
        name = f"CN=Microsoft Azure Federated SSO Certificate ({app['displayName']})"
        common = {"customKeyIdentifier": thumbprint, "displayName": name, "endDateTime": end, "startDateTime": start}
        cert = {**common, "key": None, "type": "AsymmetricX509Cert"}
        sp["keyCredentials"] = [
            {**cert, "keyId": _guid(rng), "usage": "Sign"},
            {**cert, "keyId": _guid(rng), "usage": "Verify"},
        ]
        sp["passwordCredentials"] = [{**common, "hint": None, "keyId": _guid(rng), "secretText": None}]
        sp["preferredSingleSignOnMode"] = "saml"
    elif roll < 0.15:
        sp["passwordCredentials"] = [_secret(rng, app["displayName"] + "-sp", 1)]
    return sp


def _user(rng: random.Random, number: int) -> JsonObject:
    login = f"staff{number:02d}"
    return {
        "@odata.type": "#microsoft.graph.user",
        "id": _guid(rng),
        "displayName": f"Staff Member {number:02d}",
        "userPrincipalName": f"{login}@{SYNTHETIC_DOMAIN}",
        "mail": f"{login}@{SYNTHETIC_DOMAIN}",
    }
