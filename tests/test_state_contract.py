"""One behavioural suite for the `StateStore` port, run against every implementation:
`RedisStateStore` on fakeredis (the embedded default) and on a real `redis-server` started here.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

import fakeredis
import pytest
import redis.asyncio as redis

from bot.domain import (
    Cause,
    Credential,
    CredentialKind,
    Finding,
    FirstAnswer,
    FoundIn,
    ParsedInput,
    Question,
    Severity,
    StateUnavailable,
)
from bot.state import RedisStateStore, keys, open_state, questions, redis_client
from bot.state.factory import MAX_CONNECTIONS
from tests.redis_server import Backend, free_port, redis_server, require_redis_server

GENEROUS = 5.0  # seconds; "Redis is down" must be reported far sooner than this
PASSWORD = "s3cret"

# Plain Activity-Protocol conversation references (camelCase), as the Teams adapter stores them.
REFERENCE_A: dict[str, Any] = {
    "activityId": "1712345678901",
    "bot": {"id": "28:bot-app-id", "name": "secretbot"},
    "channelId": "msteams",
    "conversation": {"id": "19:abc@thread.tacv2;messageid=1712345678901", "tenantId": "tenant-1"},
    "serviceUrl": "https://smba.trafficmanager.net/emea/",
    "user": {"id": "29:user-1", "aadObjectId": "00000000-0000-0000-0000-000000000001"},
}
REFERENCE_B: dict[str, Any] = {**REFERENCE_A, "conversation": {"id": "a:1Hx-personal-chat", "tenantId": "tenant-1"}}

# A question as the Check again button keeps it: every field of the parsed paste and the first answer set.
QUESTION = Question(
    ParsedInput(
        codes=(7000222, 50012),
        app_id="dc36fc90-2248-4d70-aca4-a1a9f5b19f71",
        app_id_masked=True,
        tenant="northwind-ops.onmicrosoft.com",
        trace_id="1f2e3d4c-5b6a-4798-8a9b-0c1d2e3f4a5b",
        correlation_id="3b9d2f61-5c7e-4a08-b1d3-8e2f6a4c9d70",
        timestamp=datetime(2026, 11, 20, 8, 58, 12, tzinfo=UTC),
        error="invalid_client",
        secret_value_detected=True,
        secret_value_certain=True,
        leaked_hints=("7Rm",),
        guids=("62f746b4-84e6-4ceb-95bd-447e7184d454",),
        secret_guid="62f746b4-84e6-4ceb-95bd-447e7184d454",
        bare_guid=True,
        login_host="login.microsoftonline.us",
        common_authority=True,
        client_credentials=True,
    ),
    FirstAnswer(
        answered_at=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
        finding=Finding(
            Cause.EXPIRED_SECRET_IN_USE, Severity.ERROR, "The client sends ci-2025.", ("e1", "e2"), ("f1",)
        ),
        found_in=FoundIn.TENANT,
        credentials=(
            Credential(
                CredentialKind.SECRET,
                "62f746b4-84e6-4ceb-95bd-447e7184d454",
                "ci-2025",
                "7Rm",
                datetime(2025, 10, 1, tzinfo=UTC),
                datetime(2026, 10, 1, tzinfo=UTC),
            ),
            Credential(CredentialKind.CERTIFICATE, "b61e6ba5-3682-4dd6-b804-69b84b2d451c", None, None, None, None),
        ),
    ),
)


@pytest.fixture(scope="session")
def real_redis_url() -> Iterator[str]:
    with redis_server() as server:
        yield server.url


def _fake_backend() -> Backend:
    server = fakeredis.FakeServer()
    return Backend("fakeredis", lambda: fakeredis.FakeAsyncRedis(server=server))


@pytest.fixture(params=["fakeredis", "redis-server"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "fakeredis":
        backend = _fake_backend()
    else:
        url = request.getfixturevalue("real_redis_url")
        backend = Backend("redis-server", lambda: redis_client(url))
        await backend.client().flushdb()  # the server lives for the session; each test starts empty
    yield backend
    await backend.close()


@pytest.fixture
def store(backend: Backend) -> RedisStateStore:
    return backend.store()


# --- claims ------------------------------------------------------------------------------------


async def test_first_claim_wins_and_a_repeat_loses(store: RedisStateStore) -> None:
    assert await store.claim("slack_event", "Ev01") is True
    assert await store.claim("slack_event", "Ev01") is False


async def test_claims_of_other_kinds_or_keys_are_independent(store: RedisStateStore) -> None:
    assert await store.claim("slack_event", "Ev01") is True
    assert await store.claim("teams_activity", "Ev01") is True
    assert await store.claim("slack_event", "Ev02") is True
    assert await store.claim("slack_event", "Ev01:x") is True
    assert await store.claim("teams_activity", "Ev01") is False


async def test_claim_key_expires_within_its_ttl(backend: Backend, store: RedisStateStore) -> None:
    await store.claim("slack_event", "Ev01")
    ttl = await backend.client().ttl(keys.claim_key("slack_event", "Ev01"))
    assert 0 < ttl <= keys.claim_ttl("slack_event").total_seconds()


async def test_two_replicas_on_one_redis_claim_once(backend: Backend) -> None:
    first, second = backend.store(), backend.store()
    assert await first.claim("slack_event", "Ev01") is True
    assert await second.claim("slack_event", "Ev01") is False


async def test_exactly_one_of_twenty_concurrent_claims_wins(backend: Backend) -> None:
    replicas = [backend.store(), backend.store()]
    results = await asyncio.gather(*(replicas[i % 2].claim("slack_event", "Ev01") for i in range(20)))
    assert results.count(True) == 1


# --- conversation references -------------------------------------------------------------------


async def test_conversation_round_trip_and_listing(store: RedisStateStore) -> None:
    await store.save_conversation("teams", "19:abc@thread.tacv2;messageid=1712345678901", REFERENCE_A)
    await store.save_conversation("teams", "a:1Hx-personal-chat", REFERENCE_B)

    assert await store.conversation("teams", "19:abc@thread.tacv2;messageid=1712345678901") == REFERENCE_A
    assert await store.conversation("teams", "a:1Hx-personal-chat") == REFERENCE_B
    assert await store.conversations("teams") == [REFERENCE_A, REFERENCE_B]  # sorted by conversation id
    assert await store.conversations("slack") == []


async def test_saving_a_conversation_again_overwrites_it(store: RedisStateStore) -> None:
    await store.save_conversation("teams", "c1", REFERENCE_A)
    moved = {**REFERENCE_A, "serviceUrl": "https://smba.trafficmanager.net/amer/"}
    await store.save_conversation("teams", "c1", moved)

    assert await store.conversation("teams", "c1") == moved
    assert await store.conversations("teams") == [moved]


async def test_unknown_conversation_is_none(store: RedisStateStore) -> None:
    assert await store.conversation("teams", "never-seen") is None
    assert await store.conversations("teams") == []


async def test_references_are_stored_as_plain_json(backend: Backend, store: RedisStateStore) -> None:
    await store.save_conversation("teams", "c1", REFERENCE_A)
    raw = await backend.client().get(keys.conversation_key("teams", "c1"))
    assert raw is not None
    assert json.loads(raw) == REFERENCE_A
    assert await backend.client().ttl(keys.conversation_key("teams", "c1")) == -1  # kept until uninstall


async def test_an_unreadable_reference_is_skipped(backend: Backend, store: RedisStateStore) -> None:
    await store.save_conversation("teams", "good", REFERENCE_A)
    client = backend.client()
    await client.set(keys.conversation_key("teams", "bad"), b"\x80\x04pickle")
    await client.sadd(keys.conversation_index_key("teams"), "bad")

    assert await store.conversation("teams", "bad") is None
    assert await store.conversations("teams") == [REFERENCE_A]


# --- questions (Check again) -------------------------------------------------------------------


async def test_question_round_trip(store: RedisStateStore) -> None:
    await store.save_question("AbCdEfGhIjKlMnOpQrStUv", QUESTION)
    assert await store.question("AbCdEfGhIjKlMnOpQrStUv") == QUESTION
    bare = Question(ParsedInput(), FirstAnswer(datetime(2026, 11, 20, 9, 0, tzinfo=UTC), None, None))
    await store.save_question("bare", bare)
    assert await store.question("bare") == bare


def test_the_sample_question_sets_every_fact_of_a_paste() -> None:
    # So the round trip above covers every field: a fact added to ParsedInput must be stored too.
    defaults = ParsedInput()
    unset = [f.name for f in fields(ParsedInput) if getattr(QUESTION.input, f.name) == getattr(defaults, f.name)]
    assert unset == []


async def test_unknown_question_is_none(store: RedisStateStore) -> None:
    assert await store.question("never-saved") is None


async def test_questions_are_compressed_json_and_expire_within_their_ttl(
    backend: Backend, store: RedisStateStore
) -> None:
    await store.save_question("q1", QUESTION)
    client = backend.client()
    raw = await client.get(keys.question_key("q1"))
    assert raw is not None
    plain = questions.json_text(raw)
    stored = json.loads(plain)
    assert stored["input"]["codes"] == [7000222, 50012] and stored["input"]["timestamp"] == "2026-11-20T08:58:12+00:00"
    assert stored["first"]["credentials"][0]["key_id"] == "62f746b4-84e6-4ceb-95bd-447e7184d454"
    assert 0 < await client.ttl(keys.question_key("q1")) <= keys.QUESTION_TTL.total_seconds()
    # Kept a week per answer: fields at their defaults are left out, and the rest is compressed.
    assert "null" not in plain  # the certificate's name, hint and dates are unset
    assert len(raw) < len(plain) * 0.7


async def test_a_question_kept_by_the_previous_release_is_still_read(backend: Backend, store: RedisStateStore) -> None:
    # Version 1: plain JSON with every field, as the release before kept questions for 7 days.
    await backend.client().set(keys.question_key("v1"), json.dumps(QUESTION_VERSION_1))
    assert await store.question("v1") == QUESTION


# QUESTION as release 1 of the format wrote it.
QUESTION_VERSION_1 = {
    "v": 1,
    "input": {
        "codes": [7000222, 50012],
        "app_id": "dc36fc90-2248-4d70-aca4-a1a9f5b19f71",
        "app_id_masked": True,
        "tenant": "northwind-ops.onmicrosoft.com",
        "trace_id": "1f2e3d4c-5b6a-4798-8a9b-0c1d2e3f4a5b",
        "correlation_id": "3b9d2f61-5c7e-4a08-b1d3-8e2f6a4c9d70",
        "timestamp": "2026-11-20T08:58:12+00:00",
        "error": "invalid_client",
        "secret_value_detected": True,
        "secret_value_certain": True,
        "leaked_hints": ["7Rm"],
        "guids": ["62f746b4-84e6-4ceb-95bd-447e7184d454"],
        "secret_guid": "62f746b4-84e6-4ceb-95bd-447e7184d454",
        "bare_guid": True,
        "login_host": "login.microsoftonline.us",
        "common_authority": True,
        "client_credentials": True,
    },
    "first": {
        "answered_at": "2026-11-20T09:00:00+00:00",
        "finding": {
            "cause": "expired_secret_in_use",
            "severity": "error",
            "summary": "The client sends ci-2025.",
            "evidence": ["e1", "e2"],
            "fix": ["f1"],
        },
        "found_in": "tenant",
        "credentials": [
            {
                "kind": "secret",
                "key_id": "62f746b4-84e6-4ceb-95bd-447e7184d454",
                "display_name": "ci-2025",
                "hint": "7Rm",
                "start": "2025-10-01T00:00:00+00:00",
                "end": "2026-10-01T00:00:00+00:00",
            },
            {
                "kind": "certificate",
                "key_id": "b61e6ba5-3682-4dd6-b804-69b84b2d451c",
                "display_name": None,
                "hint": None,
                "start": None,
                "end": None,
            },
        ],
    },
}


async def test_an_unreadable_question_is_none_and_logged(
    backend: Backend, store: RedisStateStore, caplog: pytest.LogCaptureFixture
) -> None:
    client = backend.client()
    await client.set(keys.question_key("pickle"), b"\x80\x04pickle")
    await client.set(keys.question_key("future"), json.dumps({"v": 99}))
    await client.set(keys.question_key("half"), json.dumps({"v": 1, "input": {}}))
    for name in ("pickle", "future", "half"):
        assert await store.question(name) is None
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 3


async def test_ping_answers_true(store: RedisStateStore) -> None:
    assert await store.ping() is True


# --- Redis down ------------------------------------------------------------------------------


def _disconnected_fake() -> redis.Redis:
    server = fakeredis.FakeServer()
    server.connected = False  # fakeredis's switch for "the server went away"
    return fakeredis.FakeAsyncRedis(server=server)


def _closed_port() -> redis.Redis:
    return redis_client(f"redis://127.0.0.1:{free_port()}/0")


@pytest.fixture(params=[_disconnected_fake, _closed_port], ids=["fakeredis", "closed-port"])
async def down_store(request: pytest.FixtureRequest) -> AsyncIterator[RedisStateStore]:
    client: redis.Redis = request.param()
    yield RedisStateStore(client)
    await client.aclose()


def _every_call(store: RedisStateStore) -> list[Callable[[], Awaitable[object]]]:
    return [
        lambda: store.claim("slack_event", "Ev01"),
        lambda: store.save_conversation("teams", "c1", REFERENCE_A),
        lambda: store.conversation("teams", "c1"),
        lambda: store.conversations("teams"),
        lambda: store.save_question("q1", QUESTION),
        lambda: store.question("q1"),
    ]


async def _assert_unavailable(store: RedisStateStore) -> list[StateUnavailable]:
    errors = []
    for call in _every_call(store):
        with pytest.raises(StateUnavailable) as info:
            await asyncio.wait_for(call(), GENEROUS)
        errors.append(info.value)
    assert await asyncio.wait_for(store.ping(), GENEROUS) is False
    return errors


async def test_redis_down_raises_state_unavailable_quickly(down_store: RedisStateStore) -> None:
    await _assert_unavailable(down_store)


async def test_a_stopped_redis_raises_state_unavailable() -> None:
    require_redis_server()
    with redis_server() as server:
        async with open_state(server.url) as store:
            assert await store.claim("slack_event", "Ev01") is True  # a pooled connection now exists
            server.stop()
            await _assert_unavailable(store)


async def test_errors_and_logs_never_show_the_redis_password(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"
    async with open_state(url) as store:
        errors = await _assert_unavailable(store)

    for error in errors:
        assert PASSWORD not in str(error) and PASSWORD not in repr(error)
        assert PASSWORD not in str(error.__cause__)
    assert PASSWORD not in caplog.text
    assert ":***@127.0.0.1" in caplog.text


async def test_unavailable_says_why_by_exception_types_only(down_store: RedisStateStore) -> None:
    errors = await _assert_unavailable(down_store)
    for error in errors:
        assert error.reason.startswith("ConnectionError")  # redis-py's, refused or switched off
        assert "127.0.0.1" not in error.reason and ":" not in error.reason  # type names, no message


# --- bursts: the pool waits for a connection instead of failing --------------------------------

# Well above the pool's size (and above redis-py's non-blocking default of 100, which used to fail).
BURST = 3 * MAX_CONNECTIONS + 100
# The burst tests are about the pool (it waits for a connection, and never opens more than its size),
# not about how fast a burst drains: with the production waits (0.5 s for a free connection, 1 s to
# connect or for an answer) a loaded machine that stalls redis-server for a moment fails claims, which
# says nothing about the pool. REDIS_URL may set those waits; a pool that does not wait at all still
# fails at once.
PATIENT = "timeout=60&socket_timeout=60&socket_connect_timeout=60"


@pytest.fixture(params=["embedded", "redis-server"])
def state_url(request: pytest.FixtureRequest) -> str | None:
    """What open_state is given: no URL (embedded fakeredis) or the session's real redis-server, patient."""
    if request.param == "embedded":
        return None
    url: str = request.getfixturevalue("real_redis_url")
    return f"{url}?{PATIENT}"


async def test_a_burst_larger_than_the_pool_waits_and_every_claim_is_answered(state_url: str | None) -> None:
    async with open_state(state_url) as store:
        keys_ = [f"EvBurst{i % (BURST // 2)}" for i in range(BURST)]  # every key claimed twice
        results = await asyncio.gather(*(store.claim("slack_event", key) for key in keys_))
    assert results.count(True) == BURST // 2  # no StateUnavailable, and each key won exactly once


async def test_the_pool_never_opens_more_than_its_maximum(real_redis_url: str) -> None:
    async with open_state(f"{real_redis_url}?{PATIENT}") as store:
        observer = redis_client(real_redis_url)
        try:
            before = (await observer.info("clients"))["connected_clients"]
            await asyncio.gather(*(store.claim("slack_event", f"EvMax{i}") for i in range(BURST)))
            after = (await observer.info("clients"))["connected_clients"]  # the pool keeps its connections
        finally:
            await observer.aclose()
    assert 1 <= after - before <= MAX_CONNECTIONS


# --- the embedded default --------------------------------------------------------------------


async def test_without_redis_url_state_is_embedded_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.state")
    async with open_state(None) as store:
        assert await store.ping() is True
        assert await store.claim("slack_event", "Ev01") is True
        assert await store.claim("slack_event", "Ev01") is False

    lines = [record for record in caplog.records if record.name.startswith("bot.state")]
    assert len(lines) == 1
    assert lines[0].levelno == logging.INFO
    assert "in memory" in lines[0].getMessage() and "not shared between replicas" in lines[0].getMessage()


def test_keys_are_namespaced_and_names_cannot_collide() -> None:
    assert keys.claim_key("slack_event", "Ev01") == "secretbot:claim:slack_event:Ev01"
    assert keys.conversation_key("teams", "19:a;b").startswith("secretbot:conv:teams:")
    assert keys.conversation_index_key("teams") == "secretbot:convs:teams"
    assert keys.question_key("AbCd-_12") == "secretbot:question:AbCd-_12"
    with pytest.raises(ValueError):
        keys.claim_key("slack:event", "Ev01")  # a `:` in a kind could alias another kind's keys
