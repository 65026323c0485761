"""Rotation in chat: the `rotate` command and the buttons go through the one action table every
adapter uses, refusals come back as a Notice to the person who pressed (nothing changes), and the
request card (Block Kit, Adaptive Card 1.5, text) names who asked, the app, the reason, the secret it
replaces, the new secret's lifetime and where it goes, then moves step by step to done and Retire.
Diagnosis cards whose cause a new secret fixes offer the button, or say why not."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from bot.domain import Diagnosis, Notice, NoticeReason, Verb
from bot.expiry import Problem
from bot.fakegraph.samples import sample_errors
from bot.rotation_types import RotationState
from bot.state import RedisStateStore
from cards.adaptive import render_adaptive
from cards.blockkit import render_blockkit
from cards.text import render_text
from handlers.actions import handler_for
from handlers.conversation import answer_asked, read
from handlers.inbound import Actor, Deps, InboundAction
from tests.cardcheck import adaptive_problems, blockkit_problems
from tests.rotation_setup import APPROVER_TEAMS, BUILD_AGENT_APP, PAYMENTS_APP, REQUESTER, Rig, rig

SAMPLE = {s.cause: s.text for s in sample_errors()}


@asynccontextmanager
async def chat(with_rotation: bool = True) -> AsyncIterator[tuple[Rig, Deps]]:
    async with rig() as r:
        rotations = r.rotations if with_rotation else None
        deps = Deps(r.rotations.directory, RedisStateStore(r.client), r.rotations.now, rotations=rotations)
        yield r, deps


async def press(deps: Deps, verb: Verb, item: str, actor: Actor) -> Diagnosis | Notice:
    handler = handler_for(verb)
    assert handler is not None
    return await handler(InboundAction(verb.value, item, actor, "C0PAYMENTS"), deps)


def rendered(diagnosis: Diagnosis) -> tuple[dict[str, Any], dict[str, Any], str]:
    slack, teams = render_blockkit(diagnosis), render_adaptive(diagnosis)
    assert blockkit_problems(slack) == []
    assert adaptive_problems(teams) == []
    return slack, teams, render_text(diagnosis)


def buttons(slack: dict[str, Any], teams: dict[str, Any]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    in_slack = [(e["action_id"], e["value"]) for b in slack["blocks"] if b["type"] == "actions" for e in b["elements"]]
    in_teams = [(a["verb"], a["data"]["id"]) for a in teams.get("actions", []) if a["type"] == "Action.Execute"]
    return in_slack, in_teams


async def test_rotate_command_opens_a_request_whose_card_says_everything_an_approver_needs() -> None:
    async with chat() as (r, deps):
        asked = await read(f"rotate {PAYMENTS_APP} ci-2025 leaked in a build log")
        answer = await answer_asked(asked, deps, REQUESTER, "C0PAYMENTS")
        assert answer.rotation is not None and answer.rotation.state is RotationState.REQUESTED
        rotation = answer.rotation
        slack, teams, text = rendered(answer)
        for shown in (json.dumps(slack), json.dumps(teams), text):
            for fact in (
                "Jonas Berg",
                "payments-api",
                PAYMENTS_APP,
                "ci-2025 leaked in a build log",
                "62f746b4-84e6-4ceb-95bd-447e7184d454",  # the secret it replaces
                "180 days",
                "payments-api-client-secret",
                r.rotations.vault.location,
            ):
                assert fact in shown, (fact, shown[:500])
        expected = [(Verb.ROTATION_APPROVE.value, rotation.id), (Verb.ROTATION_REJECT.value, rotation.id)]
        assert buttons(slack, teams) == (expected, expected)


async def test_buttons_refuse_the_requester_and_move_the_card_for_an_approver() -> None:
    async with chat() as (r, deps):
        requested = await press(deps, Verb.ROTATION_REQUEST, PAYMENTS_APP, REQUESTER)
        assert isinstance(requested, Diagnosis) and requested.rotation is not None
        rotation_id = requested.rotation.id

        refused = await press(deps, Verb.ROTATION_APPROVE, rotation_id, REQUESTER)
        assert isinstance(refused, Notice) and refused.reason is NoticeReason.REFUSED
        assert (await r.rotations.store.get(rotation_id)).state is RotationState.REQUESTED  # type: ignore[union-attr]

        approved = await press(deps, Verb.ROTATION_APPROVE, rotation_id, APPROVER_TEAMS)
        assert isinstance(approved, Diagnosis) and approved.rotation is not None
        slack, teams, text = rendered(approved)
        assert "approved by Lena Fischer" in text and buttons(slack, teams) == ([], [])

        again = await press(deps, Verb.ROTATION_REJECT, rotation_id, APPROVER_TEAMS)
        assert isinstance(again, Notice) and "already decided" in again.text

        done = await r.rotations.advance(rotation_id)
        assert done is not None and done.state is RotationState.DONE
        slack, teams, text = rendered(await _answer_for(done, deps))
        assert f"secret added (hint {done.new_hint}" in text
        assert f"stored in Key Vault payments-api-client-secret version {done.vault_version}" in text
        assert "token proven" in text and "Rotation done" in text
        retire = [(Verb.ROTATION_RETIRE.value, rotation_id)]
        assert buttons(slack, teams) == (retire, retire)
        for shown in (json.dumps(slack), json.dumps(teams), text):
            assert r.vault.versions("payments-api-client-secret")[-1].value not in shown

        retiring = await press(deps, Verb.ROTATION_RETIRE, rotation_id, APPROVER_TEAMS)
        assert isinstance(retiring, Diagnosis) and retiring.rotation is not None
        assert retiring.rotation.state is RotationState.RETIRING


async def test_a_rotate_command_for_an_app_not_set_up_says_what_would_enable_it() -> None:
    async with chat() as (_r, deps):
        answer = await answer_asked(await read(f"rotate {BUILD_AGENT_APP}"), deps, REQUESTER, "C0")
        assert answer.rotation is None and answer.command is not None
        assert "secretbot:rotate" in answer.command.title
        bad = await answer_asked(await read("rotate something"), deps, REQUESTER, "C0")
        assert bad.command is not None and "rotate <app id>" in bad.command.title


async def test_diagnosis_cards_offer_rotation_where_it_helps_and_say_why_not_elsewhere() -> None:
    async with chat() as (_r, deps):
        offered = await answer_asked(await read(SAMPLE["expired_secret_in_use"]), deps, REQUESTER, "C0")
        slack, teams, _text = rendered(offered)
        assert (Verb.ROTATION_REQUEST.value, PAYMENTS_APP) in buttons(slack, teams)[0]
        assert (Verb.ROTATION_REQUEST.value, PAYMENTS_APP) in buttons(slack, teams)[1]

        mismatch = await answer_asked(await read(SAMPLE["secret_mismatch"]), deps, REQUESTER, "C0")
        assert mismatch.rotation_offer is None  # a wrong secret in the client is not fixed by a new one

    async with chat(with_rotation=False) as (_r, deps):
        elsewhere = await answer_asked(await read(SAMPLE["expired_secret_in_use"]), deps, REQUESTER, "C0")
        slack, teams, _text = rendered(elsewhere)
        assert not [b for b in buttons(slack, teams)[0] if b[0] == Verb.ROTATION_REQUEST.value]
        assert "KEYVAULT_URL" in json.dumps(slack) and "KEYVAULT_URL" in json.dumps(teams)
        answer = await press(deps, Verb.ROTATION_REQUEST, PAYMENTS_APP, REQUESTER)
        assert isinstance(answer, Notice) and answer.reason is NoticeReason.NOT_SET_UP


async def _answer_for(rotation: Any, deps: Deps) -> Diagnosis:
    from handlers.rotation_actions import rotation_answer

    return await rotation_answer(rotation, deps)


async def test_request_rotation_on_an_expiry_warning_opens_the_real_flow_for_its_secret() -> None:
    from datetime import UTC, datetime, timedelta

    from bot.domain import CredentialKind, ExpiryState, InventoryCredential, ObjectType, ScannedCredential
    from bot.expiry import Destination, Digest, Platform, WarningRow

    ends = datetime.now(UTC) + timedelta(days=10)
    credential = InventoryCredential(
        ObjectType.APPLICATION,
        PAYMENTS_APP,
        "ec7ac8ad-1b2b-406b-aae1-2c972399d29d",
        "payments-api",
        CredentialKind.SECRET,
        "62f746b4-84e6-4ceb-95bd-447e7184d454",
        "ci-2025",
        "7Rm",
        None,
        ends,
    )
    row = WarningRow(ScannedCredential(credential, 10, ExpiryState.EXPIRING, 14), 14, Problem.ROTATION_NEEDED)
    digest = Digest("dg-rotate-1", Destination(Platform.SLACK, "C0PAYMENTS"), datetime.now(UTC), (row,))
    async with chat() as (_r, deps):
        await deps.state.warnings.save_digest(digest)
        answer = await press(deps, Verb.ROTATION_REQUEST, digest.id, REQUESTER)
        assert isinstance(answer, Diagnosis) and answer.rotation is not None
        assert answer.rotation.app_id == PAYMENTS_APP and "expiry warning: secret ci-2025" in answer.rotation.reason
        too_old = await press(deps, Verb.ROTATION_REQUEST, "dg-gone", REQUESTER)
        assert isinstance(too_old, Notice) and too_old.reason is NoticeReason.EXPIRED
