"""A request nobody approves expires on its own: a scheduled sweep (`rotation.expire`, every minute)
reads the due ids from a sorted set by deadline, expires those still waiting, and updates their cards
("expired, nobody approved within 24 h; request again"). Decided requests are left as they are. The
clock is injected; the store is fakeredis and a real redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as redis
from aiohttp.test_utils import TestClient, TestServer

from bot.app import JOBS, ROTATION_EXPIRY, SERVICES, create_app
from bot.domain import Notice, NoticeReason
from bot.jobs.worker import RunningJob
from bot.rotation_types import Rotation, RotationState
from bot.settings import Settings
from bot.state import RedisStateStore, keys
from cards.rotation_view import rotation_view
from cards.text import render_text
from handlers.inbound import Deps
from handlers.rotation_actions import rotation_answer
from tests.redis_server import redis_server
from tests.rotation_setup import APPROVER_TEAMS, PAYMENTS_APP, REQUESTER, Rig, rig

EXPIRED_WORDS = "expired, nobody approved within 24 h; request again"


@asynccontextmanager
async def rig_on(backend: str) -> AsyncIterator[Rig]:
    if backend == "fakeredis":
        async with rig() as r:
            yield r
        return
    with redis_server() as server:
        async with rig(redis_url=server.url) as r:
            yield r


async def shown(r: Rig, rotation: Rotation) -> str:
    return render_text(await rotation_answer(rotation, Deps(None, RedisStateStore(r.client), r.rotations.now)))


@pytest.mark.parametrize("backend", ["fakeredis", "redis-server"])
async def test_the_sweep_expires_only_overdue_requests_and_updates_their_cards(backend: str) -> None:
    async with rig_on(backend) as r:
        changed: list[Rotation] = []

        async def card(rotation: Rotation) -> None:
            changed.append(rotation)

        r.rotations.on_change = card
        first = await r.rotations.request(REQUESTER, PAYMENTS_APP, "first", {"platform": "slack", "channel": "C0"})
        r.later(timedelta(hours=1))
        second = await r.rotations.request(REQUESTER, PAYMENTS_APP, "second")
        decided = await r.rotations.request(REQUESTER, PAYMENTS_APP, "approved in time")
        assert isinstance(first, Rotation) and isinstance(second, Rotation) and isinstance(decided, Rotation)
        assert isinstance(await r.rotations.approve(APPROVER_TEAMS, decided.id), Rotation)

        changed.clear()  # requests and approvals update their cards too; from here only the sweep acts
        r.later(timedelta(hours=23, seconds=-1))  # a second before the first's 24 h are up
        assert await r.rotations.expire_overdue() == 0
        r.later(timedelta(seconds=1))
        assert await r.rotations.expire_overdue() == 1
        expired = await r.rotations.store.get(first.id)
        assert expired is not None and expired.state is RotationState.EXPIRED
        assert [c.id for c in changed] == [first.id] and changed[0].state is RotationState.EXPIRED
        assert EXPIRED_WORDS in (await shown(r, expired)).lower()
        assert rotation_view(expired).buttons == ()  # no Approve on an expired card
        assert (await r.rotations.store.get(second.id)).state is RotationState.REQUESTED  # type: ignore[union-attr]
        assert await r.rotations.expire_overdue() == 0  # the first is out of the index now

        r.later(timedelta(hours=1))
        assert await r.rotations.expire_overdue() == 1
        assert (await r.rotations.store.get(second.id)).state is RotationState.EXPIRED  # type: ignore[union-attr]
        # Approved before its deadline: left alone, and gone from the index.
        assert (await r.rotations.store.get(decided.id)).state is RotationState.APPROVED  # type: ignore[union-attr]
        assert await r.client.zcard(keys.ROTATION_DEADLINES_KEY) == 0

        late = await r.rotations.approve(APPROVER_TEAMS, first.id)
        assert isinstance(late, Notice) and late.reason is NoticeReason.REFUSED  # already decided: expired


async def test_the_sweep_reads_the_deadline_index_and_never_scans_keys() -> None:
    with redis_server() as server:
        async with rig(redis_url=server.url) as r:
            for n in range(3):
                await r.rotations.request(REQUESTER, PAYMENTS_APP, f"request {n}")
            client: redis.Redis = redis.Redis.from_url(server.url)
            try:
                await client.config_resetstat()
                r.later(timedelta(hours=25))
                assert await r.rotations.expire_overdue() == 3
                stats = await client.info("commandstats")
            finally:
                await client.aclose()
            used = {name.removeprefix("cmdstat_") for name in stats}
            assert "zrangebyscore" in used
            assert not used & {"scan", "keys", "zrange", "zrevrange"}, used


async def test_the_app_schedules_the_sweep_and_it_expires_a_request_through_the_wiring() -> None:
    clock = [datetime.now(UTC)]
    with redis_server() as server:
        settings = Settings(
            snapshot="sample", redis_url=server.url, approvers=("U0APPROVER",), rotation_apps=(PAYMENTS_APP,)
        )
        app = create_app(settings, clock=lambda: clock[0])
        [sweep] = [s for s in app[JOBS].schedules if s.name == ROTATION_EXPIRY]
        assert sweep.cron == "* * * * *"
        async with TestClient(TestServer(app)):
            rotations = app[SERVICES].rotations
            assert rotations is not None
            requested = await rotations.request(REQUESTER, PAYMENTS_APP, "nobody will approve")
            assert isinstance(requested, Rotation)
            clock[0] += settings.approval_ttl + timedelta(minutes=1)
            await sweep.function(RunningJob())
            expired = await rotations.store.get(requested.id)
            assert expired is not None and expired.state is RotationState.EXPIRED
            deps = Deps(None, app[SERVICES].state, lambda: clock[0])
            assert EXPIRED_WORDS in render_text(await rotation_answer(expired, deps)).lower()
