"""Saying "hi" or "help" gets the welcome on every surface; a real paste with nothing recognisable in it
gets its own answer that says so.

Through the public surfaces: the conversation handler (what every chat adapter calls) with the Teams,
Slack and text renderers, and the `secretbot diagnose` command. The Slack and Teams wires are covered in
tests/test_slack.py and tests/test_teams.py.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from typing import Any

import pytest

from bot.domain import Diagnosis
from bot.fakegraph.samples import sample_errors, sample_reference_time
from bot.pictures import diagnosis_cards
from bot.settings import Settings
from cards.adaptive import render_adaptive
from cards.blockkit import render_blockkit
from cards.text import render_text
from cards.view import NOTHING_TITLE
from cards.welcome import HELP_TITLE
from handlers.conversation import reply
from tests.cardcheck import adaptive_problems, blockkit_problems, js_events, slack_text_objects, strings, texts

NOW = sample_reference_time()
HELP_WORDS = ["hi", "help", "Hello!", "HELP", "  ?  ", "", "/help"]
NOT_HELP = ["the nightly build is red again, any idea?", "help, my build is red", "hi there, it fails"]
SECTIONS = ["What I do", "What to paste", "For example", "Your secrets", "Where to find me"]


def answer(text: str) -> Diagnosis:
    return asyncio.run(reply(text, directory=None, now=NOW))


def teams_text(card: dict[str, Any]) -> str:
    return "\n".join(texts(card))


def slack_text(message: dict[str, Any]) -> str:
    return "\n".join(node["text"] for node in slack_text_objects(message))


def in_order(shown: str, parts: list[str]) -> bool:
    positions = [shown.find(part) for part in parts]
    return -1 not in positions and positions == sorted(positions)


@pytest.mark.parametrize("text", HELP_WORDS)
def test_greetings_and_help_get_the_welcome(text: str) -> None:
    diagnosis = answer(text)
    assert diagnosis.asked_for_help
    for shown in (
        teams_text(render_adaptive(diagnosis)),
        slack_text(render_blockkit(diagnosis)),
        render_text(diagnosis),
    ):
        assert HELP_TITLE in shown and NOTHING_TITLE not in shown
        assert in_order(shown, SECTIONS)
        # What to paste: an error, a log, an app id; then examples, the full error first, a bare id last.
        assert in_order(shown, ["The error message", "A log or stack trace", "application (client) id"])
        bare_id = re.search(r"^\s*(?:```)?(?:<|&lt;)application id(?:>|&gt;)(?:```)?$", shown, re.MULTILINE)
        assert bare_id and 0 <= shown.find("AADSTS7000215: Invalid") < shown.find("AADSTS7000222:") < bare_id.start()
        assert "Never paste a secret's value" in shown
        assert "/secretbot" in shown and "@secretbot in a channel" in shown


@pytest.mark.parametrize("text", NOT_HELP)
def test_a_paste_with_nothing_recognisable_says_so_instead(text: str) -> None:
    diagnosis = answer(text)
    assert not diagnosis.asked_for_help and not diagnosis.input.recognised
    card, message = render_adaptive(diagnosis), render_blockkit(diagnosis)
    for shown in (teams_text(card), slack_text(message)):
        assert NOTHING_TITLE in shown and HELP_TITLE not in shown
        assert in_order(shown, ["What I read", "For example", "AADSTS7000215"])  # the heading, then the example
    assert "could not find an Entra ID error" in render_text(diagnosis)


def test_an_error_that_starts_with_hi_is_diagnosed() -> None:
    paste = "hi, " + next(s.text for s in sample_errors() if s.cause == "expired_secret_in_use")
    diagnosis = answer(paste)
    assert not diagnosis.asked_for_help and diagnosis.errors


@pytest.mark.parametrize("text", ["help", "the nightly build is red again"])
def test_the_welcome_and_nothing_cards_are_valid(text: str) -> None:
    diagnosis = answer(text)
    assert adaptive_problems(render_adaptive(diagnosis)) == []
    assert blockkit_problems(render_blockkit(diagnosis)) == []


def test_microsofts_renderer_accepts_the_welcome_and_nothing_cards() -> None:
    cards = [render_adaptive(answer(text)) for text in ("help", "the nightly build is red again")]
    assert js_events(cards) == [[], []]


def test_examples_are_shown_as_typed() -> None:
    """Teams: a monospace TextRun (never markdown); Slack: an escaped code block, shown as typed."""
    diagnosis = answer("help")
    runs = [node for node in _dicts(render_adaptive(diagnosis)) if node.get("fontType") == "Monospace"]
    assert [run["type"] for run in runs] == ["TextRun"] * 3
    assert runs[-1]["text"] == "<application id>"
    code = [n["text"] for n in slack_text_objects(render_blockkit(diagnosis)) if n["text"].startswith("```")]
    assert code[-1] == "```&lt;application id&gt;```"
    assert all(
        key != "text" or "<application id>" not in value for _, key, value in strings(render_blockkit(diagnosis))
    )


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def test_cli_help_and_an_empty_paste_print_the_welcome() -> None:
    for result in (run("diagnose", "help"), run("diagnose", stdin="")):
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(HELP_TITLE)
        assert in_order(result.stdout, [f"{heading}:\n" for heading in SECTIONS])
        assert "secretbot diagnose" in result.stdout


def test_cli_nothing_recognised_is_not_the_welcome() -> None:
    result = run("diagnose", stdin="the nightly build is red again")
    assert result.returncode == 0
    assert "could not find an Entra ID error" in result.stdout and HELP_TITLE not in result.stdout


def _dicts(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        return [node, *(found for value in node.values() for found in _dicts(value))]
    if isinstance(node, list):
        return [found for value in node for found in _dicts(value)]
    return []


def test_the_card_pictures_draw_the_welcome_for_help() -> None:
    cards = asyncio.run(
        diagnosis_cards(
            {"help": "help", "junk": "no error here"},
            snapshot="sample",
            now=sample_reference_time(),
            settings=Settings.from_env({}),
        )
    )
    assert HELP_TITLE in str(cards["help"]) and NOTHING_TITLE not in str(cards["help"])
    assert NOTHING_TITLE in str(cards["junk"])
