"""Warning digests as cards: valid for Teams (Microsoft's strict 1.5 schema and renderer) and Slack
(slack_sdk and Slack's limits) in every state, a 500-row digest included, and saying what each row's
problem is, whom it concerns and what to do."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from bot.domain import CredentialKind, ObjectType, Owner, Verb
from bot.expiry import Destination, Digest, Outcome, Platform, Problem, RotationPointer, Snooze, Stamp
from cards.digest_adaptive import digest_adaptive, render_digest_adaptive
from cards.digest_blockkit import digest_blockkit, render_digest_blockkit
from cards.digest_text import render_digest_text
from cards.digest_view import digest_view
from handlers.expiry import ordered, warning_row
from tests.cardcheck import adaptive_problems, blockkit_problems, js_events, slack_text_objects, texts
from tests.warning_fixtures import ALICE, BOB, NO_CHAT, NOW, credential, judge

Json = dict[str, Any]
SLACK = Destination(Platform.SLACK, "C0PAYMENTS")
DAY = timedelta(days=1)


def _digest_of(credentials: list[Any], last_used: dict[str, Any] | None = None, **fields: Any) -> Digest:
    rows = judge(credentials, NOW, last_used=last_used)
    warned = [
        warning_row(
            r,
            0 if (r.days_left or 0) < 0 else 30,
            [s for s in rows if s.credential.object_id == r.credential.object_id],
            NOW,
        )
        for r in rows
        if r.days_left is not None and r.days_left <= 30
    ]
    return Digest("dg_Example1234567890", SLACK, NOW, ordered(warned), **fields)


def every_problem() -> Digest:
    rotate = credential("payments-api", NOW + 5 * DAY, app=1, owners=(ALICE, NO_CHAT))
    old = credential("billing-worker", NOW + 12 * DAY, app=2, owners=(BOB,))
    new = credential("billing-worker", NOW + 400 * DAY, app=2, number=2, start=NOW - DAY)
    only = credential("legacy-sync", NOW - 3 * DAY, app=3, owners=())
    replaced_old = credential("hr-portal", NOW - 2 * DAY, app=4)
    replaced_new = credential("hr-portal", NOW + 300 * DAY, app=4, number=2, start=NOW - 10 * DAY)
    unused = credential("reports-export", NOW - 40 * DAY, app=5)
    other_valid_cert = credential("crm-connector", NOW + 200 * DAY, app=6, kind=CredentialKind.CERTIFICATE)
    expired_secret = credential("crm-connector", NOW - 1 * DAY, app=6, number=2)
    saml = credential(
        "Contoso SSO", NOW + 20 * DAY, app=7, kind=CredentialKind.CERTIFICATE, object_type=ObjectType.SERVICE_PRINCIPAL
    )
    saml = replace(saml, usage="Sign")
    creds = [rotate, old, new, only, replaced_old, replaced_new, unused, other_valid_cert, expired_secret, saml]
    return _digest_of(
        creds,
        last_used={old.key_id: NOW - 2 * DAY, unused.key_id: NOW - 41 * DAY},
        slack_users=(("alice@contoso.example", "U0ALICE"), ("bob@contoso.example", "U0BOB")),
    )


def many(count: int) -> Digest:
    owners = (ALICE, BOB, NO_CHAT, Owner("Dan", "dan@contoso.example", None, "0d000000-0000-4000-8000-000000000004"))
    creds = [
        credential(
            f"app-{n:04d} with a fairly long display name for {n}", NOW + (n % 40 - 9) * DAY, app=n, owners=owners * 2
        )
        for n in range(count)
    ]
    return _digest_of(creds, slack_users=(("alice@contoso.example", "U0ALICE"),))


HOSTILE = "<!channel> *bold* [click](https://evil.example) <@U0EVIL> & </at> " + "x" * 4000


def hostile() -> Digest:
    evil_owner = Owner(
        "<at>Mallory</at> [x](https://evil.example)",
        None,
        "mallory@evil.example",
        "0e000000-0000-4000-8000-000000000005",
    )
    creds = [credential(HOSTILE, NOW + 3 * DAY, app=n, owners=(evil_owner,) * 9) for n in range(12)]
    return _digest_of(creds)


def requested(count: int, by: str = "Jonas Berg") -> tuple[RotationPointer, ...]:
    """Rotations requested from a warning, `count` of them, a minute apart (request ids as the flow makes)."""
    return tuple(
        RotationPointer(f"{n:016x}", "payments-api", by, NOW + timedelta(minutes=n)) for n in range(1, count + 1)
    )


def cases() -> dict[str, Digest]:
    base = every_problem()
    some_resolved = replace(
        base, rows=tuple(replace(r, outcome=Outcome.REPLACED) if i % 2 else r for i, r in enumerate(base.rows))
    )
    return {
        "every problem": base,
        "acknowledged": replace(base, acknowledged=Stamp("Alice Example", NOW + timedelta(hours=2))),
        "snoozed": replace(base, snoozed=Snooze(NOW + 7 * DAY, Stamp("Bob Example", NOW + timedelta(hours=1)))),
        "partly resolved": some_resolved,
        "all resolved": replace(base, rows=tuple(replace(r, outcome=Outcome.REMOVED) for r in base.rows)),
        "500 rows": many(500),
        "hostile names": hostile(),
        "one row": many(1),
        "rotation requested": replace(base, rotations=requested(2)),
        "500 rows and rotations requested": replace(many(500), rotations=requested(7, HOSTILE)),
    }


CASES = cases()


@pytest.fixture(scope="module")
def rendered() -> dict[str, tuple[Json, Json, str]]:
    return {
        name: (render_digest_adaptive(d), render_digest_blockkit(d), render_digest_text(d)) for name, d in CASES.items()
    }


def slack_text(message: Json) -> str:
    return "\n".join(node["text"] for node in slack_text_objects(message))


def teams_text(card: Json) -> str:
    return "\n".join(texts(card["body"]))


@pytest.mark.parametrize("name", list(CASES))
def test_the_slack_digest_passes_slack_sdk_and_the_limits(
    rendered: dict[str, tuple[Json, Json, str]], name: str
) -> None:
    assert blockkit_problems(rendered[name][1]) == []


@pytest.mark.parametrize("name", list(CASES))
def test_the_teams_digest_passes_our_checks_and_the_schema(
    rendered: dict[str, tuple[Json, Json, str]], name: str
) -> None:
    assert adaptive_problems(rendered[name][0]) == []


def test_microsofts_renderer_accepts_every_digest(rendered: dict[str, tuple[Json, Json, str]]) -> None:
    cards = [adaptive for adaptive, _, _ in rendered.values()]
    assert js_events(cards) == [[] for _ in cards]


def test_500_rows_show_ten_and_say_how_to_see_the_rest(rendered: dict[str, tuple[Json, Json, str]]) -> None:
    adaptive, blockkit, text = rendered["500 rows"]
    assert len(blockkit["blocks"]) <= 50
    for words in (slack_text(blockkit), teams_text(adaptive)):
        assert "and 490 more credentials" in words and "secretbot scan" in words
    assert len(re.findall(r"^[✖⚠•✔] app-", text, re.MULTILINE)) == 500  # the text report lists every row


def test_each_problem_is_named_with_what_to_do(rendered: dict[str, tuple[Json, Json, str]]) -> None:
    digest = CASES["every problem"]
    assert {row.problem for row in digest.rows} == set(Problem)
    adaptive, blockkit, _ = rendered["every problem"]
    for words in (slack_text(blockkit), teams_text(adaptive)):
        assert "Expires in 5 days, no replacement" in words and "Rotation needed" in words
        assert "Expires in 12 days, but a newer secret ('billing-worker secret 2') outlives it" in words
        assert "last used 2 days ago" in words  # already rotated: is the old one still in use?
        assert "Expired 3 days ago, still the only credential" in words
        assert "Expired and unused for 41 days" in words
        assert "Expired 2 days ago; a newer secret ('hr-portal secret 2') replaced it" in words
        assert "Expired 1 day ago" in words and "Other credentials of this app are still valid" in words
        assert "certificate 'Contoso SSO certificate 1' (SAML signing) of the enterprise app" in words


def test_the_most_urgent_rows_come_first() -> None:
    problems = [row.problem for row in CASES["every problem"].rows]
    assert problems[0] is Problem.EXPIRED_ONLY and problems[-1] is Problem.EXPIRED_UNUSED
    assert problems.index(Problem.ROTATION_NEEDED) < problems.index(Problem.ROTATED)


def test_owners_are_mentioned_natively_or_named(rendered: dict[str, tuple[Json, Json, str]]) -> None:
    adaptive, blockkit, _ = rendered["every problem"]
    slack = slack_text(blockkit)
    assert "<@U0ALICE>" in slack and "<@U0BOB>" in slack
    assert "Carol Contractor" in slack and "<@" not in slack.split("Carol Contractor")[0][-3:]  # no Slack account
    entities = adaptive["msteams"]["entities"]
    assert {
        "type": "mention",
        "text": "<at>Alice Example</at>",
        "mentioned": {"id": ALICE.object_id, "name": "Alice Example"},
    } in entities
    body = json.dumps(adaptive["body"])
    for entity in entities:
        assert entity["text"] in body  # every mention entity is used in the text, as Teams requires
    assert "Carol Contractor" in body and "<at>Carol Contractor</at>" not in body  # no object id: plain text


def test_ownerless_apps_are_called_out(rendered: dict[str, tuple[Json, Json, str]]) -> None:
    adaptive, blockkit, text = rendered["every problem"]
    for words in (slack_text(blockkit), teams_text(adaptive), text):
        assert "1 app in this warning has no owner" in words and "No owner: nobody is accountable" in words


def test_buttons_carry_the_digest_id_and_the_shared_verbs(rendered: dict[str, tuple[Json, Json, str]]) -> None:
    adaptive, blockkit, _ = rendered["every problem"]
    expected = [
        Verb.EXPIRY_ACK,
        Verb.EXPIRY_RECHECK,
        Verb.EXPIRY_SNOOZE_DAY,
        Verb.EXPIRY_SNOOZE_WEEK,
        Verb.ROTATION_REQUEST,
    ]
    actions = next(b for b in blockkit["blocks"] if b["type"] == "actions")["elements"]
    assert [(a["action_id"], a["value"]) for a in actions] == [(v.value, "dg_Example1234567890") for v in expected]
    assert [(a["verb"], a["data"]) for a in teams_actions(adaptive)] == [
        (v.value, {"id": "dg_Example1234567890"}) for v in expected
    ]


def test_an_acknowledged_digest_says_who_and_when_and_drops_its_buttons(
    rendered: dict[str, tuple[Json, Json, str]],
) -> None:
    adaptive, blockkit, _ = rendered["acknowledged"]
    line = "Acknowledged by Alice Example at 2026-11-20 09:00 UTC."
    assert line in slack_text(blockkit) and line in teams_text(adaptive)
    assert [a["verb"] for a in teams_actions(adaptive)] == [Verb.EXPIRY_RECHECK, Verb.ROTATION_REQUEST]


def test_a_snoozed_digest_says_until_when(rendered: dict[str, tuple[Json, Json, str]]) -> None:
    adaptive, blockkit, _ = rendered["snoozed"]
    line = "Snoozed until 2026-11-27 07:00 UTC by Bob Example"
    assert line in slack_text(blockkit) and line in teams_text(adaptive)


def test_resolved_rows_say_so_and_a_resolved_digest_offers_nothing(rendered: dict[str, tuple[Json, Json, str]]) -> None:
    adaptive, blockkit, _ = rendered["partly resolved"]
    assert "Replaced since this warning" in slack_text(blockkit) and "resolved since" in teams_text(adaptive)
    adaptive, blockkit, _ = rendered["all resolved"]
    assert not teams_actions(adaptive) and not [b for b in blockkit["blocks"] if b["type"] == "actions"]
    assert len(CASES["all resolved"].rows) == 7
    assert "Resolved: 7 credentials from this warning no longer need attention" in teams_text(adaptive)
    assert slack_text(blockkit).count("Removed since this warning") == 7


def test_hostile_names_stay_text(rendered: dict[str, tuple[Json, Json, str]]) -> None:
    adaptive, blockkit, _ = rendered["hostile names"]
    for node in slack_text_objects(blockkit):
        if node["type"] == "mrkdwn":
            assert "<!channel>" not in node["text"] and "<@U0EVIL>" not in node["text"]
            assert "<https://evil" not in node["text"]
    owners = [b["text"] for b in _walk(adaptive["body"]) if b.get("type") == "TextBlock" and "Owners" in b["text"]]
    assert owners
    for text in owners:  # one mention per owner shown (5 of 9), nothing else that markdown would read
        assert "](" not in text and text.count("<at>") == text.count("</at>") == 5
    assert all(e["text"].count("<at>") == 1 for e in adaptive["msteams"]["entities"])


def teams_actions(card: Json) -> list[Json]:
    return [node for node in _walk(card) if str(node.get("type", "")).startswith("Action.")]


def _walk(node: Any) -> list[Json]:
    if isinstance(node, list):
        return [found for item in node for found in _walk(item)]
    if not isinstance(node, dict):
        return []
    return [node] + [found for value in node.values() for found in _walk(value)]


def test_rows_too_long_for_one_message_are_dropped_and_counted() -> None:
    view = digest_view(CASES["500 rows"])
    wordy = replace(view, lines=tuple(replace(line, todo="word " * 500) for line in view.lines))
    message = digest_blockkit(wordy)
    assert blockkit_problems(message) == []
    shown = sum(1 for b in message["blocks"] if b["type"] == "section" and "app-" in b["text"]["text"])
    assert 1 <= shown < 10
    assert f"and {490 + 10 - shown} more credentials" in slack_text(message)
    card = digest_adaptive(wordy)
    assert adaptive_problems(card) == []
    rows = sum(1 for node in _walk(card["body"]) if node.get("type") == "Container" and node.get("separator"))
    assert 1 <= rows < 10 and f"and {490 + 10 - rows} more credentials" in teams_text(card)


def test_request_rotation_follows_what_was_checked_when_the_digest_was_prepared() -> None:
    digest = every_problem()
    needing = [r for r in digest.rows if r.problem in (Problem.ROTATION_NEEDED, Problem.EXPIRED_ONLY)]
    app_id = next(r.credential.app_id for r in needing if r.credential.kind is CredentialKind.SECRET)
    why = "payments-api is not set up for rotation by the bot. To enable it, add the tag `secretbot:rotate`."

    def verbs(checked: Digest) -> list[str]:
        return [a["verb"] for a in teams_actions(render_digest_adaptive(checked))]

    assert Verb.ROTATION_REQUEST in verbs(digest)  # not checked (posted without rotation wired): the click checks
    refused = replace(digest, rotatable=(), rotation_note=why)
    assert Verb.ROTATION_REQUEST not in verbs(refused)
    assert why in slack_text(render_digest_blockkit(refused)) and why in render_digest_text(refused)
    allowed = replace(digest, rotatable=(app_id.upper(),), rotation_note=None)
    assert Verb.ROTATION_REQUEST in verbs(allowed)
    assert why not in slack_text(render_digest_blockkit(allowed))


def test_a_warning_points_at_each_rotation_requested_from_it(rendered: dict[str, tuple[Json, Json, str]]) -> None:
    adaptive, blockkit, text = rendered["rotation requested"]
    for words, where in (
        (slack_text(blockkit), "see the thread"),
        (teams_text(adaptive), "see the request message below"),
        (text, "see the request card"),
    ):
        for request_id in ("0000000000000001", "0000000000000002"):
            line = f"Rotation requested by Jonas Berg for payments-api, request {request_id}: {where}."
            assert words.count(line) == 1, (line, words)
        assert words.index("Rotation requested by") > words.index("Expires in 5 days, no replacement")  # below the rows
    assert Verb.ROTATION_REQUEST in [a["verb"] for a in teams_actions(adaptive)]  # another may still be asked
    assert "Rotation requested by" not in slack_text(rendered["every problem"][1])


def test_many_requests_name_the_latest_and_count_the_rest(rendered: dict[str, tuple[Json, Json, str]]) -> None:
    adaptive, blockkit, text = rendered["500 rows and rotations requested"]
    for words in (slack_text(blockkit), teams_text(adaptive), text):
        assert words.count("Rotation requested by") == 5 and "request 0000000000000007" in words
        assert "request 0000000000000002" not in words and "2 earlier rotation requests from this warning" in words
    for node in slack_text_objects(blockkit):  # a requester's name is text: never a mention or a link
        if node["type"] == "mrkdwn":
            assert "<!channel>" not in node["text"] and "<@U0EVIL>" not in node["text"]
