"""Pathological pastes and tenants still give cards within every Slack and Teams limit, and the cards
say in words how much they leave out.

Each case goes through the real `diagnose` with the fake Graph (the real msgraph-sdk against a local
Graph-shaped server) on a tenant snapshot built here: 250 distinct codes in one paste, 200 app ids,
an app with 100 secrets, and names thousands of characters long.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest

from bot.domain import Cause, Diagnosis, Finding, GraphMode, Severity
from bot.fakegraph import FakeGraph, LocalTokenCredential, parse_snapshot
from bot.fakegraph.samples import sample_reference_time
from bot.graph import GraphDirectory, GraphHttp
from cards.adaptive import render_adaptive
from cards.blockkit import render_blockkit
from handlers.diagnose import diagnose
from tests.cardcheck import adaptive_problems, blockkit_problems, js_events, size_figures, slack_text_objects, texts
from tests.test_cards_hostile import hostile_diagnosis

Json = dict[str, Any]

NOW = sample_reference_time()
TENANT = "4f3c1a9e-8b2d-4c6f-9a1e-2b7d5c8e0f13"
CROWDED_APP = "aa000000-0000-4000-8000-000000000100"  # 100 secrets
LONG_APP = "bb000000-0000-4000-8000-000000000001"  # names of thousands of characters
LONG_NAME = "payments reconciliation worker " * 160  # 4,960 characters, with spaces
LONG_WORD = "W" * 5000  # one word: nowhere to cut but inside it
CODES = [7000215, 7000222, *range(9_100_000, 9_100_248)]  # two the catalog knows, 248 it does not


def _iso(days: float) -> str:
    return (NOW + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _secret(number: int, name: str) -> Json:
    expired = number % 3 == 0
    return {
        "keyId": f"cc000000-0000-4000-8000-{number:012d}",
        "displayName": name,
        "hint": f"h{number:02d}"[:3],
        "startDateTime": _iso(-400 if expired else -30),
        "endDateTime": _iso(-10 - number if expired else 40 + number),
        "secretText": None,
        "customKeyIdentifier": None,
    }


def _app(app_id: str, name: str, secrets: list[Json]) -> Json:
    return {
        "id": app_id.replace("aa", "ee", 1).replace("bb", "ff", 1),
        "appId": app_id,
        "displayName": name,
        "signInAudience": "AzureADMyOrg",
        "passwordCredentials": secrets,
        "keyCredentials": [],
    }


def tenant_snapshot() -> Json:
    """Graph's own shapes: one app with 100 secrets, one whose app and secret names are huge."""
    crowded = _app(CROWDED_APP, "crowded-app", [_secret(n, f"ci-secret-{n}") for n in range(100)])
    long_names = [_secret(n, LONG_WORD if n % 2 else LONG_NAME) for n in range(12)]
    return {
        "tenant": {"id": TENANT, "defaultDomain": "contoso.example", "domains": ["contoso.example"]},
        "applications": [crowded, _app(LONG_APP, LONG_NAME + LONG_WORD, long_names)],
    }


PASTES = {
    "250-codes": " ".join(f"AADSTS{code}: the request failed." for code in CODES) + f" client_id={CROWDED_APP}",
    "200-app-ids": "\n".join(
        f"AADSTS7000215: Invalid client secret provided for app '{n:08x}-0000-4000-8000-000000000000'."
        for n in range(200)
    ),
    "100-secrets-wrong": f"AADSTS7000215: Invalid client secret provided for app '{CROWDED_APP}'.",
    "100-secrets-expired": f"AADSTS7000222: The provided client secret keys for app '{CROWDED_APP}' are expired.",
    "long-names": f"AADSTS7000222: The provided client secret keys for app '{LONG_APP}' are expired.",
}


@dataclass(frozen=True)
class Case:
    diagnosis: Diagnosis
    adaptive: Json
    blockkit: Json


async def _diagnose_all() -> dict[str, Diagnosis]:
    async with (
        FakeGraph(parse_snapshot(tenant_snapshot())) as graph,
        GraphHttp(graph.base_url, LocalTokenCredential()) as http,
    ):
        directory = GraphDirectory(http, GraphMode.SNAPSHOT, max_retries=2, retry_delay=0.1)
        return {name: await diagnose(text, directory=directory, now=NOW) for name, text in PASTES.items()}


@pytest.fixture(scope="module")
def cases() -> dict[str, Case]:
    diagnoses = asyncio.run(_diagnose_all())
    return {name: Case(d, render_adaptive(d), render_blockkit(d)) for name, d in diagnoses.items()}


def teams_texts(card: Json) -> str:
    return "\n".join(texts(card))


def slack_texts(message: Json) -> str:
    return "\n".join(node["text"] for node in slack_text_objects(message))


@pytest.mark.parametrize("name", list(PASTES))
def test_the_slack_message_keeps_every_limit(cases: dict[str, Case], name: str) -> None:
    assert blockkit_problems(cases[name].blockkit) == []


@pytest.mark.parametrize("name", list(PASTES))
def test_the_teams_card_keeps_every_limit(cases: dict[str, Case], name: str) -> None:
    assert adaptive_problems(cases[name].adaptive) == []


def test_microsofts_renderer_accepts_every_card(cases: dict[str, Case]) -> None:
    assert js_events([case.adaptive for case in cases.values()]) == [[] for _ in cases]


def test_250_codes_name_four_and_count_the_rest(cases: dict[str, Case]) -> None:
    case = cases["250-codes"]
    assert len(case.diagnosis.input.codes) == 250 and case.diagnosis.app is not None
    for shown in (teams_texts(case.adaptive), slack_texts(case.blockkit)):
        assert "AADSTS7000215, AADSTS7000222, AADSTS9100000, AADSTS9100001 and 246 more codes" in shown
        assert "AADSTS9100247" not in shown
    # 248 codes are unknown, one finding each: the card shows a few and counts the others. Slack shows
    # five; the Teams card of this app (100 secrets) is too big for 28 KB in full, so it shows fewer.
    assert "and 244 more findings" in slack_texts(case.blockkit)
    counted = re.search(r"and (\d+) more findings", teams_texts(case.adaptive))
    assert counted and 244 <= int(counted.group(1)) < 248


def test_200_app_ids_diagnose_the_first_and_stay_within_limits(cases: dict[str, Case]) -> None:
    case = cases["200-app-ids"]
    assert case.diagnosis.input.app_id == "00000000-0000-4000-8000-000000000000"
    assert len(json.dumps(case.blockkit)) < 5000, "the other 199 ids are not copied onto the card"


@pytest.mark.parametrize("name", ["100-secrets-wrong", "100-secrets-expired"])
def test_100_secrets_show_ten_and_count_ninety(cases: dict[str, Case], name: str) -> None:
    case = cases[name]
    assert case.diagnosis.app is not None and len(case.diagnosis.app.credentials) == 100
    assert "and 90 more credentials" in teams_texts(case.adaptive)
    assert "and 90 more credentials" in slack_texts(case.blockkit)


def test_long_names_are_cut_at_a_word_with_a_mark(cases: dict[str, Case]) -> None:
    case = cases["long-names"]
    shown = texts(case.adaptive) + [node["text"] for node in slack_text_objects(case.blockkit)]
    assert any("payments reconciliation worker" in text for text in shown)
    assert not any(LONG_NAME.strip() in text or LONG_WORD in text for text in shown), "long names are shortened"
    cut_words = {word for text in shown for word in re.findall(r"([a-z]+)…", text)}
    # A name with spaces is cut after a whole word; only a name that is one long word is cut inside it.
    assert cut_words and cut_words <= {"payments", "reconciliation", "worker"}
    assert any(re.search(r"W…", text) for text in shown), "the 5000-letter word is cut, and marked"


def test_the_size_figures_stay_under_the_limits(cases: dict[str, Case]) -> None:
    print(size_figures({name: (case.adaptive, case.blockkit) for name, case in cases.items()}))


def overflowing_diagnosis() -> Diagnosis:
    """Every list past its cap and every text as long as it gets, in characters that take 4 bytes."""
    name = "\U0001f525" * 5000
    base = hostile_diagnosis(name, credentials=40)
    primary = Finding(Cause.EXPIRED_SECRET_IN_USE, Severity.ERROR, name, evidence=(name,) * 20, fix=(name,) * 20)
    others = tuple(Finding(cause, Severity.WARNING, name, evidence=(name,)) for cause in list(Cause)[2:14])
    return replace(base, findings=(primary, *others), input=replace(base.input, codes=tuple(CODES)))


def test_the_largest_possible_answer_still_fits_both_platforms() -> None:
    diagnosis = overflowing_diagnosis()
    card, message = render_adaptive(diagnosis), render_blockkit(diagnosis)
    assert adaptive_problems(card) == []
    assert blockkit_problems(message) == []
    for shown in (teams_texts(card), slack_texts(message)):
        for noun in ("pieces of evidence", "steps", "findings", "credentials", "codes"):
            assert re.search(rf"and \d+ more {noun}", shown), noun


def test_a_footer_full_of_characters_slack_escapes_stays_within_limits() -> None:
    """Graph's refusal is quoted in the footer; escaping & < > can make it five times longer."""
    base = hostile_diagnosis("payments-api")
    unavailable = replace(base, found_in=None, app=None, notes=("&<>" * 5000,))
    message = render_blockkit(unavailable)
    assert blockkit_problems(message) == []
    footer = message["blocks"][-1]["elements"][0]["text"]
    assert footer.startswith("Checked the error text only: &amp;&lt;&gt;") and footer.endswith("…")
