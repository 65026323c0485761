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

import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, Self

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions

LOCAL_TOKEN = "fakegraph-local-token"  # not a secret: the fake accepts any bearer token


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
