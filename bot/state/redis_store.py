"""`StateStore` on Redis (redis.asyncio): atomic claims and JSON conversation references.

Works the same on a real Redis and on fakeredis, so one contract suite covers both. Any failure to
reach Redis becomes `StateUnavailable`, whose message names the operation and the error with any
credentials masked, so callers can log it and degrade.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from bot.domain import Question, StateUnavailable
from bot.state import keys, questions
from bot.state.redact import error_types, redact
from bot.state.rotations import RedisRotationStore
from bot.state.warnings import RedisWarningStore

if TYPE_CHECKING:
    from bot.state.inventory import InventoryStore

log = logging.getLogger(__name__)

# What "Redis is unreachable" looks like: redis-py's own errors, and socket errors that escape it
# (OSError also covers the builtin TimeoutError raised by asyncio timeouts).
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError)


class RedisStateStore:
    """Implements `bot.ports.StateStore`; the client is owned (and closed) by whoever created it."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._warnings = RedisWarningStore(client)
        self._rotations = RedisRotationStore(client)

    @property
    def warnings(self) -> RedisWarningStore:
        return self._warnings

    @property
    def rotations(self) -> RedisRotationStore:
        return self._rotations

    async def claim(self, kind: str, key: str) -> bool:
        name, ttl = keys.claim_key(kind, key), keys.claim_ttl(kind)
        with _unavailable("claim"):
            # NX makes the claim atomic in Redis itself, so it holds across any number of replicas.
            return bool(await self._client.set(name, 1, nx=True, ex=ttl))

    async def claim_for(self, kind: str, key: str, owner: str) -> bool:
        """`claim`, but True again for the same `owner`: a job run again after a crash keeps the claim
        its first run took, while another job for the same event (a late Slack retry) does not get it."""
        name, ttl = keys.claim_key(kind, key), keys.claim_ttl(kind)
        with _unavailable("claim"):
            if await self._client.set(name, owner, nx=True, ex=ttl):
                return True
            return _text(await self._client.get(name) or b"") == owner

    async def forget_lost_conversations(self, platform: str) -> int:
        """Drop index entries whose reference is gone (deleted by hand, or lost with a Redis that kept
        no data); returns how many. The index must only name conversations the bot can post to."""
        index = keys.conversation_index_key(platform)
        with _unavailable("forget_lost_conversations"):
            ids = [_text(member) for member in await self._client.smembers(index)]
            names = [keys.conversation_key(platform, conversation_id) for conversation_id in ids]
            values = await self._client.mget(names) if names else []
            lost = [conversation_id for conversation_id, raw in zip(ids, values, strict=True) if raw is None]
            if lost:
                await self._client.srem(index, *lost)
        return len(lost)

    async def save_conversation(self, platform: str, conversation_id: str, reference: dict[str, Any]) -> None:
        name, index = keys.conversation_key(platform, conversation_id), keys.conversation_index_key(platform)
        value = json.dumps(reference, separators=(",", ":"))  # TypeError for non-JSON values: a caller bug
        with _unavailable("save_conversation"):
            async with self._client.pipeline(transaction=True) as pipe:  # reference and index together
                pipe.set(name, value)
                pipe.sadd(index, conversation_id)
                await pipe.execute()

    async def conversation(self, platform: str, conversation_id: str) -> dict[str, Any] | None:
        name = keys.conversation_key(platform, conversation_id)
        with _unavailable("conversation"):
            raw = await self._client.get(name)
        return _decode(name, raw)

    async def conversations(self, platform: str) -> list[dict[str, Any]]:
        with _unavailable("conversations"):
            members = await self._client.smembers(keys.conversation_index_key(platform))
            ids = sorted(_text(member) for member in members)  # stable order for callers and tests
            names = [keys.conversation_key(platform, conversation_id) for conversation_id in ids]
            values = await self._client.mget(names) if names else []
        decoded = (_decode(name, raw) for name, raw in zip(names, values, strict=True))
        return [reference for reference in decoded if reference is not None]

    async def save_question(self, question_id: str, question: Question) -> None:
        value = questions.encode(question)
        with _unavailable("save_question"):
            await self._client.set(keys.question_key(question_id), value, ex=keys.QUESTION_TTL)

    async def question(self, question_id: str) -> Question | None:
        name = keys.question_key(question_id)
        with _unavailable("question"):
            raw = await self._client.get(name)
        if raw is None:
            return None
        try:
            return questions.decode(raw)
        except ValueError as error:
            log.warning("ignoring %s: %s", name, error)  # another release's format, or not ours; never crash
            return None

    def inventory(self, tenant: str) -> InventoryStore:
        """The credential inventory of `tenant` (a tenant id), on the same client."""
        from bot.state.inventory import InventoryStore

        return InventoryStore(self._client, tenant)

    async def ping(self) -> bool:
        try:
            return bool(await self._client.ping())
        except UNAVAILABLE_ERRORS:
            return False


@contextmanager
def _unavailable(operation: str) -> Iterator[None]:
    try:
        yield
    except UNAVAILABLE_ERRORS as exc:
        raise StateUnavailable(f"state store unavailable ({operation}): {redact(exc)}", error_types(exc)) from exc


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _decode(name: str, raw: bytes | str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        log.warning("ignoring %s: not a JSON object", name)  # written by something else; never crash
        return None
    return value
