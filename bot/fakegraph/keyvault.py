"""`FakeKeyVault`: the part of Azure Key Vault's secrets REST API that azure-keyvault-secrets'
`SecretClient` uses, over https, with its bearer-challenge handshake.

- A request without a bearer token gets 401 and `WWW-Authenticate: Bearer authorization="…/{tenant}",
  resource="https://vault.azure.net"`: the SDK sends its first request without a body to learn the
  tenant and resource, then asks its credential for a token and sends the request again.
- `PUT /secrets/{name}` (value, contentType, tags, attributes) makes a new version;
  `GET /secrets/{name}/{version}` (empty version: the latest); `DELETE /secrets/{name}` (soft delete);
  `GET /deletedsecrets/{name}` (what the SDK's delete poller asks).
- `refuse(...)`: the next writes get Key Vault's 403 (an access policy without "set" permission).

Values are kept in memory only and never logged. Any bearer token is accepted (like the fake Graph).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.fakegraph.tls import LocalHttpsServer
from bot.fakegraph.values import JsonObject

# "7.6" and older; newer SDKs send dated versions ("2025-07-01", "2026-04-01").
_API_VERSION = re.compile(r"7\.[0-6]|\d{4}-\d{2}-\d{2}(?:-preview)?")
RESOURCE = "https://vault.azure.net"
MAX_VALUE_BYTES = 25 * 1024  # Key Vault's limit on a secret's value
MAX_BODY_BYTES = 64 * 1024
_NAME = re.compile(r"[0-9a-zA-Z-]{1,127}")
RECOVERABLE_DAYS = 90


@dataclass
class SecretVersion:
    """One version of a secret as the vault holds it."""

    version: str
    value: str
    content_type: str | None
    tags: dict[str, str]
    enabled: bool
    not_before: int | None
    expires: int | None
    created: int


@dataclass
class _Secret:
    versions: list[SecretVersion] = field(default_factory=list)
    deleted_at: int | None = None


@dataclass
class VaultRequest:
    method: str
    path: str
    status: int
    authorized: bool  # it carried a bearer token


@dataclass
class _Refusal:
    status: int
    times: int | None
    methods: frozenset[str]
    hits: int = 0


class FakeKeyVault(LocalHttpsServer):
    """Use as `async with FakeKeyVault() as vault:`; give `SecretClient` `vault.url`,
    `verify_challenge_resource=False` (the resource is vault.azure.net, the host is 127.0.0.1) and
    `connection_verify=vault.cert_path`."""

    def __init__(self, *, tenant_id: str = "6f1c3a52-8d4e-4b7a-9c21-3e5f7a9b0c14", name: str = "fake-vault") -> None:
        self.tenant_id = tenant_id
        self.name = name
        self.requests: list[VaultRequest] = []
        self._secrets: dict[str, _Secret] = {}
        self._refusals: list[_Refusal] = []
        self.put_delay = 0.0  # seconds a write waits before it is applied (a slow vault; a window to kill a worker in)
        super().__init__()

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    # --- test controls ------------------------------------------------------------------------------

    def refuse(self, *, status: int = 403, times: int | None = None, methods: tuple[str, ...] = ("PUT",)) -> None:
        """Answer the next `times` (None: all) requests with these methods with Key Vault's error for `status`."""
        self._refusals.append(_Refusal(status, times, frozenset(m.upper() for m in methods)))

    def versions(self, name: str) -> list[SecretVersion]:
        """Every version of a secret, oldest first (empty when there is none)."""
        secret = self._secrets.get(name.lower())
        return list(secret.versions) if secret else []

    # --- the API ------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        authorized = _bearer(request)
        response = await self._answer(request, authorized)
        self.requests.append(VaultRequest(request.method, request.path, response.status, authorized))
        return response

    async def _answer(self, request: web.Request, authorized: bool) -> web.Response:
        version = request.query.get("api-version")
        if version is None or _API_VERSION.fullmatch(version) is None:
            return _error(400, "BadParameter", f"The specified version ({version}) is not recognized.")
        if not authorized:
            challenge = (
                f'Bearer authorization="https://login.microsoftonline.com/{self.tenant_id}", resource="{RESOURCE}"'
            )
            body = {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}}
            return web.json_response(body, status=401, headers={"WWW-Authenticate": challenge})
        refusal = self._refusal(request.method)
        if refusal is not None:
            return _refused(refusal.status, self.name)
        parts = [part for part in request.path.split("/") if part]
        base = f"{request.scheme}://{request.host}"
        if len(parts) in (2, 3) and parts[0] == "secrets":
            name = parts[1]
            if _NAME.fullmatch(name) is None:
                return _error(400, "BadParameter", f"The request URI contains an invalid name: {name}")
            if request.method == "PUT" and len(parts) == 2:
                await asyncio.sleep(self.put_delay)
                return await self._set(request, base, name)
            if request.method == "GET":
                return self._get(base, name, parts[2] if len(parts) == 3 else "")
            if request.method == "DELETE" and len(parts) == 2:
                return self._delete(base, name)
        if len(parts) == 2 and parts[0] == "deletedsecrets" and request.method == "GET":
            return self._get_deleted(base, parts[1])
        return _error(404, "NotFound", "The requested resource was not found.")  # not an endpoint the bot uses

    async def _set(self, request: web.Request, base: str, name: str) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "BadParameter", "The request body is not valid JSON.")
        value = body.get("value") if isinstance(body, dict) else None
        if not isinstance(value, str):
            return _error(400, "BadParameter", "Property 'value' is required and must be a string.")
        if len(value.encode("utf-8")) > MAX_VALUE_BYTES:
            return _error(400, "BadParameter", "The secret value exceeds the maximum size of 25 KB.")
        secret = self._secrets.setdefault(name.lower(), _Secret())
        if secret.deleted_at is not None:
            message = (
                f"Secret {name} is currently in a deleted but recoverable state, and its name cannot be reused; "
                "in this state, the secret can only be recovered or purged."
            )
            return _error(409, "Conflict", message, inner="ObjectIsDeletedButRecoverable")
        attributes = body.get("attributes") or {}
        tags = body.get("tags") or {}
        if not isinstance(attributes, dict) or not isinstance(tags, dict):
            return _error(400, "BadParameter", "Properties 'attributes' and 'tags' must be objects.")
        created = int(time.time())
        stored = SecretVersion(
            version=uuid.uuid4().hex,
            value=value,
            content_type=body.get("contentType"),
            tags={str(k): str(v) for k, v in tags.items()},
            enabled=attributes.get("enabled", True) is not False,
            not_before=_int_or_none(attributes.get("nbf")),
            expires=_int_or_none(attributes.get("exp")),
            created=created,
        )
        secret.versions.append(stored)
        return web.json_response(_bundle(base, name, stored, with_value=True))

    def _get(self, base: str, name: str, version: str) -> web.Response:
        secret = self._secrets.get(name.lower())
        if secret is None or secret.deleted_at is not None or not secret.versions:
            return _not_found(name)
        found = secret.versions[-1] if not version else next((v for v in secret.versions if v.version == version), None)
        if found is None:
            return _not_found(name)
        if not found.enabled:
            return _error(
                403, "Forbidden", "Operation get is not allowed on a disabled secret.", inner="SecretDisabled"
            )
        return web.json_response(_bundle(base, name, found, with_value=True))

    def _delete(self, base: str, name: str) -> web.Response:
        secret = self._secrets.get(name.lower())
        if secret is None or secret.deleted_at is not None or not secret.versions:
            return _not_found(name)
        secret.deleted_at = int(time.time())
        return web.json_response(self._deleted_bundle(base, name, secret))

    def _get_deleted(self, base: str, name: str) -> web.Response:
        secret = self._secrets.get(name.lower())
        if secret is None or secret.deleted_at is None:
            return _not_found(name, deleted=True)
        return web.json_response(self._deleted_bundle(base, name, secret))

    def _deleted_bundle(self, base: str, name: str, secret: _Secret) -> JsonObject:
        assert secret.deleted_at is not None
        return {
            **_bundle(base, name, secret.versions[-1], with_value=False),
            "recoveryId": f"{base}/deletedsecrets/{name}",
            "deletedDate": secret.deleted_at,
            "scheduledPurgeDate": secret.deleted_at + RECOVERABLE_DAYS * 86400,
        }

    def _refusal(self, method: str) -> _Refusal | None:
        for refusal in self._refusals:
            if method.upper() in refusal.methods and (refusal.times is None or refusal.hits < refusal.times):
                refusal.hits += 1
                return refusal
        return None


def _bearer(request: web.Request) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


def _bundle(base: str, name: str, stored: SecretVersion, *, with_value: bool) -> JsonObject:
    attributes: dict[str, Any] = {
        "enabled": stored.enabled,
        "created": stored.created,
        "updated": stored.created,
        "recoveryLevel": "Recoverable+Purgeable",
        "recoverableDays": RECOVERABLE_DAYS,
    }
    if stored.not_before is not None:
        attributes["nbf"] = stored.not_before
    if stored.expires is not None:
        attributes["exp"] = stored.expires
    bundle: JsonObject = {
        "id": f"{base}/secrets/{name}/{stored.version}",
        "attributes": attributes,
        "tags": stored.tags,
    }
    if stored.content_type is not None:
        bundle["contentType"] = stored.content_type
    if with_value:
        bundle["value"] = stored.value
    return bundle


def _int_or_none(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _error(status: int, code: str, message: str, *, inner: str | None = None) -> web.Response:
    error: JsonObject = {"code": code, "message": message}
    if inner is not None:
        error["innererror"] = {"code": inner}
    return web.json_response({"error": error}, status=status)


def _not_found(name: str, *, deleted: bool = False) -> web.Response:
    where = "deleted secret" if deleted else "secret"
    message = (
        f"A {where} with (name/id) {name} was not found in this key vault. If you recently deleted this secret you "
        "may be able to recover it using the correct recovery command. For help resolving this issue, please see "
        "https://go.microsoft.com/fwlink/?linkid=2125182"
    )
    return _error(404, "SecretNotFound", message)


def _refused(status: int, vault: str) -> web.Response:
    if status == 403:
        # An access-policy vault whose policy lacks "set" for the caller (shape seen in public reports).
        message = (
            "The user, group or application 'appid=…;oid=…;iss=https://sts.windows.net/…/' does not have secrets set "
            f"permission on key vault '{vault};location=westeurope'. For help resolving this issue, please see "
            "https://go.microsoft.com/fwlink/?linkid=2125287"
        )
        return _error(403, "Forbidden", message, inner="AccessDenied")
    if status == 429:
        return _error(429, "Throttled", "Request was not processed because too many requests were received.")
    return _error(status, "ServiceUnavailable", "The service is temporarily unavailable.")
