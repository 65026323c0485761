"""Slack end to end: real Bolt in our aiohttp app, signed requests, a local fake Slack Web API."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient, TestServer
from slack_sdk.signature import SignatureVerifier

from bot.app import create_app
from bot.fakegraph.samples import sample_errors
from bot.settings import Settings
from cards.welcome import HELP_TITLE
from handlers.recheck import NOT_KEPT, TOO_OLD, UNREACHABLE
from tests.conftest import SampleTenant
from tests.fake_slack import BOT_USER, FakeSlack
from tests.redis_server import free_port, redis_server
from tests.tenant_edits import add_secret, edited

SIGNING_SECRET = "test-signing-secret"
SAMPLE = {s.cause: s for s in sample_errors()}
SEED = SAMPLE["expired_secret_in_use"].text
SEED_HEADLINE = "The client still sends an old, expired secret"
PAYMENTS_APP = "dc36fc90-2248-4d70-aca4-a1a9f5b19f71"


def settings(fake: FakeSlack, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "snapshot": "sample",
        "slack_bot_token": "xoxb-test-token",
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": fake.url("/api/"),
    }
    return Settings(**(values | overrides))


@pytest.fixture
async def slack_client(fake_slack: FakeSlack) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings(fake_slack)))) as client:
        yield client


def signed(body: str, *, secret: str = SIGNING_SECRET, age: int = 0, retry: int | None = None) -> dict[str, str]:
    timestamp = str(int(time.time()) - age)
    headers = {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body),
    }
    if retry is not None:
        headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
    return headers


def event(kind: str, text: str, *, event_id: str = "Ev001", channel_type: str = "im", **extra: Any) -> str:
    inner = {"type": kind, "user": "U0ALICE", "text": text, "channel": "D0CHAN", "ts": "1699999999.000100"}
    inner |= {"channel_type": channel_type, **extra}
    return json.dumps({"type": "event_callback", "team_id": "T0TEAM", "event_id": event_id, "event": inner})


async def post_json(client: TestClient, body: str, **sign: Any) -> int:
    response = await client.post(
        "/slack/events", data=body, headers=signed(body, **sign) | {"Content-Type": "application/json"}
    )
    return response.status


async def eventually(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Work runs after Slack's ack, so wait (bounded) until it has happened."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the bot")
        await asyncio.sleep(0.02)


def card_text(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


async def test_direct_message_gets_checking_then_the_card(slack_client: TestClient, fake_slack: FakeSlack) -> None:
    assert await post_json(slack_client, event("message", SEED)) == 200
    await eventually(lambda: bool(fake_slack.called("chat.update")))
    posted, updated = fake_slack.called("chat.postMessage"), fake_slack.called("chat.update")
    assert len(posted) == 1 and posted[0]["thread_ts"] == "1699999999.000100"
    assert "Checking" in posted[0]["text"]
    assert len(updated) == 1 and updated[0]["ts"] == "1700000000.000001"
    assert SEED_HEADLINE in card_text(updated[0]["blocks"])
    assert SEED_HEADLINE in updated[0]["text"]


async def test_web_api_calls_share_one_connection_closed_at_shutdown(fake_slack: FakeSlack) -> None:
    async with TestClient(TestServer(create_app(settings(fake_slack)))) as client:
        for n in range(3):  # one at a time: each answer is auth.test (once), chat.postMessage, chat.update
            await post_json(client, event("message", SEED, event_id=f"EvConn{n}"))
            await eventually(lambda n=n: len(fake_slack.called("chat.update")) == n + 1)
        assert len(fake_slack.calls) == 7
        assert fake_slack.api_connections() == 1  # slack_sdk without a session: one connection per call
        assert fake_slack.open_connections() == 1  # kept alive for the next answer
    await eventually(lambda: fake_slack.open_connections() == 0)  # the app's shutdown closed the session


async def test_a_message_posted_as_the_bot_user_is_not_answered(
    slack_client: TestClient, fake_slack: FakeSlack
) -> None:
    assert await post_json(slack_client, event("message", SEED, user=BOT_USER)) == 200
    assert await post_json(slack_client, event("message", SEED, event_id="Ev002")) == 200  # a person's
    await eventually(lambda: bool(fake_slack.called("chat.update")))
    assert len(fake_slack.called("chat.postMessage")) == 1


async def test_while_slack_will_not_say_who_the_bot_is_messages_go_through_bolt_and_are_answered(
    slack_client: TestClient, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    fake_slack.fail("auth.test", 1, "internal_error")  # the quick lane's auth.test; Bolt's own then works
    assert await post_json(slack_client, event("message", SEED)) == 200
    await eventually(lambda: bool(fake_slack.called("chat.update")))
    assert SEED_HEADLINE in card_text(fake_slack.called("chat.update")[0]["blocks"])
    assert len(fake_slack.called("auth.test")) == 2
    assert "slack auth.test failed (SlackApiError): message events go through Bolt" in caplog.messages


async def test_mention_in_a_channel_is_answered(slack_client: TestClient, fake_slack: FakeSlack) -> None:
    body = event("app_mention", f"<@{BOT_USER}> {SEED}", channel_type="channel")
    assert await post_json(slack_client, body) == 200
    await eventually(lambda: bool(fake_slack.called("chat.update")))
    assert SEED_HEADLINE in card_text(fake_slack.called("chat.update")[0]["blocks"])


async def test_channel_message_only_with_a_code(slack_client: TestClient, fake_slack: FakeSlack) -> None:
    assert (
        await post_json(slack_client, event("message", "lunch anyone?", event_id="Ev1", channel_type="channel")) == 200
    )
    assert await post_json(slack_client, event("message", SEED, event_id="Ev2", channel_type="channel")) == 200
    await eventually(lambda: bool(fake_slack.called("chat.update")))
    await asyncio.sleep(0.2)  # give a wrongly answered first message time to show up
    assert len(fake_slack.called("chat.postMessage")) == 1


async def test_channel_message_mentioning_the_bot_is_answered_once_via_app_mention(
    slack_client: TestClient, fake_slack: FakeSlack
) -> None:
    text = f"<@{BOT_USER}> {SEED}"
    await post_json(slack_client, event("message", text, event_id="Ev1", channel_type="channel"))
    await post_json(slack_client, event("app_mention", text, event_id="Ev2", channel_type="channel"))
    await eventually(lambda: bool(fake_slack.called("chat.update")))
    await asyncio.sleep(0.2)
    assert len(fake_slack.called("chat.postMessage")) == 1


async def test_slash_command_acks_then_answers_through_response_url(
    slack_client: TestClient, fake_slack: FakeSlack
) -> None:
    form = {"command": "/secretbot", "text": PAYMENTS_APP, "user_id": "U0ALICE", "channel_id": "C0CHAN"}
    form["response_url"] = fake_slack.url("/response/1")
    body = urlencode(form)
    headers = signed(body) | {"Content-Type": "application/x-www-form-urlencoded"}
    response = await slack_client.post("/slack/events", data=body, headers=headers)
    assert response.status == 200
    assert "Checking" in (await response.json())["text"]
    await eventually(lambda: bool(fake_slack.called("response_url")))
    answer = fake_slack.called("response_url")[0]
    assert answer["replace_original"] is True
    assert "payments-api" in card_text(answer["blocks"])


async def test_slash_command_help(slack_client: TestClient, fake_slack: FakeSlack) -> None:
    form = {"command": "/secretbot", "text": "help", "user_id": "U0ALICE", "channel_id": "C0CHAN"}
    form["response_url"] = fake_slack.url("/response/2")
    body = urlencode(form)
    await slack_client.post(
        "/slack/events", data=body, headers=signed(body) | {"Content-Type": "application/x-www-form-urlencoded"}
    )
    await eventually(lambda: bool(fake_slack.called("response_url")))
    answer = fake_slack.called("response_url")[0]
    shown = card_text(answer["blocks"])
    assert answer["blocks"][0]["text"]["text"].endswith(HELP_TITLE) and HELP_TITLE in answer["text"]
    assert "AADSTS7000215" in shown  # an example to paste
    assert "/secretbot" in shown and "No Entra ID error found" not in shown


async def test_a_message_with_nothing_recognisable_says_so(slack_client: TestClient, fake_slack: FakeSlack) -> None:
    assert await post_json(slack_client, event("message", "the nightly build is red again, any idea?")) == 200
    await eventually(lambda: bool(fake_slack.called("chat.update")))
    [updated] = fake_slack.called("chat.update")
    assert "No Entra ID error found" in updated["text"]
    assert HELP_TITLE not in card_text(updated["blocks"]) and "AADSTS7000215" in card_text(updated["blocks"])


async def test_button_routes_by_verb_and_updates_the_message(slack_client: TestClient, fake_slack: FakeSlack) -> None:
    payload = {
        "type": "block_actions",
        "user": {"id": "U0ALICE", "name": "alice"},
        "channel": {"id": "C0CHAN"},
        "container": {"type": "message", "message_ts": "1700000000.000009", "channel_id": "C0CHAN"},
        "message": {"ts": "1700000000.000009"},
        "actions": [{"action_id": "diagnosis.recheck", "value": PAYMENTS_APP, "type": "button", "block_id": "b"}],
        "response_url": fake_slack.url("/response/3"),
        # Slack gives every press its own trigger id and action time; without them two presses in one
        # second would be byte-identical and dropped as a replay.
        "trigger_id": f"1.2.{next(_PRESSES)}",
    }
    body = urlencode({"payload": json.dumps(payload)})
    response = await slack_client.post(
        "/slack/events", data=body, headers=signed(body) | {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status == 200
    await eventually(lambda: bool(fake_slack.called("chat.update")))
    update = fake_slack.called("chat.update")[0]
    assert update["ts"] == "1700000000.000009" and update["channel"] == "C0CHAN"
    assert "payments-api" in card_text(update["blocks"])


async def test_retries_do_not_answer_twice(slack_client: TestClient, fake_slack: FakeSlack) -> None:
    body = event("message", SEED, event_id="EvRetry")
    assert await post_json(slack_client, body) == 200
    assert await post_json(slack_client, body, retry=1) == 200
    assert await post_json(slack_client, body, retry=2) == 200
    await eventually(lambda: bool(fake_slack.called("chat.update")))
    await asyncio.sleep(0.2)
    assert len(fake_slack.called("chat.postMessage")) == 1


async def test_two_replicas_sharing_redis_answer_once(fake_slack: FakeSlack) -> None:
    with redis_server() as redis:
        shared = settings(fake_slack, redis_url=redis.url)
        async with TestClient(TestServer(create_app(shared))) as one, TestClient(TestServer(create_app(shared))) as two:
            body = event("message", SEED, event_id="EvTwoReplicas")
            statuses = await asyncio.gather(post_json(one, body), post_json(two, body, retry=1))
            assert statuses == [200, 200]
            await eventually(lambda: bool(fake_slack.called("chat.update")))
            await asyncio.sleep(0.2)
    assert len(fake_slack.called("chat.postMessage")) == 1


@pytest.mark.parametrize(
    ("sign", "why"), [({"secret": "forged"}, "forged signature"), ({"age": 400}, "stale timestamp")]
)
async def test_rejected_requests_get_401_and_run_nothing(
    slack_client: TestClient, fake_slack: FakeSlack, sign: dict[str, Any], why: str
) -> None:
    assert await post_json(slack_client, event("message", SEED), **sign) == 401, why
    await asyncio.sleep(0.2)
    assert fake_slack.calls == []  # not even auth.test: nothing ran


async def test_pasted_secret_is_called_leaked_and_never_repeated(
    slack_client: TestClient, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    paste = SAMPLE["secret_value_pasted"].text
    secret = next(word for word in paste.split() if "Q~" in word)
    await post_json(slack_client, event("message", paste, event_id="EvSecret"))
    await eventually(lambda: bool(fake_slack.called("chat.update")))
    update = fake_slack.called("chat.update")[0]
    assert "leaked" in card_text(update["blocks"])
    everything = json.dumps([c.args for c in fake_slack.calls]) + caplog.text
    assert secret not in everything


async def test_redis_down_still_answers_and_is_not_ready(
    fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    down = settings(fake_slack, redis_url=f"redis://127.0.0.1:{port}/0")
    async with TestClient(TestServer(create_app(down))) as client:
        ready = await client.get("/readyz")
        assert ready.status == 503 and (await ready.json())["redis"] == "unreachable"
        assert await post_json(client, event("message", SEED, event_id="EvNoRedis")) == 200
        await eventually(lambda: bool(fake_slack.called("chat.update")))
    # The warning says why by exception types only: no host, port or message.
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("bot.platforms.slack")]
    assert warnings == [
        "job queue unavailable (ConnectionError from ConnectionRefusedError): answering in this process",
        "state store unavailable (ConnectionError from ConnectionRefusedError): answering without de-duplication",
    ]
    assert not any(str(port) in warning for warning in warnings)


async def test_health_and_metrics(slack_client: TestClient, fake_slack: FakeSlack) -> None:
    assert (await slack_client.get("/healthz")).status == 200
    assert (await slack_client.get("/readyz")).status == 200
    await post_json(slack_client, event("message", SEED, event_id="EvMetrics"))
    await eventually(lambda: bool(fake_slack.called("chat.update")))
    done = 'secretbot_jobs_total{function="slack.answer",outcome="ok"} 1.0'
    for _ in range(100):  # the job is counted as it returns, just after its chat.update
        metrics = await (await slack_client.get("/metrics")).text()
        if done in metrics:
            break
        await asyncio.sleep(0.02)
    assert 'secretbot_diagnoses_total{cause="expired_secret_in_use",platform="slack"} 1.0' in metrics
    assert 'secretbot_graph_calls_total{call="lookup",outcome="ok"}' in metrics
    assert 'secretbot_requests_total{route="/slack/events",status="200"}' in metrics
    # The answer ran as a job: counted by outcome, timed from enqueue to start and start to end.
    assert done in metrics
    assert 'secretbot_job_wait_seconds_count{function="slack.answer"} 1.0' in metrics
    assert 'secretbot_job_run_seconds_count{function="slack.answer"} 1.0' in metrics
    assert "secretbot_queue_depth 0.0" in metrics


# --- Check again ---------------------------------------------------------------------------------


@pytest.fixture
async def slack_on_tenant(fake_slack: FakeSlack, sample_tenant: SampleTenant) -> AsyncIterator[TestClient]:
    """The bot on a fake tenant the test can change while it runs."""
    app = create_app(settings(fake_slack), directory=sample_tenant.directory)
    async with TestClient(TestServer(app)) as client:
        yield client


def recheck_button(blocks: list[dict[str, Any]]) -> str:
    [button] = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert button["action_id"] == "diagnosis.recheck"
    return str(button["value"])


_PRESSES = itertools.count(1)


async def press(client: TestClient, fake: FakeSlack, value: str, *, ts: str | None, ephemeral: bool = False) -> None:
    container: dict[str, Any] = {"type": "message", "message_ts": ts or "1700000000.000077", "channel_id": "D0CHAN"}
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": "U0ALICE", "name": "alice"},
        "channel": {"id": "D0CHAN"},
        "container": container | ({"is_ephemeral": True} if ephemeral else {}),
        "actions": [{"action_id": "diagnosis.recheck", "value": value, "type": "button", "block_id": "b"}],
        "response_url": fake.url("/response/press"),
        # Slack gives every press its own trigger id and action time; without them two presses in one
        # second would be byte-identical and dropped as a replay.
        "trigger_id": f"1.2.{next(_PRESSES)}",
    }
    if not ephemeral:
        payload["message"] = {"ts": ts}
    body = urlencode({"payload": json.dumps(payload)})
    headers = signed(body) | {"Content-Type": "application/x-www-form-urlencoded"}
    assert (await client.post("/slack/events", data=body, headers=headers)).status == 200


async def test_check_again_keeps_the_cause_then_says_what_changed(
    slack_on_tenant: TestClient, fake_slack: FakeSlack, sample_tenant: SampleTenant
) -> None:
    await post_json(slack_on_tenant, event("message", SEED, event_id="EvRecheck"))
    await eventually(lambda: len(fake_slack.called("chat.update")) == 1)
    first = fake_slack.called("chat.update")[0]
    question_id = recheck_button(first["blocks"])
    assert question_id != PAYMENTS_APP  # the button carries an id; the question stays on the server

    await press(slack_on_tenant, fake_slack, question_id, ts=first["ts"])
    await eventually(lambda: len(fake_slack.called("chat.update")) == 2)
    again = fake_slack.called("chat.update")[1]
    assert again["ts"] == first["ts"]
    assert SEED_HEADLINE in card_text(again["blocks"])  # still the expired secret in use
    assert "Re-checked " in card_text(again["blocks"])
    assert "Nothing changed in Graph since the first answer." in card_text(again["blocks"])

    added = datetime.now(UTC) - timedelta(minutes=3)
    sample_tenant.graph.use_snapshot(
        edited(add_secret(PAYMENTS_APP, "ci-2026b", "Xy7", added, added + timedelta(days=180)))
    )
    await press(slack_on_tenant, fake_slack, recheck_button(again["blocks"]), ts=first["ts"])
    await eventually(lambda: len(fake_slack.called("chat.update")) == 3)
    changed = card_text(fake_slack.called("chat.update")[2]["blocks"])
    assert SEED_HEADLINE in changed
    assert "What changed" in changed and "secret 'ci-2026b' (starts with 'Xy7'" in changed
    assert "The client must be updated to use it" in changed
    assert fake_slack.called("response_url") == []


async def test_check_again_on_an_ephemeral_answer_replaces_it_through_response_url(
    slack_on_tenant: TestClient, fake_slack: FakeSlack
) -> None:
    form = {"command": "/secretbot", "text": SEED, "user_id": "U0ALICE", "channel_id": "C0CHAN"}
    form["response_url"] = fake_slack.url("/response/command")
    body = urlencode(form)
    headers = signed(body) | {"Content-Type": "application/x-www-form-urlencoded"}
    await slack_on_tenant.post("/slack/events", data=body, headers=headers)
    await eventually(lambda: len(fake_slack.called("response_url")) == 1)
    question_id = recheck_button(fake_slack.called("response_url")[0]["blocks"])

    await press(slack_on_tenant, fake_slack, question_id, ts="1700000000.000042", ephemeral=True)
    await eventually(lambda: len(fake_slack.called("response_url")) == 2)
    replaced = fake_slack.called("response_url")[1]
    assert replaced["replace_original"] is True and replaced["response_type"] == "ephemeral"
    assert SEED_HEADLINE in card_text(replaced["blocks"]) and "Re-checked " in card_text(replaced["blocks"])
    assert fake_slack.called("chat.update") == []  # chat.update cannot edit an ephemeral message


async def test_check_again_on_an_expired_question_says_so_to_the_presser_only(
    slack_on_tenant: TestClient, fake_slack: FakeSlack
) -> None:
    await press(slack_on_tenant, fake_slack, "AbCdEfGhIjKlMnOpQrStUv", ts="1700000000.000009")
    await eventually(lambda: bool(fake_slack.called("response_url")))
    [notice] = fake_slack.called("response_url")
    assert notice["text"] == TOO_OLD
    assert notice["replace_original"] is False and notice["response_type"] == "ephemeral"
    assert fake_slack.called("chat.update") == []  # the card stays as it was


async def test_with_redis_down_the_answer_goes_out_and_a_press_says_why(
    fake_slack: FakeSlack, sample_tenant: SampleTenant
) -> None:
    down = settings(fake_slack, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    async with TestClient(TestServer(create_app(down, directory=sample_tenant.directory))) as client:
        await post_json(client, event("message", SEED, event_id="EvRecheckNoRedis"))
        await eventually(lambda: bool(fake_slack.called("chat.update")))
        first = fake_slack.called("chat.update")[0]
        assert SEED_HEADLINE in card_text(first["blocks"])
        assert recheck_button(first["blocks"]) == PAYMENTS_APP  # not kept: a press checks the app alone

        await press(client, fake_slack, "AbCdEfGhIjKlMnOpQrStUv", ts=first["ts"])
        await eventually(lambda: bool(fake_slack.called("response_url")))
        assert fake_slack.called("response_url")[0]["text"] == UNREACHABLE

        await press(client, fake_slack, PAYMENTS_APP, ts=first["ts"])
        await eventually(lambda: len(fake_slack.called("chat.update")) == 2)
        assert NOT_KEPT in card_text(fake_slack.called("chat.update")[1]["blocks"])
