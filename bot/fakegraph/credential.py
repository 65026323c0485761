"""`LocalTokenCredential`: a dummy async credential for talking to the local fake Graph only.

It shapes like an azure-identity async credential (`get_token`, `get_token_info`, `close`), which is
what kiota's `AzureIdentityAuthenticationProvider` needs, and hands out a fixed bearer token. The
token means nothing to Microsoft Entra ID and the fake accepts any bearer token, so this is for
tests, the demo and `--snapshot` mode. Never point it at real Graph.

`LocalBearer` hands the same token to `GraphHttp` alone, which reads only its two fields. It needs no
azure-core, whose import (~20 ms of `secretbot diagnose --snapshot`) kiota's check of the token's
type requires of `LocalTokenCredential`.
"""

from __future__ import annotations

import base64
import json
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, Self

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions

LOCAL_TOKEN = "fakegraph-local-token"  # not a secret: the fake accepts any bearer token

# The bot's own service principal in the sample tenant: an owner of the apps it may rotate there.
SNAPSHOT_BOT_OBJECT_ID = "9d4c2b71-5e3a-4f08-b6c1-7a2e8f0d3c95"
SNAPSHOT_BOT_APP_ID = "f2a7c4e9-0b3d-4e61-9c58-1d6f8a2b4e07"
OWNED_BY = "Application.ReadWrite.OwnedBy"


def app_token(
    *,
    object_id: str = SNAPSHOT_BOT_OBJECT_ID,
    app_id: str = SNAPSHOT_BOT_APP_ID,
    roles: tuple[str, ...] = (OWNED_BY,),
    tenant_id: str = "00000000-0000-0000-0000-000000000000",
    lifetime: int = 3600,
) -> str:
    """An app-only access token shaped as Entra issues one for Graph (a v1 JWT: `oid`, `appid`, `roles`,
    `idtyp`), with a signature nobody checks. `roles=()` leaves the claim out, as Entra does when no
    application permission is consented."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "aud": "https://graph.microsoft.com",
        "iss": f"https://sts.windows.net/{tenant_id}/",
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "appid": app_id,
        "appidacr": "1",
        "idtyp": "app",
        "oid": object_id,
        "sub": object_id,
        "tid": tenant_id,
        "ver": "1.0",
    }
    if roles:
        claims["roles"] = list(roles)
    header = {"typ": "JWT", "alg": "RS256", "kid": "fakegraph"}
    return ".".join(_b64(json.dumps(part).encode()) for part in (header, claims)) + "." + _b64(b"not-signed")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class LocalTokenCredential:
    """Returns the same dummy token for any scope; counts the calls (`token_requests`)."""

    def __init__(self, token: str = LOCAL_TOKEN, *, lifetime: int = 3600) -> None:
        self._token = token
        self._lifetime = lifetime
        self.token_requests = 0

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        # kiota passes claims= and enable_cae=; both are irrelevant to the fake.
        from azure.core.credentials import AccessToken

        self.token_requests += 1
        return AccessToken(self._token, int(time.time()) + self._lifetime)

    async def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        from azure.core.credentials import AccessTokenInfo

        self.token_requests += 1
        return AccessTokenInfo(self._token, int(time.time()) + self._lifetime)

    async def close(self) -> None:
        """Nothing to release; present because kiota and azure-identity callers may call it."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class LocalToken(NamedTuple):
    """What `GraphHttp` reads of a token: azure-core's `AccessToken` has the same two fields."""

    token: str
    expires_on: int


class LocalBearer:
    """The same dummy token for `GraphHttp` alone: every snapshot directory (`bot.wiring`)."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> LocalToken:
        return LocalToken(LOCAL_TOKEN, int(time.time()) + 3600)
