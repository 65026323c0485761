"""Every card the sample tenant can produce is valid for Teams and Slack, and says what it should.

One card per sample error (diagnosed through the fake Graph and the real msgraph-sdk), the
paste-only variant of each, "nothing recognised", a partial answer (no audit-log permission) and a
"Graph unavailable" answer. Each is checked three ways: our Teams checks and Microsoft's strict JSON
schema, Microsoft's own JS renderer with the Teams host config (node runs once for the whole batch),
and slack_sdk plus the Slack limits it does not check. The checks themselves are shown to fail on
broken cards at the end.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from bot import cli
from bot.domain import Cause, Diagnosis, GraphMode
from bot.fakegraph import FakeGraph, LocalTokenCredential, load_snapshot, sample_snapshot_path
from bot.fakegraph.samples import sample_errors, sample_reference_time
from bot.graph import GraphDirectory, GraphHttp
from bot.settings import Settings
from bot.wiring import open_directory
from cards.adaptive import render_adaptive
from cards.blockkit import render_blockkit
from cards.view import CAUSE_NAMES, NOTHING_TITLE
from handlers.diagnose import diagnose, diagnose_parsed
from handlers.recheck import compare, question_of
from tests import cardcheck
from tests.cardcheck import (
    adaptive_problems,
    blockkit_problems,
    js_events,
    size_figures,
    slack_text_objects,
    texts,
)
from tests.tenant_edits import PAYMENTS_APP, add_secret, edited, remove_secret
from tests.tools import REQUIRE_TOOLS

Json = dict[str, Any]

SAMPLES = {sample.cause: sample for sample in sample_errors()}
NOW = sample_reference_time()
LOOKUP = "https://login.microsoftonline.com/error?code={code}"
PARTIAL_SAMPLE = "expired_secret_in_use"  # has sign-in evidence to lose when the audit logs are refused
UNAVAILABLE_SAMPLE = "secret_mismatch"
CASES = [
    *(f"graph-{cause}" for cause in SAMPLES),
    *(f"text-{cause}" for cause in SAMPLES),
    "nothing",
    "partial",
    "graph-unavailable",
    "rechecked",
]


@dataclass(frozen=True)
class Case:
    diagnosis: Diagnosis
    adaptive: Json
    blockkit: Json


async def _diagnose_all() -> dict[str, Diagnosis]:
    results: dict[str, Diagnosis] = {}
    # The same fake tenant as the `sample_tenant` fixture, opened once for the module.
    async with (
        FakeGraph(load_snapshot(sample_snapshot_path())) as graph,
        GraphHttp(graph.base_url, LocalTokenCredential()) as http,
    ):
        directory = GraphDirectory(http, GraphMode.SNAPSHOT, max_retries=2, retry_delay=0.1)
        for cause, sample in SAMPLES.items():
            graph.reset()
            results[f"graph-{cause}"] = await diagnose(sample.text, directory=directory, now=NOW)
        results["rechecked"] = await _rechecked(graph, directory, results[f"graph-{PARTIAL_SAMPLE}"])
        graph.reset()
        graph.add_fault(r"/auditLogs/", 403)
        results["partial"] = await diagnose(SAMPLES[PARTIAL_SAMPLE].text, directory=directory, now=NOW)
        graph.reset()
        graph.add_fault(r"\$batch", 503)
        results["graph-unavailable"] = await diagnose(SAMPLES[UNAVAILABLE_SAMPLE].text, directory=directory, now=NOW)
    for cause, sample in SAMPLES.items():
        results[f"text-{cause}"] = await diagnose(sample.text, directory=None, now=NOW)
    results["nothing"] = await diagnose("hello", directory=None, now=NOW)
    return results


async def _rechecked(graph: FakeGraph, directory: GraphDirectory, first: Diagnosis) -> Diagnosis:
    """Check again after a secret was added and the expired one removed: a card with both changes."""
    start = NOW - timedelta(minutes=3)
    graph.use_snapshot(
        edited(remove_secret(PAYMENTS_APP, "ci-2025"), add_secret(PAYMENTS_APP, "ci-2026b", "Xy7", start, NOW))
    )
    fresh = await diagnose_parsed(first.input, directory=directory, now=NOW, ref=NOW)
    graph.use_snapshot(load_snapshot(sample_snapshot_path()))
    return compare(question_of(first, NOW).first, fresh, NOW)


@pytest.fixture(scope="module")
def cases() -> dict[str, Case]:
    diagnoses = asyncio.run(_diagnose_all())
    assert sorted(diagnoses) == sorted(CASES)
    return {name: Case(d, render_adaptive(d), render_blockkit(d)) for name, d in diagnoses.items()}


@pytest.fixture(scope="module")
def renderer_events(cases: dict[str, Case]) -> dict[str, list[str]]:
    """Microsoft's renderer on every card at once: one node process for the module."""
    names = list(cases)
    return dict(zip(names, js_events([cases[name].adaptive for name in names]), strict=True))


def headline(diagnosis: Diagnosis) -> str:
    """What the card must lead with: the primary cause, else what the code means, else 'nothing found';
    for an app id alone without Graph, that Graph was not asked."""
    if not diagnosis.input.recognised:
        return NOTHING_TITLE
    if diagnosis.primary is not None:
        return diagnosis.primary.summary
    if diagnosis.errors:
        return diagnosis.errors[0].summary
    if diagnosis.graph.mode is GraphMode.NONE:
        return "Graph access is not configured"
    return "Nothing looks wrong"


def slack_block_texts(message: Json) -> list[str]:
    """The text a reader sees in the message body (the `text` fallback is only for notifications)."""
    return [str(node["text"]) for node in slack_text_objects(message)]


def open_urls(card: Json) -> list[str]:
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "Action.OpenUrl":
                found.append(node.get("url", ""))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card)
    return found


# --- validity ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASES)
def test_teams_card_passes_our_checks_and_the_schema(cases: dict[str, Case], name: str) -> None:
    assert adaptive_problems(cases[name].adaptive) == []


@pytest.mark.parametrize("name", CASES)
def test_teams_card_passes_microsofts_renderer(renderer_events: dict[str, list[str]], name: str) -> None:
    assert renderer_events[name] == []


@pytest.mark.parametrize("name", CASES)
def test_slack_message_passes_slack_sdk_and_the_limits(cases: dict[str, Case], name: str) -> None:
    assert blockkit_problems(cases[name].blockkit) == []


# --- content ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASES)
def test_cards_lead_with_the_primary_cause(cases: dict[str, Case], name: str) -> None:
    case = cases[name]
    expected = headline(case.diagnosis)
    assert any(expected in text for text in texts(case.adaptive)), f"Teams card lacks {expected!r}"
    assert any(expected in text for text in slack_block_texts(case.blockkit)), f"Slack blocks lack {expected!r}"


@pytest.mark.parametrize("name", CASES)
def test_cards_link_microsofts_page_for_the_code(cases: dict[str, Case], name: str) -> None:
    case = cases[name]
    codes = case.diagnosis.input.codes
    if not codes:
        assert open_urls(case.adaptive) == []
        return
    url = LOOKUP.format(code=codes[0])
    assert url in open_urls(case.adaptive)
    sections = [
        block["text"]["text"]
        for block in case.blockkit["blocks"]
        if block["type"] == "section" and block.get("text", {}).get("type") == "mrkdwn"
    ]
    link = re.compile(re.escape(f"<{url}|") + r"[^>]+>")
    assert any(link.search(text) for text in sections), f"no mrkdwn section links {url}"


@pytest.mark.parametrize("name", [name for name in CASES if name.startswith("text-")])
def test_text_only_answer_never_says_the_credentials_are_fine(cases: dict[str, Case], name: str) -> None:
    """Without Graph nobody looked at the app's credentials, so the card must not vouch for them."""
    case = cases[name]
    assert case.diagnosis.graph.mode is GraphMode.NONE
    for shown in (texts(case.adaptive), slack_block_texts(case.blockkit)):
        assert not [text for text in shown if "Nothing looks wrong" in text]


def test_partial_answer_names_the_missing_permission(cases: dict[str, Case]) -> None:
    case = cases["partial"]
    assert case.diagnosis.graph.missing_permissions == ("AuditLog.Read.All",)
    assert any("AuditLog.Read.All" in text for text in texts(case.adaptive))
    assert any("AuditLog.Read.All" in text for text in slack_block_texts(case.blockkit))


def test_graph_unavailable_answer_says_it_read_the_text_only(cases: dict[str, Case]) -> None:
    case = cases["graph-unavailable"]
    assert case.diagnosis.app is None and case.diagnosis.notes
    for shown in (texts(case.adaptive), slack_block_texts(case.blockkit)):
        joined = "\n".join(shown)
        assert "error text only" in joined
        assert "503" in joined  # why: Graph's answer, in our words


def test_rechecked_card_says_when_and_what_changed(cases: dict[str, Case]) -> None:
    case = cases["rechecked"]
    for shown in (texts(case.adaptive), slack_block_texts(case.blockkit)):
        assert any("Re-checked 2026-11-20 09:00 UTC" in text for text in shown)
        assert any("What changed" in text for text in shown)
        assert any("Removed: secret 'ci-2025'" in text for text in shown)
        assert any("secret 'ci-2026b'" in text for text in shown)


def test_nothing_recognised_shows_what_to_paste(cases: dict[str, Case]) -> None:
    case = cases["nothing"]
    assert not case.diagnosis.input.recognised
    assert any("AADSTS7000215" in text for text in texts(case.adaptive))
    assert any("AADSTS7000215" in text for text in slack_block_texts(case.blockkit))
    assert open_urls(case.adaptive) == []


def test_card_sizes_stay_under_the_limits(cases: dict[str, Case]) -> None:
    print(size_figures({name: (case.adaptive, case.blockkit) for name, case in cases.items()}))


# --- the CLI prints the same cards ------------------------------------------------------------------


async def _with_sample_snapshot(text: str) -> Diagnosis:
    async with open_directory(Settings.from_env({}), "sample") as directory:
        return await diagnose(text, directory=directory, now=NOW)


@pytest.mark.parametrize(("fmt", "render"), [("adaptive", render_adaptive), ("blockkit", render_blockkit)])
def test_cli_prints_the_rendered_card(
    capsys: pytest.CaptureFixture[str], fmt: str, render: Callable[[Diagnosis], Json]
) -> None:
    text = SAMPLES["expired_secret_in_use"].text
    code = cli.main(["diagnose", "--snapshot", "sample", "--now", NOW.isoformat(), "--format", fmt, text])
    out = capsys.readouterr().out
    assert code == 0
    printed = json.loads(out)
    assert printed == render(asyncio.run(_with_sample_snapshot(text)))
    problems = adaptive_problems(printed) if fmt == "adaptive" else blockkit_problems(printed)
    assert problems == []


# --- the checks can fail ----------------------------------------------------------------------------


def broken_card() -> Json:
    return {
        "type": "AdaptiveCard",
        "version": "1.6",
        "body": [
            {"type": "TextBlock", "text": "hello", "colour": "red"},
            {"type": "Tabel", "rows": []},
            {"type": "ActionSet", "actions": [{"type": "Action.Execute", "title": "Approve"}]},
        ],
        "actions": [{"type": "Action.OpenUrl", "title": f"Link {n}", "url": "https://example.com"} for n in range(7)],
    }


def test_adaptive_checks_report_a_broken_card() -> None:
    problems = "\n".join(adaptive_problems(broken_card()))
    assert "/version: '1.6'" in problems
    assert "/body/0: Additional properties are not allowed ('colour' was unexpected)" in problems
    assert "/body/1: unknown type 'Tabel'" in problems
    assert "8 actions on the card" in problems
    assert "/body/2/actions/0: Action.Execute without a verb" in problems
    assert adaptive_problems(broken_card() | {"msteams": {"width": "Full"}, "version": "1.5"}) != []


def test_adaptive_checks_allow_msteams_but_nothing_else_at_the_root() -> None:
    card = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "ok"}]}
    assert adaptive_problems(card | {"msteams": {"width": "Full"}}) == []
    unknown = "/: Additional properties are not allowed ('slack' was unexpected)"
    assert adaptive_problems(card | {"slack": {}}) == [unknown]


def test_adaptive_checks_report_a_card_too_big_for_teams() -> None:
    card = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "é" * 15_000}]}
    assert [p for p in adaptive_problems(card) if "KB in UTF-16" in p]


def test_microsofts_renderer_reports_a_broken_card() -> None:
    [events, fine] = js_events(
        [broken_card(), {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "ok"}]}]
    )
    assert any("UnknownElementType" in e and "Tabel" in e for e in events), events
    assert any("TooManyActions" in e for e in events), events
    assert fine == []


def test_blockkit_checks_report_a_broken_message() -> None:
    field = {"type": "plain_text", "text": "x" * 2001}
    message = {
        "text": " ",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}},
            {"type": "tabel"},
            {"type": "section", "fields": [field] + [{"type": "plain_text", "text": "f"}] * 10},
            {"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3001}},
            {"type": "context", "elements": [{"type": "plain_text", "text": "c" * 3001}]},
            {"type": "section", "text": {"type": "mrkdwn", "text": "ok"}, "colour": "red"},
            *({"type": "divider"} for _ in range(45)),
        ],
    }
    problems = "\n".join(blockkit_problems(message))
    assert "no top-level 'text'" in problems
    assert "51 blocks" in problems
    assert "/blocks/0/text: header of 151 characters" in problems
    assert "/blocks/1: unknown block type 'tabel'" in problems
    assert "/blocks/2/fields: 11 fields" in problems
    assert "/blocks/2/fields/0: 2001 characters" in problems
    assert "/blocks/3/text: section text of 3001 characters" in problems
    assert "/blocks/4/elements/0: plain_text text of 3001 characters" in problems
    assert "text attribute cannot exceed 3000 characters" in problems  # slack_sdk's own to_dict() check
    assert "/blocks/5 (section): changes in a slack_sdk round trip" in problems  # 'colour' is dropped


def test_blockkit_checks_report_ids_and_values_over_the_limits() -> None:
    button = {
        "type": "button",
        "text": {"type": "plain_text", "text": "Approve"},
        "action_id": "a" * 256,
        "value": "v" * 2001,
    }
    message = {"text": "fallback", "blocks": [{"type": "actions", "block_id": "b" * 256, "elements": [button]}]}
    problems = "\n".join(blockkit_problems(message))
    assert "/blocks/0: block_id of 256 characters" in problems
    assert "/blocks/0/elements/0: action_id of 256 characters" in problems
    assert "/blocks/0/elements/0: button value of 2001 characters" in problems


def test_blockkit_checks_report_a_message_too_long_in_total() -> None:
    long_button = {"type": "button", "text": {"type": "plain_text", "text": "b" * 76}, "action_id": "x", "value": "1"}
    sections = [{"type": "section", "text": {"type": "plain_text", "text": "s" * 2500}} for _ in range(5)]
    message = {"text": "t" * 40_001, "blocks": [*sections, {"type": "actions", "elements": [long_button]}]}
    problems = "\n".join(blockkit_problems(message))
    assert "top-level 'text' of 40001 characters" in problems
    assert "12576 characters of block text" in problems
    assert "/blocks/5/elements/0: button text of 76 characters" in problems


def test_missing_tools_skip_locally_but_fail_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cardcheck.shutil, "which", lambda name: None)
    monkeypatch.delenv(REQUIRE_TOOLS, raising=False)
    with pytest.raises(pytest.skip.Exception, match="node is not installed"):
        js_events([])
    monkeypatch.setenv(REQUIRE_TOOLS, "1")
    with pytest.raises(pytest.fail.Exception, match="SECRETBOT_REQUIRE_TOOLS=1"):
        js_events([])


def test_every_cause_has_a_name_in_words() -> None:
    """The cards' notes and the terminal report name causes from one table; a new cause needs its name."""
    assert set(CAUSE_NAMES) == set(Cause)
    assert all(name[0].isupper() and "_" not in name for name in CAUSE_NAMES.values())
