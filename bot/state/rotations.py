"""Rotation records in Redis (implements `bot.ports.RotationStore`).

Every change is a compare-and-set: WATCH the record, read it, let the caller decide from what is
there, and write with MULTI/EXEC, which Redis refuses when anyone wrote the record in between (then
the caller decides again on the new record). So a transition's check and its write are one step on
any number of replicas.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import redis.asyncio as redis
from redis.exceptions import RedisError, WatchError

from bot.domain import StateUnavailable
from bot.rotation_types import Rotation
from bot.state import keys
from bot.state.redact import error_types, redact

log = logging.getLogger(__name__)

MAX_CAS_ROUNDS = 50  # a record is written a handful of times per rotation; 50 lost races means trouble
Change = Callable[[Rotation], Rotation | None]  # the record as it should be, or None to leave it


class RedisRotationStore:
    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    async def create(self, rotation: Rotation) -> bool:
        """Save a new request; False when that id exists already."""
        key = keys.rotation_key(rotation.id)
        try:
            created = await self._client.set(key, rotation.to_json(), nx=True, ex=keys.ROTATION_TTL)
            if created:
                await self._client.zadd(keys.ROTATIONS_INDEX_KEY, {rotation.id: rotation.requested_at.timestamp()})
                await self._client.zadd(keys.ROTATION_DEADLINES_KEY, {rotation.id: rotation.expires_at.timestamp()})
        except (RedisError, OSError) as error:
            raise _unavailable("save a rotation", error) from None
        return bool(created)

    async def get(self, rotation_id: str) -> Rotation | None:
        try:
            raw = await self._client.get(keys.rotation_key(rotation_id))
        except ValueError:
            return None  # not an id of ours
        except (RedisError, OSError) as error:
            raise _unavailable("read a rotation", error) from None
        return Rotation.from_json(raw) if raw else None

    async def change(self, rotation_id: str, change: Change) -> tuple[Rotation | None, bool]:
        """Apply `change` to the record atomically: (the record now, True when this call changed it).
        (None, False) when there is no such record."""
        key = keys.rotation_key(rotation_id)
        try:
            for _ in range(MAX_CAS_ROUNDS):
                async with self._client.pipeline(transaction=True) as pipe:
                    try:
                        await pipe.watch(key)
                        raw = await pipe.get(key)
                        if not raw:
                            return None, False
                        current = Rotation.from_json(raw)
                        updated = change(current)
                        if updated is None:
                            return current, False
                        pipe.multi()  # type: ignore[no-untyped-call]
                        pipe.set(key, updated.to_json(), keepttl=True)
                        await pipe.execute()
                        return updated, True
                    except WatchError:
                        continue  # someone else wrote it first: decide again on what they wrote
        except (RedisError, OSError) as error:
            raise _unavailable("change a rotation", error) from None
        raise StateUnavailable("a rotation record kept changing under us; try again", "WatchError")

    async def hold(self, rotation_id: str, owner: str) -> bool:
        """Take or renew the lease on advancing this rotation: True while `owner` holds it."""
        key, ttl = keys.rotation_lease_key(rotation_id), keys.ROTATION_LEASE
        try:
            if await self._client.set(key, owner, nx=True, px=ttl):
                return True
            async with self._client.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    held = await pipe.get(key)
                    if (held.decode() if isinstance(held, bytes) else held) != owner:
                        return False
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.pexpire(key, ttl)
                    await pipe.execute()
                    return True
                except WatchError:
                    return False
        except (RedisError, OSError) as error:
            raise _unavailable("hold a rotation's lease", error) from None

    async def release(self, rotation_id: str, owner: str) -> None:
        key = keys.rotation_lease_key(rotation_id)
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    held = await pipe.get(key)
                    if (held.decode() if isinstance(held, bytes) else held) == owner:
                        pipe.multi()  # type: ignore[no-untyped-call]
                        pipe.delete(key)
                        await pipe.execute()
                except WatchError:
                    pass  # it changed hands: not ours to delete
        except (RedisError, OSError) as error:
            log.warning("state: could not release a rotation's lease: %s", redact(error))

    async def due(self, now: datetime, limit: int = keys.ROTATION_EXPIRY_BATCH) -> list[str]:
        """Ids of requests whose approval window closed by `now`, earliest first (decided ones too:
        the caller checks each record and then calls `settled`)."""
        try:
            found = await self._client.zrangebyscore(
                keys.ROTATION_DEADLINES_KEY, "-inf", now.timestamp(), start=0, num=limit
            )
        except (RedisError, OSError) as error:
            raise _unavailable("read the rotation deadlines", error) from None
        return [i.decode() if isinstance(i, bytes) else str(i) for i in found]

    async def settled(self, rotation_id: str) -> None:
        """The request's deadline needs no more watching."""
        try:
            await self._client.zrem(keys.ROTATION_DEADLINES_KEY, rotation_id)
        except (RedisError, OSError) as error:
            raise _unavailable("drop a rotation deadline", error) from None

    async def recent(self, limit: int = 100) -> list[Rotation]:
        """The latest requests, newest first."""
        try:
            found = await self._client.zrevrange(keys.ROTATIONS_INDEX_KEY, 0, limit - 1)
            ids = [i.decode() if isinstance(i, bytes) else str(i) for i in found]
            raws = await self._client.mget([keys.rotation_key(i) for i in ids]) if ids else []
            gone = [i for i, raw in zip(ids, raws, strict=True) if not raw]
            if gone:
                await self._client.zrem(keys.ROTATIONS_INDEX_KEY, *gone)
        except (RedisError, OSError) as error:
            raise _unavailable("list rotations", error) from None
        return [Rotation.from_json(raw) for raw in raws if raw]


def _unavailable(what: str, error: BaseException) -> StateUnavailable:
    log.warning("state: could not %s: %s", what, redact(error))
    return StateUnavailable(f"could not {what}: {redact(error)}", error_types(error))
