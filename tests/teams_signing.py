"""Make the Agents SDK's JWT validator trust a signing key that a test made itself.

The SDK checks Bot Framework tokens against the keys published at a hard-coded URL
(`AuthenticationConstants.PUBLIC_ABS_JWKS_URL`, https://login.botframework.com/v1/.well-known/keys),
through a class-level table of `PyJWKClient`s (`JwtTokenValidator._jwk_client_manager`). It has no
setting, hook or environment variable to trust other keys (1.9.0), so a test that wants to send a
really signed token puts a client for that URL into the table, and takes it out again afterwards.

Only code can do this, on purpose: nothing in `serve` calls it and no environment variable reaches
it. It touches private SDK names; when they change, it fails loudly instead of letting a test fall
through to the real key endpoint.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from jwt import PyJWKClient
from microsoft_agents.hosting.core import AuthenticationConstants, JwtTokenValidator
from microsoft_agents.hosting.core.authorization.jwt import jwt_token_validator


@contextmanager
def trusting_signing_keys_for_tests(jwks: dict[str, Any]) -> Iterator[None]:
    """Within the block, Bot Framework tokens (issuer https://api.botframework.com) are checked
    against `jwks` (a JSON Web Key Set: `{"keys": [{"kid", "kty", "n", "e", …}]}`) instead of
    Microsoft's published keys. Everything else the validator does (signature, expiry, audience,
    issuer) stays as it is. Process-wide while it lasts: use it around one test."""
    cache = _client_table()
    url = AuthenticationConstants.PUBLIC_ABS_JWKS_URL
    previous = cache.get(url)
    cache[url] = jwt_token_validator._JwkClientCacheEntry(_InMemoryJwksClient(url, jwks), threading.Lock())
    try:
        yield
    finally:
        if previous is None:
            cache.pop(url, None)
        else:
            cache[url] = previous


class _InMemoryJwksClient(PyJWKClient):
    """PyJWKClient's own key selection (kid, `use`, key type) over a key set held in memory.

    PyJWT documents `fetch_data` as the method a subclass may override; nothing is fetched.
    """

    def __init__(self, uri: str, jwks: dict[str, Any]) -> None:
        super().__init__(uri, cache_jwk_set=False)
        self._jwks = jwks

    def fetch_data(self) -> Any:
        return self._jwks


def _client_table() -> dict[str, Any]:
    manager = getattr(JwtTokenValidator, "_jwk_client_manager", None)
    cache = getattr(manager, "_cache", None)
    if not isinstance(cache, dict) or not hasattr(jwt_token_validator, "_JwkClientCacheEntry"):
        raise RuntimeError("the Agents SDK's JWKS client cache moved; update tests/teams_signing.py")
    return cache
