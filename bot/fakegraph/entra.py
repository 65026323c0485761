"""`FakeEntra`: the client-credentials token endpoint of the fake tenant, over https.

`POST /{tenant}/oauth2/v2.0/token` accepts a client secret that the fake Graph issued through
addPassword (its value kept in memory only, `FakeGraph.issued`), but only `propagation` seconds
after it was added: before that, and for any other secret, it answers as Entra does for a wrong
secret (AADSTS7000215), which is what a real rotation sees while the new secret spreads. Every other
refusal is Entra's own error JSON (reference/graph.md §5.1) with its AADSTS code: 700016 app not
found, 7000222 secret expired, 7000112 app disabled, 90002 tenant not found, 7000218 no secret,
900144 missing parameter, 70003 grant type, 70011 scope.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from aiohttp import web

from bot.fakegraph.actions import IssuedSecret
from bot.fakegraph.server import FakeGraph
from bot.fakegraph.tls import LocalHttpsServer
from bot.fakegraph.values import JsonObject, parse_datetime

MAX_FORM_BYTES = 16 * 1024  # a token request is a few hundred bytes
TOKEN_LIFETIME = 3599  # seconds, as Entra answers

_NOT_FOUND = (
    "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the "
    "application has not been installed by the administrator of the tenant or consented to by any user in the "
    "tenant. You may have sent your authentication request to the wrong tenant."
)
_WRONG_SECRET = (
    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, "
    "not the client secret ID, for a secret added to app '{client_id}'."
)
_EXPIRED = (
    "The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new keys "
    "for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: "
    "https://aka.ms/certCreds."
)
_NO_TENANT = (
    "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the "
    "correct cloud. Check with your subscription administrator, this may happen if there are no active "
    "subscriptions for the tenant."
)


@dataclass(frozen=True)
class TokenRequest:
    """One token request as the fake saw it (never the secret)."""

    tenant: str
    client_id: str | None
    scope: str | None
    status: int
    code: int | None  # the AADSTS code of a refusal
    key_id: str | None  # the secret that got the token


class _Refusal(Exception):
    def __init__(self, status: int, error: str, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.code = code
        self.message = message


class FakeEntra(LocalHttpsServer):
    """Use as `async with FakeEntra(graph, propagation=5.0) as entra:`; point azure-identity at
    `entra.authority` and trust `entra.cert_path` (`connection_verify`)."""

    def __init__(self, graph: FakeGraph, *, propagation: float = 0.0) -> None:
        self.graph = graph
        self.propagation = propagation  # seconds before a new secret is accepted; may be changed at any time
        self.requests: list[TokenRequest] = []
        super().__init__()

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_FORM_BYTES)
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        return app

    @property
    def authority(self) -> str:
        """`https://127.0.0.1:PORT`: azure-identity's `authority` (it adds `/{tenant}/oauth2/v2.0/token`)."""
        return self.url

    @property
    def tenant_id(self) -> str:
        return str(self.graph.snapshot.tenant["id"])

    # --- the endpoint -------------------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        form = await request.post()
        fields = {name: value for name, value in form.items() if isinstance(value, str)}
        client_id = fields.get("client_id")
        try:
            key = self._check(tenant, fields)
        except _Refusal as refusal:
            self.requests.append(
                TokenRequest(tenant, client_id, fields.get("scope"), refusal.status, refusal.code, None)
            )
            self._log_sign_in(client_id, refusal, None)
            return web.json_response(_error_body(refusal), status=refusal.status)
        self.requests.append(TokenRequest(tenant, client_id, fields.get("scope"), 200, None, key.key_id))
        self._log_sign_in(client_id, None, key.key_id)
        token = {
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "ext_expires_in": TOKEN_LIFETIME,
            "access_token": f"fake-entra.{uuid.uuid4().hex}",
        }
        return web.json_response(token)

    def _log_sign_in(self, client_id: str | None, refusal: _Refusal | None, key_id: str | None) -> None:
        """Add the service-principal sign-in Entra would log (beta shape) when the export has sign-ins,
        so "was the old secret used since?" has evidence. Entra logs them minutes later; this at once."""
        snapshot = self.graph.snapshot
        app = snapshot.application(client_id) if client_id else None
        if not snapshot.has_sign_ins or app is None or (refusal is not None and refusal.code == 90002):
            return
        sp = snapshot.service_principal(app["appId"])
        record = {
            "id": str(uuid.uuid4()),
            "createdDateTime": self.graph.clock().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "appId": app["appId"],
            "appDisplayName": app.get("displayName"),
            "correlationId": str(uuid.uuid4()),
            "ipAddress": "127.0.0.1",
            "isInteractive": False,
            "resourceDisplayName": "Microsoft Graph",
            "resourceId": "00000003-0000-0000-c000-000000000000",
            "homeTenantId": snapshot.tenant["id"],
            "resourceTenantId": snapshot.tenant["id"],
            "servicePrincipalId": sp["id"] if sp else None,
            "servicePrincipalName": app.get("displayName"),
            "servicePrincipalCredentialKeyId": key_id,
            "clientCredentialType": "clientSecret",
            "signInEventTypes": ["servicePrincipal"],
            "status": {
                "errorCode": refusal.code if refusal else 0,
                "failureReason": refusal.message if refusal else None,
                "additionalDetails": None,
            },
        }
        self.graph.use_snapshot(replace(snapshot, sign_ins=(*snapshot.sign_ins, record)))

    def _check(self, tenant: str, fields: dict[str, str]) -> IssuedSecret:
        snapshot = self.graph.snapshot
        names = {snapshot.tenant["id"].lower(), *(domain.lower() for domain in snapshot.tenant["domains"])}
        if tenant.lower() not in names:
            raise _Refusal(400, "invalid_request", 90002, _NO_TENANT.format(tenant=tenant))
        grant = fields.get("grant_type")
        if not grant:
            raise _missing("grant_type")
        if grant != "client_credentials":
            message = f"The app requested an unsupported grant type '{grant}'."
            raise _Refusal(400, "unsupported_grant_type", 70003, message)
        client_id = fields.get("client_id")
        if not client_id:
            raise _missing("client_id")
        scope = fields.get("scope")
        if not scope:
            raise _missing("scope")
        if not scope.endswith("/.default") or " " in scope.strip():
            message = (
                f"The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            )
            raise _Refusal(400, "invalid_scope", 70011, message)
        app = snapshot.application(client_id)
        if app is None:
            if snapshot.service_principal(client_id) is None:
                raise _Refusal(
                    400, "unauthorized_client", 700016, _NOT_FOUND.format(client_id=client_id, tenant=tenant)
                )
            raise _wrong_secret(client_id)  # registered in another tenant: no secret of ours fits
        sp = snapshot.service_principal(client_id)
        if sp is not None and sp.get("accountEnabled") is False:
            message = f"Application '{client_id}'({app.get('displayName')}) is disabled."
            raise _Refusal(400, "unauthorized_client", 7000112, message)
        secret = fields.get("client_secret")
        if not secret:
            message = "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."
            raise _Refusal(401, "invalid_client", 7000218, message)
        issued = self.graph.issued.find(app["appId"], secret)
        credential = _credential(app, issued.key_id) if issued is not None else None
        if issued is None or credential is None:
            raise _wrong_secret(client_id)
        end = parse_datetime(credential.get("endDateTime"))
        if end is not None and end <= self.graph.clock():
            raise _Refusal(401, "invalid_client", 7000222, _EXPIRED.format(client_id=client_id))
        if time.monotonic() - issued.added_at < self.propagation:
            raise _wrong_secret(client_id)  # not everywhere yet: Entra says exactly this meanwhile
        return issued


def _credential(app: JsonObject, key_id: str) -> JsonObject | None:
    return next((c for c in app.get("passwordCredentials", []) if c["keyId"] == key_id), None)


def _missing(name: str) -> _Refusal:
    return _Refusal(400, "invalid_request", 900144, f"The request body must contain the following parameter: '{name}'.")


def _wrong_secret(client_id: str) -> _Refusal:
    return _Refusal(401, "invalid_client", 7000215, _WRONG_SECRET.format(client_id=client_id))


def _error_body(refusal: _Refusal) -> JsonObject:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    # Entra separates the parts with CRLF (reference/graph.md §5.1).
    description = (
        f"AADSTS{refusal.code}: {refusal.message}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}"
        f"\r\nTimestamp: {now}"
    )
    return {
        "error": refusal.error,
        "error_description": description,
        "error_codes": [refusal.code],
        "timestamp": now,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"https://login.microsoftonline.com/error?code={refusal.code}",
    }
