"""Rotation is offered only where it can work: the app is tagged or listed, the bot's own token carries
Application.ReadWrite.OwnedBy (or .All) in `roles`, and the bot's service principal is among the app's
owners. Otherwise the card, the `rotate` command and the Request button say exactly what is missing,
and nothing is requested. The check adds no Graph round trip to a diagnosis: the owners and tags
ride in the lookup's `$batch`, and who the bot is comes from its token."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.domain import Diagnosis, Notice, NoticeReason, Verb
from bot.fakegraph.credential import OWNED_BY, SNAPSHOT_BOT_OBJECT_ID, app_token
from bot.fakegraph.samples import sample_errors
from bot.state import RedisStateStore
from handlers.conversation import answer_asked, read
from handlers.inbound import Deps
from tests.rotation_setup import PAYMENTS_APP, REQUESTER, Rig, rig
from tests.test_rotation_cards import buttons, press, rendered

EXPIRED_SECRET = next(s.text for s in sample_errors() if s.cause == "expired_secret_in_use")
STRANGER_SP = "5a0f3c7e-92b4-4d1a-8e6f-0b7c2d9e4a13"  # a service principal that owns nothing
NO_ROLE = "lacks the Application.ReadWrite.OwnedBy application permission (admin consent)"
NOT_OWNER = "the bot is not an owner of app payments-api"


@asynccontextmanager
async def chat(bot_token: str | None = None, *, with_rotation: bool = True) -> AsyncIterator[tuple[Rig, Deps]]:
    async with rig(bot_token=bot_token) as r:
        deps = Deps(
            r.rotations.directory,
            RedisStateStore(r.client),
            r.rotations.now,
            rotations=r.rotations if with_rotation else None,
        )
        yield r, deps


def request_buttons(answer: Diagnosis) -> list[tuple[str, str]]:
    slack, teams, _text = rendered(answer)
    in_slack, in_teams = buttons(slack, teams)
    return [b for b in in_slack + in_teams if b[0] == Verb.ROTATION_REQUEST.value]


async def test_an_owner_with_the_permission_is_offered_the_button_at_no_extra_graph_round_trip() -> None:
    async with chat() as (r, deps):
        offered = await answer_asked(await read(EXPIRED_SECRET), deps, REQUESTER, "C0")
        assert offered.rotation_offer is not None and offered.rotation_offer.why_not is None
        assert request_buttons(offered) == [(Verb.ROTATION_REQUEST.value, PAYMENTS_APP)] * 2
        with_offer = r.graph.round_trips
    async with chat(with_rotation=False) as (r, deps):
        await answer_asked(await read(EXPIRED_SECRET), deps, REQUESTER, "C0")
        assert r.graph.round_trips == with_offer  # the check rode on the diagnosis's own requests


async def test_a_token_without_the_permission_gets_no_button_and_says_what_to_consent() -> None:
    async with chat(app_token(roles=("User.Read.All",))) as (r, deps):
        answer = await answer_asked(await read(EXPIRED_SECRET), deps, REQUESTER, "C0")
        assert answer.rotation_offer is not None and NO_ROLE in (answer.rotation_offer.why_not or "")
        assert NOT_OWNER not in (answer.rotation_offer.why_not or "")  # it is an owner: only the role is missing
        assert request_buttons(answer) == []
        slack, teams, text = rendered(answer)
        for shown in (json.dumps(slack), json.dumps(teams), text):
            assert NO_ROLE in shown

        pressed = await press(deps, Verb.ROTATION_REQUEST, PAYMENTS_APP, REQUESTER)
        assert isinstance(pressed, Notice) and pressed.reason is NoticeReason.REFUSED and NO_ROLE in pressed.text
        assert await r.rotations.store.recent() == []  # nothing was requested


async def test_application_readwrite_all_counts_as_the_permission() -> None:
    async with chat(app_token(roles=("Application.ReadWrite.All",))) as (_r, deps):
        answer = await answer_asked(await read(EXPIRED_SECRET), deps, REQUESTER, "C0")
        assert answer.rotation_offer is not None and answer.rotation_offer.why_not is None


async def test_a_bot_that_is_not_an_owner_gets_no_button_and_is_told_whom_to_add() -> None:
    async with chat(app_token(object_id=STRANGER_SP, roles=(OWNED_BY,))) as (r, deps):
        answer = await answer_asked(await read(EXPIRED_SECRET), deps, REQUESTER, "C0")
        why = (answer.rotation_offer.why_not if answer.rotation_offer else None) or ""
        assert NOT_OWNER in why and STRANGER_SP in why and NO_ROLE not in why
        assert request_buttons(answer) == []

        command = await answer_asked(await read(f"rotate {PAYMENTS_APP} leaked"), deps, REQUESTER, "C0")
        assert command.rotation is None and command.command is not None
        assert NOT_OWNER in command.command.title
        assert await r.rotations.store.recent() == []


async def test_both_missing_are_both_named() -> None:
    async with chat(app_token(object_id=STRANGER_SP, roles=())) as (r, _deps):
        refused = await r.rotations.request(REQUESTER, PAYMENTS_APP, "leaked")
        assert isinstance(refused, Notice) and NO_ROLE in refused.text and NOT_OWNER in refused.text
        assert SNAPSHOT_BOT_OBJECT_ID not in refused.text  # it names the bot the token says it is
