"""The guard in front of `POST /api/messages`: a Bot Framework token is checked before the SDK runs.

The Agents SDK's own middleware (1.9.0) is not used: a token without `kid` made it raise KeyError
(500), every unknown `kid` made it fetch Microsoft's keys again, and that fetch ran in a thread,
behind one lock, with PyJWT's 30 s timeout, so an unreachable key endpoint held every request.

Here, in order:
1. a look at the token without its signature (no network): a Bearer JWT, RS256, a `kid`, an
   expiry not past, our app id as audience. Anything else is refused with 401 at once;
2. the SDK's `JwtTokenValidator`, unchanged (signature, expiry, audience, issuer, tenant binding),
   given signing keys from `SigningKeys`: cached, fetched with a time limit, refetched for an
   unknown `kid` at most once a minute. When no key can be had in time the answer is 503 with
   Retry-After: the caller may well be Microsoft, and Bot Framework retries.

Every refusal is one WARNING line naming the reason, never the token or a stack trace.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import warnings
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from jwt import PyJWK, PyJWKSet
from jwt.exceptions import PyJWKClientError, PyJWTError
from microsoft_agents.hosting.core import AgentAuthConfiguration, JwtTokenValidator
from microsoft_agents.hosting.core.authorization.jwt.jwt_token_validator import _JwkClientManager

log = logging.getLogger(__name__)

KEY_FETCH_TIMEOUT = 5.0  # seconds for one fetch of a key set, connection included
KEYS_TTL = 3600.0  # seconds a fetched key set is used before it is fetched again
UNKNOWN_KID_REFETCH = 60.0  # an unknown kid refetches the set at most this often
RETRY_FETCH_AFTER = 10.0  # seconds after a failed fetch before the next try; also the 503's Retry-After
MAX_KEY_SET_BYTES = 256 * 1024  # Microsoft's key sets are a few kB
LEEWAY = 300  # seconds of clock skew, as the SDK allows (and the Bot Framework documents)
ALGORITHM = "RS256"  # the only one the SDK verifies with

# Tests point every key fetch at a local server (tests/teams_signing.py); nothing else sets this.
key_endpoint_for_tests: str | None = None

_SDK_CLAIMS_KEY = "claims_identity"  # where the SDK's adapter looks for the caller
_UNAUTHORIZED = {"error": "Invalid token or authentication failed."}


class Refused(Exception):
    """A request without a usable token; the message is the reason, safe to log (no token content)."""


class KeysUnavailable(Exception):
    """Microsoft's signing keys could not be fetched in time; the message names the failure's type."""


def guard(config: AgentAuthConfiguration, keys: SigningKeys) -> Middleware:
    """The aiohttp middleware for the `/api` sub-application."""
    # The SDK's validator logs a WARNING of its own for some refusals; ours says why, once.
    logging.getLogger(JwtTokenValidator.__module__).setLevel(logging.ERROR)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        header = request.headers.get("Authorization")
        try:
            if header is None and config.ANONYMOUS_ALLOWED:
                claims = JwtTokenValidator(config).get_anonymous_claims()  # the local-testing flag
            else:
                token = check_unverified(header, config.CLIENT_ID, time.time())
                claims = await _Validator(config, keys).validate_token(token)
        except Refused as refusal:
            return _refuse(str(refusal))
        except (PyJWTError, ValueError, KeyError, TypeError) as error:
            # PyJWT's error types name the failure; the SDK's ValueErrors carry fixed texts.
            reason = str(error)[:40] if type(error) is ValueError else type(error).__name__
            return _refuse(f"token not valid ({reason})")
        except KeysUnavailable as error:
            log.warning("teams request refused: signing keys unavailable (%s), answering 503", error)
            return web.json_response(
                {"error": "signing keys unavailable, retry later"},
                status=503,
                headers={"Retry-After": str(int(RETRY_FETCH_AFTER))},
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", web.NotAppKeyWarning)  # the SDK's adapter reads this plain key
            request[_SDK_CLAIMS_KEY] = claims
        return await handler(request)

    return middleware


def check_unverified(header: str | None, app_id: str | None, now: float) -> str:
    """The token from `header`, if its shape and claims can be right; else `Refused`. No network."""
    if header is None:
        raise Refused("no Authorization header")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or any(c.isspace() for c in token):
        raise Refused("not a Bearer token")
    try:
        head = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except PyJWTError:
        raise Refused("not a JWT") from None
    if head.get("alg") != ALGORITHM:
        raise Refused(f"not signed with {ALGORITHM}")
    if not isinstance(head.get("kid"), str) or not head["kid"]:
        raise Refused("no key id (kid) in the token")
    expiry = claims.get("exp")
    if not isinstance(expiry, int | float) or isinstance(expiry, bool) or not math.isfinite(expiry):
        raise Refused("no expiry in the token")
    if expiry + LEEWAY < now:
        raise Refused("token expired")
    audience = claims.get("aud")
    if not app_id or not isinstance(audience, str) or audience.lower() != app_id.lower():
        raise Refused("token is for another audience")
    return token


def _refuse(reason: str) -> web.Response:
    log.warning("teams request refused: %s", reason)
    return web.json_response(_UNAUTHORIZED, status=401)


@dataclass
class _KeySet:
    keys: dict[str, PyJWK]
    fetched_at: float


class SigningKeys(_JwkClientManager):
    """Signing keys per key-set URL, in the shape of the SDK's key manager (`get_signing_key`).

    One fetch at a time per URL (others wait for it), bounded in time and size; a set is kept for
    KEYS_TTL and reused when a refresh fails; after a failure without any set, requests are told
    503 for RETRY_FETCH_AFTER instead of each waiting for the same dead endpoint.
    """

    def __init__(self, *, endpoint: str | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # the SDK leaves it unannotated
        self._endpoint = endpoint  # fetch every set here instead (tests)
        self._sets: dict[str, _KeySet] = {}
        self._failed_at: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._session: aiohttp.ClientSession | None = None

    async def get_signing_key(self, jwks_uri: str, header: dict[str, Any]) -> PyJWK:
        kid = header.get("kid")
        key_set = self._usable(jwks_uri, kid)
        if key_set is None:
            async with self._locks.setdefault(jwks_uri, asyncio.Lock()):
                key_set = self._usable(jwks_uri, kid) or await self._refresh(jwks_uri)
        key = key_set.keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise PyJWKClientError("no signing key with this kid")
        return key

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _usable(self, uri: str, kid: object) -> _KeySet | None:
        """The cached set, unless it is old, or lacks `kid` and may be refetched already."""
        key_set = self._sets.get(uri)
        if key_set is None:
            return None
        age = time.monotonic() - key_set.fetched_at
        if age > KEYS_TTL or (kid not in key_set.keys and age > UNKNOWN_KID_REFETCH):
            return None
        return key_set

    async def _refresh(self, uri: str) -> _KeySet:
        previous = self._sets.get(uri)
        if time.monotonic() - self._failed_at.get(uri, -RETRY_FETCH_AFTER) < RETRY_FETCH_AFTER:
            if previous is not None:
                return previous
            raise KeysUnavailable("the last fetch failed moments ago")
        try:
            keys = await self._fetch(self._endpoint or uri)
        except KeysUnavailable:
            self._failed_at[uri] = time.monotonic()
            if previous is not None:
                log.warning("signing keys could not be refreshed; still using the ones fetched before")
                return previous
            raise
        self._sets[uri] = _KeySet(keys, time.monotonic())
        return self._sets[uri]

    async def _fetch(self, url: str) -> dict[str, PyJWK]:
        if self._session is None:
            # trust_env: HTTPS_PROXY and NO_PROXY apply, as they did to the SDK's urllib-based fetch.
            self._session = aiohttp.ClientSession(trust_env=True)
        try:
            async with asyncio.timeout(KEY_FETCH_TIMEOUT):
                async with self._session.get(url, allow_redirects=False) as response:
                    if response.status != 200:
                        raise KeysUnavailable(f"HTTP {response.status}")
                    body = await _read_bounded(response)
            key_set = PyJWKSet.from_dict(json.loads(body))
        except (TimeoutError, aiohttp.ClientError, ValueError, TypeError, AttributeError, PyJWTError) as error:
            raise KeysUnavailable(type(error).__name__) from None
        # As PyJWKClient selects: signing keys with an id.
        return {k.key_id: k for k in key_set.keys if k.key_id and k.public_key_use in ("sig", None)}


async def _read_bounded(response: aiohttp.ClientResponse) -> bytes:
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > MAX_KEY_SET_BYTES:
            raise KeysUnavailable("key set too large")
    return bytes(body)


class _Validator(JwtTokenValidator):
    """The SDK's validator with our key cache in place of its thread-and-lock PyJWKClient table."""

    def __init__(self, configuration: AgentAuthConfiguration, keys: SigningKeys) -> None:
        super().__init__(configuration)
        self._jwk_client_manager = keys
