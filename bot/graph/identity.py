"""Who the bot is, read from its own Graph access token: no Graph request.

The token came to us from Entra over TLS through azure-identity, so its payload is read without
checking the signature (which is for the resource, Graph, to check). App-only tokens carry the
service principal's object id in `oid`, its app id in `appid` (v1 tokens) or `azp` (v2), and the
consented application permissions in `roles`. azure-identity caches the token, so asking is cheap;
a permission granted since the token was issued shows once the cached token is renewed (≤ 1 h).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Any

from bot.rotation_types import BotIdentity

log = logging.getLogger(__name__)


class TokenIdentity:
    """`await TokenIdentity(credential, scope)()` → the bot's `BotIdentity`, or None when its token is
    not a JWT (then nothing can be told about permissions or ownership)."""

    def __init__(self, credential: Any, scope: str) -> None:
        self._credential = credential
        self._scope = scope

    async def __call__(self) -> BotIdentity | None:
        token = await self._credential.get_token(self._scope)
        return identity_of(token.token)


def identity_of(access_token: str) -> BotIdentity | None:
    claims = _payload(access_token)
    if claims is None:
        log.warning("rotation: the bot's access token is not a JWT; its permissions cannot be read")
        return None
    roles = claims.get("roles")
    return BotIdentity(
        object_id=_text(claims.get("oid")),
        app_id=_text(claims.get("appid") or claims.get("azp")),
        roles=frozenset(r for r in roles if isinstance(r, str)) if isinstance(roles, list) else frozenset(),
    )


def _payload(token: str) -> dict[str, Any] | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _text(value: object) -> str | None:
    return str(value).lower() if isinstance(value, str) and value else None
