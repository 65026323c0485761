"""`watch`, `unwatch` and `watching` typed in a channel: answered through the message path instead of a
diagnosis, kept in Redis, listed with what the routes file sends there, and bad input answered clearly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import fakeredis
import pytest

from bot.domain import Diagnosis
from bot.expiry import AppMatcher, Destination, MatchBy, Platform
from bot.routes import parse_routes
from bot.state import RedisStateStore
from cards.adaptive import render_adaptive
from cards.blockkit import render_blockkit
from cards.text import render_text
from handlers.conversation import answer
from handlers.inbound import Actor, Deps, InboundMessage
from handlers.routing import destinations_for
from handlers.subscriptions import BadCommand, Command, CommandVerb, parse_command
from tests.cardcheck import adaptive_problems, blockkit_problems
from tests.warning_fixtures import (
    BACKENDS,
    NOW,
    Backend,
    credential,
    open_backend,
    real_redis,  # noqa: F401  (a fixture: the real redis-server)
)

ROUTES = parse_routes(
    '[defaults]\nslack_channel = "C0OPS"\nthresholds = [21, 7]\n\n'
    '[[route]]\ntag = "critical"\nslack_channel = "C0OPS"\nthresholds = [60]\n',
    "/etc/secretbot/routes.toml",
)
OPS = Destination(Platform.SLACK, "C0OPS")
APP_ID = "1b4e28ba-2fa1-4d2e-8a8e-0d7c5b1e9f01"


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    async with open_backend(request) as opened:
        yield opened


def say(text: str, *, platform: str = "slack", channel: str = "C0OPS") -> InboundMessage:
    return InboundMessage(text, Actor(platform, "U0ALICE", "Alice Example"), channel)


async def ask(store: RedisStateStore, message: InboundMessage) -> Diagnosis:
    return await answer(message, Deps(directory=None, state=store, now=lambda: NOW, routes=ROUTES))


def words(diagnosis: Diagnosis) -> str:
    return render_text(diagnosis)


async def test_watch_then_watching_then_unwatch(backend: Backend) -> None:
    store = backend.store()
    reply = await ask(store, say("watch payments-* 30 14,7d"))
    assert reply.command is not None and reply.command.understood
    assert "Watching apps named payments-* here" in words(reply)
    assert "30, 14, 7 days before the end date and on expiry" in words(reply)

    await ask(store, say(f"watch {APP_ID.upper()}"))
    listing = words(await ask(store, say("watching")))
    assert "apps named payments-*, 30, 14, 7 days" in listing and "by Alice Example on 2026-11-20" in listing
    assert f"app {APP_ID}, 21, 7 days" in listing  # no thresholds given: the routes file's defaults
    assert "From the routes file (/etc/secretbot/routes.toml)" in listing
    assert "apps tagged critical, 60 days before the end date and on expiry (the route at line 5)" in listing
    assert "Every app no route matches (the defaults)" in listing

    subscriptions = await store.warnings.subscriptions()
    assert destinations_for(credential("Payments-API", NOW + timedelta(days=3)), ROUTES, subscriptions) == {
        OPS: (30, 21, 14, 7)  # the defaults (no route matched) and the subscription, in one channel
    }

    assert "No longer watching apps named payments-* here" in words(await ask(store, say("unwatch payments-*")))
    again = words(await ask(store, say("unwatch payments-*")))
    assert "This channel was not watching apps named payments-*" in again and f"watch {APP_ID}" in again


async def test_a_channel_with_nothing_says_how_to_start(backend: Backend) -> None:
    listing = words(await ask(backend.store(), say("watching", channel="C0QUIET")))
    assert "This channel receives no expiry warnings" in listing and "watch payments-*" in listing


async def test_teams_threads_watch_for_their_channel(backend: Backend) -> None:
    store = backend.store()
    await ask(
        store, say("Watch tag:Critical 7", platform="teams", channel="19:ops@thread.tacv2;messageid=1712345678901")
    )
    [subscription] = await store.warnings.subscriptions()
    assert subscription.destination == Destination(Platform.TEAMS, "19:ops@thread.tacv2")
    assert subscription.matcher == AppMatcher(MatchBy.TAG, "critical") and subscription.thresholds == (7,)


async def test_the_console_has_no_channel_to_warn(backend: Backend) -> None:
    reply = await ask(backend.store(), say("watch all", platform="console", channel="console"))
    assert reply.command is not None and not reply.command.understood
    assert "Warnings go to Slack and Teams channels" in words(reply)


async def test_with_redis_down_nothing_changes_and_it_says_so() -> None:
    server = fakeredis.FakeServer()
    server.connected = False
    store = RedisStateStore(fakeredis.FakeAsyncRedis(server=server))
    reply = await ask(store, say("watch all"))
    assert "Nothing was changed" in words(reply) and "state store is not answering" in words(reply)


BAD = {
    "watch": "watch what?",
    "watch   ": "watch what?",
    "unwatch": "unwatch what?",
    "watch payments-* abc": "Unknown threshold 'abc'",
    "watch payments-* 30 0": "Threshold 0 is out of range",
    "watch payments-* 7 7": "Threshold 7 is listed twice",
    "watch payments-* 99999": "out of range",
    "watch tag:": "tag: needs a tag name",
    'watch "Payments API': "A quote is not closed",
    "unwatch payments-* 30": "unwatch takes what to stop watching, without thresholds",
    "watching everything": "watching takes nothing after it",
    "watch " + "x" * 300: "longer than 200 characters",
}


@pytest.mark.parametrize("text", list(BAD))
async def test_bad_commands_get_a_clear_answer(backend: Backend, text: str) -> None:
    reply = await ask(backend.store(), say(text))
    assert reply.command is not None and not reply.command.understood
    assert BAD[text] in words(reply) and "watch <app id | name glob | tag:NAME | all>" in words(reply)
    assert await backend.store().warnings.subscriptions() == []


def test_the_command_parser() -> None:
    assert parse_command("watch all") == Command(CommandVerb.WATCH, AppMatcher(MatchBy.ALL))
    assert parse_command('/watch "Payments API*" 30') == Command(
        CommandVerb.WATCH, AppMatcher(MatchBy.NAME, "payments api*"), (30,)
    )
    assert parse_command("WATCHING") == Command(CommandVerb.WATCHING)
    assert parse_command("unwatch TAG:Team-A") == Command(CommandVerb.UNWATCH, AppMatcher(MatchBy.TAG, "team-a"))
    assert isinstance(parse_command("watch"), BadCommand)
    for text in ("AADSTS7000215: Invalid client secret", "watchdog failed", "please watch payments", "hi"):
        assert parse_command(text) is None  # not a command: diagnosed as usual


async def test_command_answers_are_valid_cards(backend: Backend) -> None:
    store = backend.store()
    await ask(store, say("watch <!channel> 30"))
    for text in ("watching", "watch payments-* abc", "watch all 7"):
        reply = await ask(store, say(text))
        assert blockkit_problems(render_blockkit(reply)) == []
        assert adaptive_problems(render_adaptive(reply)) == []
    listing = render_blockkit(await ask(store, say("watching")))
    assert "<!channel>" not in str(listing) and "&lt;!channel&gt;" in str(listing)


async def test_a_paste_is_still_diagnosed(backend: Backend) -> None:
    reply = await ask(backend.store(), say(f"AADSTS7000215: Invalid client secret provided. app '{APP_ID}'"))
    assert reply.command is None and reply.input.codes == (7000215,)
