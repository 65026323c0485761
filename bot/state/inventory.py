"""The credential inventory in Redis: one hash per tenant and collection, plus its delta link.

Values are opaque bytes here (compact JSON written by `bot.graph.inventory`), so this module knows
the layout and the atomicity, not Graph. A full sync is staged and renamed into place in one
transaction with its delta link; a delta round is applied in one transaction with its new link. So a
reader never sees half a sync, and a link is never stored without the inventory it belongs to.
"""

from __future__ import annotations

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


class InventoryStore:
    """The inventory of one tenant. The client is owned by whoever created it."""

    def __init__(self, client: redis.Redis, tenant: str) -> None:
        self._client = client
        self._tenant = tenant

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

    async def stage(self, collection: str, entries: Mapping[str, bytes]) -> None:
        """Add one page of a full sync to the staging hash."""
        if not entries:
            return
        staging = keys.inventory_staging_key(self._tenant, collection)
        with _unavailable("stage"):
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.hset(staging, mapping=cast(Any, entries))
                pipe.expire(staging, keys.INVENTORY_STAGING_TTL)
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
                pipe.set(keys.delta_link_key(self._tenant, collection), delta_link, ex=keys.DELTA_LINK_TTL)
                await pipe.execute()

    async def current(self, collection: str, object_ids: Sequence[str]) -> list[bytes | None]:
        """The stored entries of `object_ids` (None where there is none), to merge a delta page into."""
        if not object_ids:
            return []
        with _unavailable("current"):
            values = await self._client.hmget(keys.inventory_key(self._tenant, collection), list(object_ids))
        return [_bytes(value) for value in values]

    async def apply(
        self, collection: str, upserts: Mapping[str, bytes], removals: Sequence[str], delta_link: str, synced_at: str
    ) -> None:
        """A delta round's changes and its new link, in one transaction."""
        live = keys.inventory_key(self._tenant, collection)
        with _unavailable("apply"):
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.hset(live, mapping=cast(Any, {**upserts, SYNCED_FIELD: synced_at}))
                if removals:
                    pipe.hdel(live, *removals)
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
