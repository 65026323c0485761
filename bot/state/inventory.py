"""The credential inventory in Redis: one hash per tenant and collection, plus its delta link.

Values are opaque bytes here (compact JSON written by `bot.graph.inventory`), so this module knows
the layout and the atomicity, not Graph. A full sync is staged and renamed into place in one
transaction with its delta link; a delta round is applied in one transaction with its new link. So a
reader never sees half a sync, and a link is never stored without the inventory it belongs to.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

import redis.asyncio as redis

from bot.domain import StateUnavailable
from bot.state import keys
from bot.state.redact import error_types, redact
from bot.state.redis_store import UNAVAILABLE_ERRORS

# A field every synced inventory holds, so an empty collection is still "synced" (a hash with no
# fields does not exist in Redis). Object ids are GUIDs: they never collide with it.
SYNCED_FIELD = "~synced"
SCAN_CHUNK = 1000  # fields per HSCAN call: a few hundred kB, well within a socket timeout

# Moves objects in the due index only where a scan's reading still holds: an object a delta round
# marked (or another scan moved) since this scan read its score is left for the next scan.
# ARGV: triples of member, the score read ("" = absent), the new score ("" = remove).
_ADVANCE = """
local moved = 0
for i = 1, #ARGV, 3 do
  local now = redis.call('ZSCORE', KEYS[1], ARGV[i])
  local read = ARGV[i + 1]
  local same = (now == false and read == '') or (now and read ~= '' and tonumber(now) == tonumber(read))
  if same then
    if ARGV[i + 2] == '' then
      if now then redis.call('ZREM', KEYS[1], ARGV[i]) end
    else
      redis.call('ZADD', KEYS[1], ARGV[i + 2], ARGV[i])
    end
    moved = moved + 1
  end
end
return moved
"""
Score = float | None  # a member's score in the due index; None: not in it


class InventoryStore:
    """The inventory of one tenant. The client is owned by whoever created it."""

    def __init__(self, client: redis.Redis, tenant: str) -> None:
        self._client = client
        self._tenant = tenant
        self._advance = client.register_script(_ADVANCE)

    async def delta_link(self, collection: str) -> str | None:
        """The link to start the next delta round from; None when a full sync is needed."""
        with _unavailable("delta_link"):
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.get(keys.delta_link_key(self._tenant, collection))
                pipe.hexists(keys.inventory_key(self._tenant, collection), SYNCED_FIELD)
                link, synced = await pipe.execute()
        return _text(link) if link is not None and synced else None

    async def start_full(self, collection: str) -> None:
        with _unavailable("start_full"):
            await self._client.delete(keys.inventory_staging_key(self._tenant, collection))
            if collection == "applications":
                await self._client.delete(keys.app_ids_staging_key(self._tenant))

    async def stage(
        self, collection: str, entries: Mapping[str, bytes], app_ids: Mapping[str, str] | None = None
    ) -> None:
        """Add one page of a full sync to the staging hash (and the applications' app ids to theirs)."""
        if not entries:
            return
        staging = keys.inventory_staging_key(self._tenant, collection)
        with _unavailable("stage"):
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.hset(staging, mapping=cast(Any, entries))
                pipe.expire(staging, keys.INVENTORY_STAGING_TTL)
                if app_ids:
                    pipe.hset(keys.app_ids_staging_key(self._tenant), mapping=cast(Any, app_ids))
                    pipe.expire(keys.app_ids_staging_key(self._tenant), keys.INVENTORY_STAGING_TTL)
                await pipe.execute()

    async def finish_full(self, collection: str, delta_link: str, synced_at: str) -> None:
        """Put the staged inventory in place of the old one, with its delta link, in one transaction."""
        staging = keys.inventory_staging_key(self._tenant, collection)
        live = keys.inventory_key(self._tenant, collection)
        with _unavailable("finish_full"):
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.hset(staging, SYNCED_FIELD, synced_at)
                pipe.rename(staging, live)
                pipe.expire(live, keys.INVENTORY_TTL)
                if collection == "applications":  # even an empty tenant: the field makes the hash exist
                    pipe.hset(keys.app_ids_staging_key(self._tenant), SYNCED_FIELD, synced_at)
                    pipe.rename(keys.app_ids_staging_key(self._tenant), keys.app_ids_key(self._tenant))
                    pipe.expire(keys.app_ids_key(self._tenant), keys.INVENTORY_TTL)
                pipe.set(keys.delta_link_key(self._tenant, collection), delta_link, ex=keys.DELTA_LINK_TTL)
                # A new inventory: the due index built from the old one no longer says what is due.
                pipe.delete(keys.due_key(self._tenant), keys.due_plan_key(self._tenant))
                await pipe.execute()

    async def current(self, collection: str, object_ids: Sequence[str]) -> list[bytes | None]:
        """The stored entries of `object_ids` (None where there is none), to merge a delta page into."""
        if not object_ids:
            return []
        with _unavailable("current"):
            values = await self._client.hmget(keys.inventory_key(self._tenant, collection), list(object_ids))
        return [_bytes(value) for value in values]

    async def apply(
        self,
        collection: str,
        upserts: Mapping[str, bytes],
        removals: Sequence[str],
        delta_link: str,
        synced_at: str,
        app_ids: Mapping[str, str] | None = None,
    ) -> None:
        """A delta round's changes and its new link, in one transaction."""
        live = keys.inventory_key(self._tenant, collection)
        with _unavailable("apply"):
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.hset(live, mapping=cast(Any, {**upserts, SYNCED_FIELD: synced_at}))
                if app_ids:
                    pipe.hset(keys.app_ids_key(self._tenant), mapping=cast(Any, app_ids))
                    pipe.expire(keys.app_ids_key(self._tenant), keys.INVENTORY_TTL)
                if removals:
                    pipe.hdel(live, *removals)
                changed = [*upserts, *removals]
                if changed:  # due at once, each mark told apart from the next (see keys.due_key)
                    mark = -time.time()
                    pipe.zadd(keys.due_key(self._tenant), {due_member(collection, i): mark for i in changed})
                pipe.expire(live, keys.INVENTORY_TTL)
                pipe.set(keys.delta_link_key(self._tenant, collection), delta_link, ex=keys.DELTA_LINK_TTL)
                await pipe.execute()

    async def entries(self, collection: str) -> AsyncIterator[tuple[str, bytes]]:
        """Every (object id, entry) of the collection, a chunk at a time (HSCAN: never the whole hash at once)."""
        live = keys.inventory_key(self._tenant, collection)
        cursor = 0
        while True:
            with _unavailable("entries"):
                cursor, chunk = await self._client.hscan(live, cursor, count=SCAN_CHUNK)
            for field, value in cast(dict[bytes | str, bytes | str], chunk).items():
                name = _text(field)
                if name != SYNCED_FIELD:
                    yield name, _bytes(value) or b""
            if cursor == 0:
                return

    async def count(self, collection: str) -> int:
        with _unavailable("count"):
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.hlen(keys.inventory_key(self._tenant, collection))
                pipe.hexists(keys.inventory_key(self._tenant, collection), SYNCED_FIELD)
                size, synced = await pipe.execute()
        return int(size) - (1 if synced else 0)

    async def app_object_ids(self, app_ids: Sequence[str]) -> list[str | None] | None:
        """The application object id kept for each app id (None where none is); None when this
        inventory keeps none at all (written before it did: the caller reads the applications)."""
        with _unavailable("app_object_ids"):
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.exists(keys.app_ids_key(self._tenant))
                pipe.hmget(keys.app_ids_key(self._tenant), list(app_ids) or [SYNCED_FIELD])
                kept, found = await pipe.execute()
        if not kept:
            return None
        return [None if value is None else _text(value) for value in found][: len(app_ids)]

    async def owners(self, app_object_ids: Sequence[str]) -> list[bytes | None]:
        values: list[bytes | None] = []
        for start in range(0, len(app_object_ids), SCAN_CHUNK):  # bounded answers, like HSCAN's
            with _unavailable("owners"):
                chunk = await self._client.hmget(
                    keys.owners_key(self._tenant), list(app_object_ids[start : start + SCAN_CHUNK])
                )
            values.extend(_bytes(value) for value in chunk)
        return values

    async def save_owners(self, entries: Mapping[str, bytes]) -> None:
        if not entries:
            return
        name = keys.owners_key(self._tenant)
        with _unavailable("save_owners"):
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.hset(name, mapping=cast(Any, entries))
                pipe.expire(name, keys.INVENTORY_TTL)
                await pipe.execute()

    async def forget_owners(self, app_object_ids: Sequence[str]) -> None:
        """Drop cached owners of apps that changed, so they are read again."""
        if app_object_ids:
            with _unavailable("forget_owners"):
                await self._client.hdel(keys.owners_key(self._tenant), *app_object_ids)

    # --- the due index (keys.due_key) -------------------------------------------------------------

    async def due_plan(self) -> str | None:
        """The plan the due index was computed for; None when there is no index to trust."""
        with _unavailable("due_plan"):
            value = await self._client.get(keys.due_plan_key(self._tenant))
        return None if value is None else _text(value)

    async def due(self, until: float) -> list[tuple[str, float]]:
        """Members of the due index whose moment is at or before `until` (Unix seconds), with scores."""
        with _unavailable("due"):
            found = await self._client.zrangebyscore(keys.due_key(self._tenant), "-inf", until, withscores=True)
        return [(_text(member), float(score)) for member, score in cast(list[tuple[bytes, float]], found)]

    async def due_index(self) -> dict[str, float]:
        """The whole index (a full pass compares it with what it computes)."""
        found: dict[str, float] = {}
        cursor = 0
        while True:
            with _unavailable("due_index"):
                cursor, chunk = await self._client.zscan(keys.due_key(self._tenant), cursor, count=SCAN_CHUNK)
            found.update((_text(member), float(score)) for member, score in cast(list[tuple[bytes, float]], chunk))
            if cursor == 0:
                return found

    async def advance(self, moves: Sequence[tuple[str, Score, Score]], plan: str | None = None) -> None:
        """Each (member, score read, new score) applied where the score is still the one read; with
        `plan`, the index is then marked as computed for it (after a full pass)."""
        name = keys.due_key(self._tenant)
        for start in range(0, len(moves), SCAN_CHUNK):
            args: list[str] = []
            for member, read, new in moves[start : start + SCAN_CHUNK]:
                args += [member, "" if read is None else repr(read), "" if new is None else repr(new)]
            with _unavailable("advance"):
                await self._advance(keys=[name], args=args)
        if plan is not None:
            with _unavailable("advance"):
                await self._client.set(keys.due_plan_key(self._tenant), plan, ex=keys.INVENTORY_TTL)


def due_member(collection: str, object_id: str) -> str:
    return f"{collection}:{object_id}"


def split_member(member: str) -> tuple[str, str]:
    collection, _, object_id = member.partition(":")
    return collection, object_id


@contextmanager
def _unavailable(operation: str) -> Iterator[None]:
    try:
        yield
    except UNAVAILABLE_ERRORS as exc:
        raise StateUnavailable(f"state store unavailable ({operation}): {redact(exc)}", error_types(exc)) from exc


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _bytes(value: bytes | str | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value
