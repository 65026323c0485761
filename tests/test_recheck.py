"""Check again through the handler and card API: the question is kept server side under the button's
id, asked again against the fake Graph as it is now, and the card says what changed since.

The wire (Slack, Teams, console) is covered in test_slack.py, test_teams.py and test_console.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import fakeredis
import pytest
import redis.asyncio as redis

from bot.domain import Diagnosis, Notice, NoticeReason, Severity, Verb
from bot.fakegraph.samples import sample_errors
from bot.state import RedisStateStore, keys, questions, redis_client
from cards.blockkit import render_blockkit
from cards.text import render_text
from handlers import recheck as recheck_module
from handlers.actions import handler_for
from handlers.conversation import answer
from handlers.inbound import Actor, Deps, InboundAction, InboundMessage
from tests.conftest import SampleTenant
from tests.redis_server import free_port
from tests.tenant_edits import (
    NEW_KEY_ID,
    NIGHTLY_EXPORT,
    PAYMENTS_APP,
    REPORTING_BOT,
    add_secret,
    edited,
    enable_service_principal,
    remove_secret,
)

SAMPLE = {s.cause: s.text for s in sample_errors()}
FIRST_ANSWER = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
ME = Actor("console", "tester")


@dataclass
class Bot:
    deps: Deps
    redis: redis.Redis  # the store's Redis, seen from outside
    tenant: SampleTenant
    now: list[datetime] = field(default_factory=lambda: [FIRST_ANSWER])

    async def paste(self, text: str) -> Diagnosis:
        return await answer(InboundMessage(text, ME, "c1"), self.deps)

    async def press(self, button_id: str) -> Diagnosis | Notice:
        handler = handler_for(Verb.RECHECK)
        assert handler is not None
        return await handler(InboundAction(Verb.RECHECK, button_id, ME, "c1"), self.deps)


@pytest.fixture
async def bot(sample_tenant: SampleTenant) -> AsyncIterator[Bot]:
    server = fakeredis.FakeServer()
    store, observer = fakeredis.FakeAsyncRedis(server=server), fakeredis.FakeAsyncRedis(server=server)
    now = [FIRST_ANSWER]
    deps = Deps(directory=sample_tenant.directory, state=RedisStateStore(store), now=lambda: now[0])
    yield Bot(deps, observer, sample_tenant, now)
    await store.aclose()
    await observer.aclose()


def button_value(diagnosis: Diagnosis) -> str:
    [actions] = [b for b in render_blockkit(diagnosis)["blocks"] if b["type"] == "actions"]
    [button] = actions["elements"]
    assert button["action_id"] == "diagnosis.recheck"
    return str(button["value"])


def card(diagnosis: Diagnosis) -> str:
    return json.dumps(render_blockkit(diagnosis), ensure_ascii=False)


def cause(result: Diagnosis | Notice) -> str | None:
    assert isinstance(result, Diagnosis)
    return result.primary.cause.value if result.primary else None


async def test_check_again_keeps_the_question_and_its_cause(bot: Bot) -> None:
    first = await bot.paste(SAMPLE["expired_secret_in_use"])
    assert cause(first) == "expired_secret_in_use"
    question_id = button_value(first)
    assert question_id != PAYMENTS_APP and len(question_id) >= 22  # an opaque id, not the app

    bot.now[0] = FIRST_ANSWER + timedelta(minutes=105)
    again = await bot.press(question_id)
    assert cause(again) == "expired_secret_in_use"
    assert isinstance(again, Diagnosis) and again.recheck is not None and not again.recheck.changes
    shown = card(again)
    assert "Re-checked 2026-11-20 10:45 UTC (first answered 2026-11-20 09:00 UTC)." in shown
    assert "Nothing changed in Graph since the first answer." in shown
    assert button_value(again) == question_id  # pressing again asks the same question
    assert "Re-checked 2026-11-20 10:45 UTC" in render_text(again)


async def test_a_secret_added_since_is_named_and_the_client_must_use_it(bot: Bot) -> None:
    question_id = button_value(await bot.paste(SAMPLE["expired_secret_in_use"]))
    added = FIRST_ANSWER + timedelta(minutes=102)
    bot.tenant.graph.use_snapshot(
        edited(add_secret(PAYMENTS_APP, "ci-2026b", "Xy7", added, added + timedelta(days=180)))
    )
    bot.now[0] = FIRST_ANSWER + timedelta(minutes=105)

    again = await bot.press(question_id)
    assert cause(again) == "expired_secret_in_use"  # the client still sends ci-2025
    assert isinstance(again, Diagnosis) and again.recheck is not None
    [change] = again.recheck.changes
    assert change.what.startswith("Added at 2026-11-20 10:42 UTC: secret 'ci-2026b' (starts with 'Xy7'")
    assert NEW_KEY_ID in change.what
    assert "The client must be updated to use it" in change.meaning
    assert "a few minutes" in change.meaning  # 3 minutes old: Entra ID may not accept it yet
    assert "What changed" in card(again) and "ci-2026b" in card(again)
    assert all(f.cause.value != "secret_recently_added" for f in again.findings)  # a change, not a cause


async def test_removing_the_expired_secret_does_not_clear_the_cause(bot: Bot) -> None:
    question_id = button_value(await bot.paste(SAMPLE["expired_secret_in_use"]))
    bot.tenant.graph.use_snapshot(edited(remove_secret(PAYMENTS_APP, "ci-2025")))

    again = await bot.press(question_id)
    assert cause(again) == "expired_secret_in_use"
    assert isinstance(again, Diagnosis) and again.recheck is not None
    assert again.recheck.cause_kept and again.recheck.note == recheck_module.CAUSE_KEPT
    [change] = again.recheck.changes
    assert change.what.startswith("Removed: secret 'ci-2025'")
    assert "AADSTS7000215" in change.meaning
    assert "Nothing looks wrong" not in card(again)


async def test_a_new_secret_where_all_had_expired_turns_the_cause_into_the_client_to_update(bot: Bot) -> None:
    first = await bot.paste(SAMPLE["all_secrets_expired"])
    assert cause(first) == "all_secrets_expired"
    start = FIRST_ANSWER + timedelta(hours=1)
    bot.tenant.graph.use_snapshot(
        edited(add_secret(NIGHTLY_EXPORT, "export-2026", "Qm3", start, start + timedelta(days=365)))
    )
    bot.now[0] = FIRST_ANSWER + timedelta(hours=2)

    again = await bot.press(button_value(first))
    assert cause(again) == "expired_secret_in_use"  # a valid secret exists now; the client sends an old one
    assert isinstance(again, Diagnosis) and again.recheck is not None and not again.recheck.cause_kept
    assert "export-2026" in again.recheck.changes[0].what


async def test_an_enabled_app_is_resolved_and_says_so(bot: Bot) -> None:
    first = await bot.paste(SAMPLE["app_disabled"])
    assert cause(first) == "app_disabled"
    bot.tenant.graph.use_snapshot(edited(enable_service_principal(REPORTING_BOT)))

    again = await bot.press(button_value(first))
    assert isinstance(again, Diagnosis) and again.primary is not None and again.recheck is not None
    assert again.primary.severity is Severity.INFO and "it is enabled now" in again.primary.summary
    assert not again.recheck.cause_kept
    assert [c.what for c in again.recheck.changes] == ["The app is enabled again."]


async def test_an_unknown_or_expired_id_gets_a_clear_notice(bot: Bot) -> None:
    for button_id in ("AbCdEfGhIjKlMnOpQrStUv", "x" * 500, ""):
        result = await bot.press(button_id)
        assert result == Notice(NoticeReason.EXPIRED, recheck_module.TOO_OLD)
    assert "too old to check again" in recheck_module.TOO_OLD


async def test_a_question_expires_after_its_ttl(bot: Bot) -> None:
    question_id = button_value(await bot.paste(SAMPLE["expired_secret_in_use"]))
    client = bot.redis
    ttl = await client.ttl(keys.question_key(question_id))
    assert timedelta(days=7) - timedelta(minutes=1) < timedelta(seconds=ttl) <= keys.QUESTION_TTL
    await client.delete(keys.question_key(question_id))  # what the TTL does after 7 days
    assert isinstance(await bot.press(question_id), Notice)


async def test_an_old_card_with_a_bare_app_id_checks_the_app_alone_and_says_so(bot: Bot) -> None:
    again = await bot.press(PAYMENTS_APP)
    assert isinstance(again, Diagnosis) and again.recheck is not None
    assert again.recheck.note == recheck_module.NOT_KEPT
    assert recheck_module.NOT_KEPT in card(again)
    assert button_value(again) == PAYMENTS_APP


async def test_the_stored_question_holds_no_secret_value(bot: Bot) -> None:
    paste = SAMPLE["secret_value_pasted"]
    secret = next(word for word in paste.split() if "Q~" in word)
    first = await bot.paste(paste)
    stored_bytes = await bot.redis.get(keys.question_key(button_value(first)))
    assert stored_bytes is not None
    raw = questions.json_text(stored_bytes)  # the record as it is kept, decompressed
    assert secret not in raw and secret[3:] not in raw
    stored = json.loads(raw)
    assert stored["input"]["secret_value_detected"] is True


async def test_a_store_that_is_down_still_answers_and_the_press_says_why(sample_tenant: SampleTenant) -> None:
    client = redis_client(f"redis://127.0.0.1:{free_port()}/0")
    try:
        deps = Deps(directory=sample_tenant.directory, state=RedisStateStore(client), now=lambda: FIRST_ANSWER)
        down = Bot(deps, client, sample_tenant)
        first = await down.paste(SAMPLE["expired_secret_in_use"])
        assert cause(first) == "expired_secret_in_use"
        assert button_value(first) == PAYMENTS_APP  # not kept: the button checks the app alone
        assert await down.press("AbCdEfGhIjKlMnOpQrStUv") == Notice(
            NoticeReason.UNAVAILABLE, recheck_module.UNREACHABLE
        )
    finally:
        await client.aclose()


async def test_when_graph_cannot_be_asked_the_first_cause_stands_and_says_why(bot: Bot) -> None:
    question_id = button_value(await bot.paste(SAMPLE["expired_secret_in_use"]))
    bot.tenant.graph.add_fault(r"\$batch", 503)

    again = await bot.press(question_id)
    assert cause(again) == "expired_secret_in_use"
    assert isinstance(again, Diagnosis) and again.recheck is not None
    assert again.recheck.note == recheck_module.NO_GRAPH and not again.recheck.changes  # nothing to compare
    assert "Nothing looks wrong" not in card(again) and "Nothing changed" not in card(again)
    assert recheck_module.NO_GRAPH in card(again)
