"""Shared pieces of the expiry-warning tests: credentials, a judge like the scan's, stores on fakeredis
and on a real redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import fakeredis
import pytest

from bot.domain import CredentialKind, ExpiryState, InventoryCredential, ObjectType, Owner, ScannedCredential
from bot.expiry import DEFAULT_THRESHOLDS, threshold_for
from bot.state import redis_client
from tests.redis_server import Backend, redis_server

NOW = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)
ALICE = Owner("Alice Example", "alice@contoso.example", "alice@contoso.example", "0a11ce00-0000-4000-8000-000000000001")
BOB = Owner("Bob Example", "bob@contoso.example", None, "0b0b0000-0000-4000-8000-000000000002")
NO_CHAT = Owner("Carol Contractor", "carol_ext#EXT#@contoso.example", "carol@partner.example", None)


def credential(
    name: str,
    end: datetime | None,
    *,
    number: int = 1,
    app: int = 1,
    kind: CredentialKind = CredentialKind.SECRET,
    owners: tuple[Owner, ...] = (ALICE,),
    tags: tuple[str, ...] = (),
    start: datetime | None = None,
    object_type: ObjectType = ObjectType.APPLICATION,
) -> InventoryCredential:
    return InventoryCredential(
        object_type=object_type,
        app_id=f"a0000000-0000-4000-8000-{app:012d}",
        object_id=f"0b000000-0000-4000-8000-{app:012d}",
        display_name=name,
        kind=kind,
        key_id=f"c{app:07d}-0000-4000-8000-{number:012d}",
        name=f"{name} {kind.value} {number}",
        hint="Ab1" if kind is CredentialKind.SECRET else None,
        start=start or (end - timedelta(days=365) if end else NOW - timedelta(days=30)),
        end=end,
        usage="Verify" if kind is CredentialKind.CERTIFICATE else None,
        owners=owners,
        tags=tags,
    )


def judge(
    credentials: list[InventoryCredential],
    now: datetime,
    thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS,
    last_used: dict[str, datetime] | None = None,
) -> list[ScannedCredential]:
    """What the scan says about each credential at `now` (days_left as diagnose counts it, replaced_by)."""
    rows = []
    for c in credentials:
        days = (c.end - now).days if c.end else None
        if days is None:
            state = ExpiryState.NO_END
        elif days < 0:
            state = ExpiryState.EXPIRED
        else:
            state = ExpiryState.EXPIRING if days <= max(thresholds) else ExpiryState.VALID
        newer = [
            o
            for o in credentials
            if o.object_id == c.object_id
            and o.kind is c.kind
            and o.key_id != c.key_id
            and c.end
            and o.end
            and o.end > c.end
            and o.start
            and c.start
            and o.start > c.start
        ]
        used = (last_used or {}).get(c.key_id)
        rows.append(
            ScannedCredential(c, days, state, threshold_for(days, thresholds), newer[0].key_id if newer else None, used)
        )
    return rows


@pytest.fixture(scope="module")
def real_redis() -> Iterator[str]:
    with redis_server() as server:
        yield server.url


BACKENDS = ["fakeredis", "redis-server"]


@asynccontextmanager
async def open_backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """For a `backend` fixture parametrized with BACKENDS (the module must import `real_redis`)."""
    if request.param == "fakeredis":
        server = fakeredis.FakeServer()
        backend = Backend("fakeredis", lambda: fakeredis.FakeAsyncRedis(server=server))
    else:
        url = request.getfixturevalue("real_redis")
        backend = Backend("redis-server", lambda: redis_client(url))
        await backend.client().flushdb()
    try:
        yield backend
    finally:
        await backend.close()
