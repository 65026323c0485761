"""The warning ledger, Acknowledge, Snooze, digests, subscriptions and the Slack user cache, against
the Redis store on fakeredis (the embedded default) and on a real redis-server, as replicas share it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import fakeredis
import pytest

from bot.domain import StateUnavailable
from bot.expiry import (
    AppMatcher,
    Destination,
    Digest,
    MatchBy,
    MessageRef,
    Outcome,
    Platform,
    RotationPointer,
    Snooze,
    Stamp,
    Subscription,
)
from bot.state import RedisStateStore, keys, redis_client
from handlers.expiry import warning_row
from tests.redis_server import free_port
from tests.warning_fixtures import (
    BACKENDS,
    NO_CHAT,
    NOW,
    Backend,
    credential,
    judge,
    open_backend,
    real_redis,  # noqa: F401  (a fixture: the real redis-server)
)

SLACK = Destination(Platform.SLACK, "C0PAYMENTS")
TEAMS = Destination(Platform.TEAMS, "19:abc@thread.tacv2")
KEY = "0b000000-0000-4000-8000-000000000001.c0000001-0000-4000-8000-000000000001"
OTHER = "0b000000-0000-4000-8000-000000000002.c0000002-0000-4000-8000-000000000001"
ALICE_AT = Stamp("Alice", NOW)


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    async with open_backend(request) as opened:
        yield opened


# --- once per threshold per destination ---------------------------------------------------------------


async def test_each_threshold_is_warned_once_per_destination(backend: Backend) -> None:
    ledger = backend.store().warnings
    assert await ledger.should_warn(SLACK, KEY, 30, NOW) is True
    assert await ledger.should_warn(SLACK, KEY, 30, NOW + timedelta(days=3)) is False
    assert await ledger.should_warn(SLACK, KEY, 14, NOW) is True  # the next threshold
    assert await ledger.should_warn(TEAMS, KEY, 30, NOW) is True  # another destination
    assert await ledger.should_warn(SLACK, OTHER, 30, NOW) is True  # another credential


async def test_a_batch_claim_answers_each_credential(backend: Backend) -> None:
    ledger = backend.store().warnings
    await ledger.acknowledge(SLACK, [(OTHER, 7)], ALICE_AT)
    assert await ledger.claim_warnings(SLACK, [(KEY, 7), (OTHER, 7), (OTHER, 1)], NOW) == [True, False, True]
    assert await ledger.claim_warnings(SLACK, [(KEY, 7), (OTHER, 1)], NOW) == [False, False]
    assert await ledger.claim_warnings(SLACK, [], NOW) == []


async def test_two_replicas_claim_a_warning_once(backend: Backend) -> None:
    replicas = [backend.store().warnings, backend.store().warnings]
    results = await asyncio.gather(*(replicas[i % 2].should_warn(SLACK, KEY, 7, NOW) for i in range(20)))
    assert results.count(True) == 1


async def test_a_released_claim_is_warned_again(backend: Backend) -> None:
    ledger = backend.store().warnings
    assert await ledger.should_warn(SLACK, KEY, 7, NOW) is True
    await ledger.release(SLACK, KEY, 7)  # the post failed
    assert await ledger.should_warn(SLACK, KEY, 7, NOW) is True
    assert await ledger.should_warn(SLACK, KEY, 7, NOW) is False


async def test_warning_claims_expire_within_their_ttl(backend: Backend) -> None:
    await backend.store().warnings.should_warn(TEAMS, KEY, 0, NOW)
    ttl = await backend.client().ttl(keys.warned_key("teams", 0, KEY, TEAMS.channel))
    assert 0 < ttl <= keys.WARNED_TTL.total_seconds()


# --- Acknowledge and Snooze --------------------------------------------------------------------------


async def test_acknowledged_is_not_warned_again_at_that_threshold_even_if_the_claim_is_lost(backend: Backend) -> None:
    ledger = backend.store().warnings
    await ledger.acknowledge(SLACK, [(KEY, 14)], ALICE_AT)
    await backend.client().delete(keys.warned_key("slack", 14, KEY, SLACK.channel))

    assert await ledger.should_warn(SLACK, KEY, 14, NOW) is False
    assert await ledger.acknowledged(SLACK, KEY, 14) == ALICE_AT
    assert await ledger.acknowledged(SLACK, KEY, 7) is None
    assert await ledger.should_warn(SLACK, KEY, 7, NOW) is True  # the next threshold still warns
    assert await ledger.should_warn(TEAMS, KEY, 14, NOW) is True  # only where it was acknowledged


async def test_a_snooze_holds_every_warning_then_reminds_once(backend: Backend) -> None:
    ledger = backend.store().warnings
    assert await ledger.should_warn(SLACK, KEY, 14, NOW) is True
    await ledger.snooze(SLACK, [KEY], NOW + timedelta(days=7), ALICE_AT)

    assert await ledger.should_warn(SLACK, KEY, 7, NOW + timedelta(days=6)) is False  # even a new threshold
    later = NOW + timedelta(days=7, hours=1)
    replicas = [backend.store().warnings, backend.store().warnings]
    results = await asyncio.gather(*(replicas[i % 2].should_warn(SLACK, KEY, 7, later) for i in range(40)))
    assert results.count(True) == 1  # one reminder, whoever scans
    assert await ledger.should_warn(SLACK, KEY, 7, later + timedelta(days=1)) is False
    assert await ledger.should_warn(SLACK, KEY, 1, later + timedelta(days=5)) is True


async def test_a_snooze_at_the_same_threshold_reminds_once_when_over(backend: Backend) -> None:
    ledger = backend.store().warnings
    assert await ledger.should_warn(SLACK, KEY, 30, NOW) is True
    await ledger.snooze(SLACK, [KEY], NOW + timedelta(days=1), ALICE_AT)
    assert await ledger.should_warn(SLACK, KEY, 30, NOW + timedelta(hours=23)) is False
    assert await ledger.should_warn(SLACK, KEY, 30, NOW + timedelta(days=1)) is True  # the reminder
    assert await ledger.should_warn(SLACK, KEY, 30, NOW + timedelta(days=2)) is False


async def test_acknowledge_cancels_a_snooze_reminder(backend: Backend) -> None:
    ledger = backend.store().warnings
    assert await ledger.should_warn(SLACK, KEY, 30, NOW) is True
    await ledger.snooze(SLACK, [KEY], NOW + timedelta(days=1), ALICE_AT)
    await ledger.acknowledge(SLACK, [(KEY, 30)], Stamp("Bob", NOW + timedelta(hours=2)))
    assert await ledger.should_warn(SLACK, KEY, 30, NOW + timedelta(days=2)) is False


async def test_a_snooze_outlives_its_end_by_the_grace(backend: Backend) -> None:
    await backend.store().warnings.snooze(TEAMS, [KEY], NOW + timedelta(days=7), ALICE_AT)
    ttl = await backend.client().ttl(keys.snooze_key("teams", KEY, TEAMS.channel))
    assert timedelta(days=7) < timedelta(seconds=ttl) <= timedelta(days=7) + keys.SNOOZE_GRACE


# --- digests and where they were posted -----------------------------------------------------------------


def _digest() -> Digest:
    old = credential("payments-api", NOW + timedelta(days=5), owners=(NO_CHAT,), tags=("team:payments",))
    new = credential("payments-api", NOW + timedelta(days=300), number=2, start=NOW)
    rows = judge([old, new], NOW, last_used={old.key_id: NOW - timedelta(days=2)})
    row = warning_row(rows[0], 7, rows, NOW)
    return Digest(
        "dg_AbCdEfGhIjKlMnOp",
        SLACK,
        NOW,
        (row,),
        slack_users=(("alice@contoso.example", "U0ALICE"),),
        acknowledged=ALICE_AT,
        snoozed=Snooze(NOW + timedelta(days=1), Stamp("Bob", NOW)),
    )


async def test_a_digest_round_trips_and_is_indexed_by_its_credentials(backend: Backend) -> None:
    ledger = backend.store().warnings
    digest = _digest()
    await ledger.save_digest(digest)
    assert await ledger.digest(digest.id) == digest
    assert await ledger.digests_showing(digest.rows[0].key) == [digest.id]
    assert await ledger.digest("never-saved") is None

    ttl = await backend.client().ttl(keys.digest_key(digest.id))
    assert 0 < ttl <= keys.DIGEST_TTL.total_seconds()
    raw = json.loads(await backend.client().get(keys.digest_key(digest.id)))
    assert raw["rows"][0]["problem"] == "rotated" and raw["rows"][0]["unused_days"] == 2


async def test_what_a_digest_may_offer_for_rotation_round_trips(backend: Backend) -> None:
    ledger = backend.store().warnings
    for checked in (
        replace(_digest(), rotatable=("a1b2",), rotation_note=None),
        replace(_digest(), rotatable=(), rotation_note="the bot is not an owner of app x"),
    ):
        await ledger.save_digest(checked)
        assert await ledger.digest(checked.id) == checked


async def test_a_digest_with_an_outcome_round_trips(backend: Backend) -> None:
    ledger = backend.store().warnings
    digest = _digest()
    marked = Digest(
        digest.id, TEAMS, NOW, tuple(r.__class__(**{**r.__dict__, "outcome": Outcome.REPLACED}) for r in digest.rows)
    )
    await ledger.save_digest(marked)
    assert await ledger.digest(digest.id) == marked


async def test_rotations_requested_from_a_warning_are_kept_once_each_whatever_saves_the_digest(
    backend: Backend,
) -> None:
    ledger = backend.store().warnings
    digest = _digest()
    await ledger.save_digest(digest)
    first = RotationPointer("00000000000000a1", "payments-api", "Jonas Berg", NOW)
    second = RotationPointer("00000000000000b2", "payments-api", "Priya Raman", NOW + timedelta(minutes=1))
    await ledger.point_at_rotation(digest.id, second)
    await ledger.point_at_rotation(digest.id, first)
    await ledger.point_at_rotation(digest.id, replace(first, by="someone else"))  # a run again: the first stays
    assert (await ledger.digest(digest.id)) == replace(digest, rotations=(first, second))  # oldest first

    rescanned = replace(digest, rows=tuple(replace(r, outcome=Outcome.RENEWED) for r in digest.rows))
    await ledger.save_digest(rescanned)  # a later scan, or a button, saves the digest again
    assert (await ledger.digest(digest.id)) == replace(rescanned, rotations=(first, second))
    ttl = await backend.client().ttl(keys.digest_rotations_key(digest.id))
    assert 0 < ttl <= keys.DIGEST_TTL.total_seconds()
    assert "Jonas Berg" not in str(await backend.client().get(keys.digest_key(digest.id)))  # kept apart


async def test_the_message_of_a_digest_is_kept(backend: Backend) -> None:
    ledger = backend.store().warnings
    ref = MessageRef(Platform.TEAMS, TEAMS.channel, "1712345678901")
    await ledger.record_message("dg1", ref)
    assert await ledger.message("dg1") == ref
    assert await ledger.message("dg2") is None


async def test_unreadable_records_are_skipped(backend: Backend) -> None:
    client = backend.client()
    await client.set(keys.digest_key("pickle"), b"\x80\x04pickle")
    await client.set(keys.digest_key("future"), json.dumps({"v": 99}))
    await client.set(keys.digest_message_key("bad"), "[]")
    ledger = backend.store().warnings
    assert await ledger.digest("pickle") is None and await ledger.digest("future") is None
    assert await ledger.message("bad") is None


# --- subscriptions and the Slack cache ---------------------------------------------------------------


async def test_subscriptions_per_channel_and_for_a_scan(backend: Backend) -> None:
    ledger = backend.store().warnings
    payments = Subscription(SLACK, AppMatcher(MatchBy.NAME, "payments-*"), (30, 7), ALICE_AT)
    everything = Subscription(TEAMS, AppMatcher(MatchBy.ALL), (1,), ALICE_AT)
    tagged = Subscription(SLACK, AppMatcher(MatchBy.TAG, "critical"), (14,), None)
    assert await ledger.subscribe(payments) is True
    assert await ledger.subscribe(everything) is True
    assert await ledger.subscribe(tagged) is True
    assert await ledger.subscribe(Subscription(SLACK, payments.matcher, (60,), ALICE_AT)) is False  # replaced

    assert await ledger.subscriptions(TEAMS) == [everything]
    changed = Subscription(SLACK, payments.matcher, (60,), ALICE_AT)
    assert await ledger.subscriptions() == [changed, tagged, everything]  # slack before teams

    assert await ledger.unsubscribe(SLACK, payments.matcher) is True
    assert await ledger.unsubscribe(SLACK, payments.matcher) is False
    assert await ledger.unsubscribe(TEAMS, AppMatcher(MatchBy.ALL)) is True
    assert await ledger.subscriptions() == [tagged]
    assert await backend.client().ttl(keys.watch_key("slack", SLACK.channel)) == -1  # kept until unwatch


async def test_slack_users_are_cached_for_a_day(backend: Backend) -> None:
    ledger = backend.store().warnings
    assert await ledger.slack_user("Alice@Contoso.example") is None
    await ledger.save_slack_user("alice@contoso.example", "U0ALICE")
    await ledger.save_slack_user("carol@partner.example", "")
    assert await ledger.slack_user("ALICE@contoso.example") == "U0ALICE"
    assert await ledger.slack_user("carol@partner.example") == ""
    ttl = await backend.client().ttl(keys.slack_user_key("alice@contoso.example"))
    assert 0 < ttl <= keys.SLACK_USER_TTL.total_seconds()


# --- Redis down -------------------------------------------------------------------------------------


@pytest.fixture(params=["fakeredis", "closed-port"])
def down(request: pytest.FixtureRequest) -> RedisStateStore:
    if request.param == "fakeredis":
        server = fakeredis.FakeServer()
        server.connected = False
        return RedisStateStore(fakeredis.FakeAsyncRedis(server=server))
    return RedisStateStore(redis_client(f"redis://127.0.0.1:{free_port()}/0"))


async def test_redis_down_raises_state_unavailable(down: RedisStateStore) -> None:
    ledger = down.warnings
    calls = [
        ledger.should_warn(SLACK, KEY, 7, NOW),
        ledger.release(SLACK, KEY, 7),
        ledger.acknowledge(SLACK, [(KEY, 7)], ALICE_AT),
        ledger.acknowledged(SLACK, KEY, 7),
        ledger.snooze(SLACK, [KEY], NOW, ALICE_AT),
        ledger.save_digest(_digest()),
        ledger.digest("x"),
        ledger.point_at_rotation("x", RotationPointer("00000000000000a1", "app", "Jonas", NOW)),
        ledger.record_message("x", MessageRef(Platform.SLACK, "C1", "1.2")),
        ledger.message("x"),
        ledger.digests_showing(KEY),
        ledger.subscribe(Subscription(SLACK, AppMatcher(MatchBy.ALL), (1,))),
        ledger.unsubscribe(SLACK, AppMatcher(MatchBy.ALL)),
        ledger.subscriptions(),
        ledger.slack_user("a@b.c"),
        ledger.save_slack_user("a@b.c", "U1"),
    ]
    for call in calls:
        with pytest.raises(StateUnavailable):
            await asyncio.wait_for(call, 5)


def test_warning_keys_cannot_collide() -> None:
    assert keys.warned_key("slack", 7, KEY, "C1") == f"secretbot:warned:slack:7:{KEY}:C1"
    assert keys.snooze_key("teams", KEY, "19:a;b").endswith(":19:a;b")
    with pytest.raises(ValueError):
        keys.warned_key("slack", 7, "a:b", "C1")  # a `:` in a credential key could alias another
