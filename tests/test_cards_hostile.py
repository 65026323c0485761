"""Hostile text stays text: names and pasted fragments never become mentions, links or markup.

Entra ID lets app owners pick any display name for an app or a secret, and people paste anything.
Such text must reach Teams only as `TextRun`s (never markdown) and Slack only as `plain_text` or
escaped mrkdwn, and long content must still give valid cards within the platforms' limits.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from bot.domain import (
    Application,
    Cause,
    Credential,
    CredentialKind,
    Diagnosis,
    Finding,
    FoundIn,
    GraphMode,
    GraphReport,
    ParsedInput,
    Severity,
)
from bot.fakegraph.samples import sample_errors, sample_reference_time
from cards.adaptive import render_adaptive
from cards.blockkit import render_blockkit
from handlers.catalog import load_catalog
from handlers.diagnose import diagnose
from tests.cardcheck import (
    SLACK_MAX_BLOCKS,
    SLACK_MAX_FIELDS,
    adaptive_problems,
    blockkit_problems,
    js_events,
    size_figures,
    slack_text_objects,
    strings,
)

Json = dict[str, Any]

NOW = sample_reference_time()
APP_ID = "dc36fc90-2248-4d70-aca4-a1a9f5b19f71"
CODE = 7000222
LONG_WORD = "W" * 5000
HOSTILE = {
    "slack-mentions": "<!channel> <!here> <@U024BE7LH> <#C024BE7LR> <https://evil.example|click me>",
    "slack-format": "*bold* _it_ ~strike~ `code` ```block```",
    "markdown": "[click](https://evil.example) ![img](https://evil.example/x.png) **bold** # heading",
    "teams-mention": "<at>Everyone</at>",
    "escaped-html": "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#60;b&#62;",
    "html": "<script>alert(1)</script><img src=x onerror=alert(1)>",
    "template": "${{secrets.X}} ${secrets.Y} {{ x }}",
    "long-word": LONG_WORD,
    "rtl": "invoice\u202egpj.exe\u202c \u200f\u05e9\u05dc\u05d5\u05dd\u200e",  # shows as "invoiceexe.jpg"; Hebrew
    "emoji": "🔥💣 👨\u200d👩\u200d👧 \U0001f1fa\U0001f1f8 :fire:",
    "newlines": "first line\nsecond line\r\n\n# not a heading\n- not a list\n> not a quote",
}
# Characters and words of the hostile strings that our own wording never uses: where one of them
# shows up, hostile text got there. Our mrkdwn uses *bold*, newlines and catalog names such as
# UnauthorizedClient_DoesNotMatchRequest, so Slack's set leaves those out (each hostile string still
# has another giveaway); Teams' TextBlocks use none of them.
_SLACK_TAINT = re.compile(
    r"[<>&~`\[\]${}\u202e\u202c\u200f\u200e🔥💣👨\U0001f1fa]"
    r"|evil\.example|Everyone|W{20}|script|secrets\.|:fire:|not a heading|\b_it_\b"
)
_TEAMS_TAINT = re.compile(rf"{_SLACK_TAINT.pattern}|[*_\n\r]")
_LOOKUP_URL = re.compile(r"https://login\.microsoftonline\.com/error\?code=\d+")
_OUR_LINK = re.compile(r"<https://login\.microsoftonline\.com/error\?code=\d+\|AADSTS\d+>")
_ENTITY = re.compile(r"&(amp|lt|gt);")
_SLACK_SPECIAL = re.compile(r"<[!@#]|<https?:|<mailto:|\|[^>]*>")


def tainted(text: str) -> bool:
    """Hostile text in a Teams string."""
    return bool(_TEAMS_TAINT.search(text))


def slack_tainted(text: str) -> bool:
    """Hostile text in Slack mrkdwn, apart from our own lookup links."""
    return bool(_SLACK_TAINT.search(_OUR_LINK.sub("", text)))


def shown_prefix(hostile: str) -> str:
    """Enough of a hostile string to find it on the card, even where the card clips it."""
    return hostile.split("\n")[0][:30]


# --- diagnoses full of hostile text -----------------------------------------------------------------


def credential(number: int, name: str | None, *, expired: bool = False) -> Credential:
    start = NOW - timedelta(days=400 if expired else 30 + number)
    end = NOW - timedelta(days=35) if expired else NOW + timedelta(days=20 + number)
    return Credential(
        kind=CredentialKind.CERTIFICATE if number % 5 == 4 else CredentialKind.SECRET,
        key_id=f"00000000-0000-4000-8000-{number:012d}",
        display_name=name,
        hint=(name or "abc")[:3],
        start=start,
        end=end,
    )


def hostile_diagnosis(name: str, *, credentials: int = 3) -> Diagnosis:
    """An expired secret in use, where the app, its secrets and the quoted paste all carry `name`."""
    catalog = load_catalog()
    info = catalog.lookup(CODE)
    assert info is not None
    app = Application(
        object_id="11111111-2222-4333-8444-555555555555",
        app_id=APP_ID,
        display_name=name,
        credentials=tuple(credential(n, f"{name} {n}" if n % 2 else name, expired=n == 0) for n in range(credentials)),
    )
    primary = Finding(
        Cause.EXPIRED_SECRET_IN_USE,
        Severity.ERROR,
        f"The client still sends the expired secret '{name}' of '{name}'.",
        evidence=(f"Expired: secret '{name}' (starts with '{name[:3]}')", f"The paste said: {name}"),
        fix=(f"Put the value of the current secret of '{name}' where the client reads it.",),
    )
    soon = Finding(Cause.SECRET_EXPIRING_SOON, Severity.WARNING, f"A valid secret of '{name}' expires within 30 days.")
    return Diagnosis(
        input=ParsedInput(codes=(CODE,), app_id=APP_ID),
        errors=(info,),
        app=app,
        found_in=FoundIn.TENANT,
        findings=(primary, soon),
        graph=GraphReport(GraphMode.SNAPSHOT, 1),
        reference_time=NOW,
    )


def hostile_paste() -> str:
    """A real error with every hostile fragment around it, diagnosed from the text alone."""
    sample = next(s for s in sample_errors() if s.cause == "expired_secret_in_use")
    return "\n".join([*HOSTILE.values(), sample.text, *HOSTILE.values()])


def huge_paste() -> str:
    """About 1.5 MB: every sample error over and over, then a 1 MB word."""
    chunk = "\n\n".join(s.text for s in sample_errors()) + "\n"
    return chunk * (512 * 1024 // len(chunk)) + "W" * (1024 * 1024)


@dataclass(frozen=True)
class Case:
    diagnosis: Diagnosis
    adaptive: Json
    blockkit: Json


def _case(diagnosis: Diagnosis) -> Case:
    return Case(diagnosis, render_adaptive(diagnosis), render_blockkit(diagnosis))


HOSTILE_CASES = [f"name-{key}" for key in HOSTILE] + ["all-at-once", "paste"]
LONG_CASES = ["40-credentials", "40-hostile-credentials", "1mb-paste"]


@pytest.fixture(scope="module")
def cases() -> dict[str, Case]:
    built = {f"name-{key}": _case(hostile_diagnosis(text)) for key, text in HOSTILE.items()}
    built["all-at-once"] = _case(hostile_diagnosis(" ".join(HOSTILE.values())))
    built["paste"] = _case(asyncio.run(diagnose(hostile_paste(), directory=None, now=NOW)))
    built["40-credentials"] = _case(hostile_diagnosis("payments-api", credentials=40))
    built["40-hostile-credentials"] = _case(hostile_diagnosis(" ".join(HOSTILE.values()), credentials=40))
    built["1mb-paste"] = _case(asyncio.run(diagnose(huge_paste(), directory=None, now=NOW)))
    assert sorted(built) == sorted(HOSTILE_CASES + LONG_CASES)
    return built


@pytest.fixture(scope="module")
def renderer_events(cases: dict[str, Case]) -> dict[str, list[str]]:
    """Microsoft's renderer on every card at once: one node process for the module."""
    names = list(cases)
    return dict(zip(names, js_events([cases[name].adaptive for name in names]), strict=True))


# --- the cards stay valid ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", HOSTILE_CASES + LONG_CASES)
def test_teams_card_is_valid(cases: dict[str, Case], name: str) -> None:
    assert adaptive_problems(cases[name].adaptive) == []


@pytest.mark.parametrize("name", HOSTILE_CASES + LONG_CASES)
def test_teams_card_passes_microsofts_renderer(renderer_events: dict[str, list[str]], name: str) -> None:
    assert renderer_events[name] == []


@pytest.mark.parametrize("name", HOSTILE_CASES + LONG_CASES)
def test_slack_message_is_valid(cases: dict[str, Case], name: str) -> None:
    assert blockkit_problems(cases[name].blockkit) == []


# --- Teams: hostile text only in TextRuns -----------------------------------------------------------


@pytest.mark.parametrize("name", HOSTILE_CASES + LONG_CASES)
def test_teams_shows_outside_text_only_in_text_runs(cases: dict[str, Case], name: str) -> None:
    """TextBlock text, facts and action titles are markdown in Teams; a TextRun never is."""
    leaks = [
        f"{parent}.{key}: {value[:80]!r}"
        for parent, key, value in strings(cases[name].adaptive)
        if tainted(value) and (parent, key) != ("TextRun", "text")
    ]
    assert leaks == []


@pytest.mark.parametrize("name", HOSTILE_CASES + LONG_CASES)
def test_teams_links_only_to_microsofts_error_page(cases: dict[str, Case], name: str) -> None:
    urls = [(parent, key, value) for parent, key, value in strings(cases[name].adaptive) if key in ("url", "iconUrl")]
    assert urls, "the card links the error code"
    assert [u for u in urls if u[0] != "Action.OpenUrl" or not _LOOKUP_URL.fullmatch(u[2])] == []
    assert not [node for node in _dicts(cases[name].adaptive) if "selectAction" in node]


@pytest.mark.parametrize("key", list(HOSTILE))
def test_teams_still_shows_the_hostile_text_as_typed(cases: dict[str, Case], key: str) -> None:
    runs = [value for parent, k, value in strings(cases[f"name-{key}"].adaptive) if (parent, k) == ("TextRun", "text")]
    assert any(shown_prefix(HOSTILE[key]) in run for run in runs)


# --- Slack: hostile text only as plain_text or escaped ----------------------------------------------


def mrkdwn_problems(text: str) -> list[str]:
    """What a mrkdwn parser would read as a mention, link or entity, other than our own lookup links."""
    rest = _OUR_LINK.sub("", text)
    problems = [f"special sequence {m.group()!r}" for m in _SLACK_SPECIAL.finditer(rest)]
    problems += [f"unescaped {ch!r}" for ch in "<>" if ch in rest]
    if "&" in _ENTITY.sub("", rest):
        problems.append("unescaped '&'")
    return problems


@pytest.mark.parametrize("name", HOSTILE_CASES + LONG_CASES)
def test_slack_mrkdwn_holds_no_live_markup(cases: dict[str, Case], name: str) -> None:
    message = cases[name].blockkit
    mrkdwn = [node["text"] for node in slack_text_objects(message) if node["type"] == "mrkdwn"]
    problems = {text[:80]: mrkdwn_problems(text) for text in mrkdwn if mrkdwn_problems(text)}
    assert problems == {}


@pytest.mark.parametrize("name", HOSTILE_CASES + LONG_CASES)
def test_slack_fallback_text_is_escaped(cases: dict[str, Case], name: str) -> None:
    assert mrkdwn_problems(cases[name].blockkit["text"]) == []


@pytest.mark.parametrize("name", HOSTILE_CASES + LONG_CASES)
def test_slack_shows_outside_text_only_as_plain_text(cases: dict[str, Case], name: str) -> None:
    leaks = [
        node["text"][:80]
        for node in slack_text_objects(cases[name].blockkit)
        if node["type"] != "plain_text" and slack_tainted(node["text"])
    ]
    assert leaks == []


@pytest.mark.parametrize("key", list(HOSTILE))
def test_slack_still_shows_the_hostile_text_as_typed(cases: dict[str, Case], key: str) -> None:
    plain = [node["text"] for node in slack_text_objects(cases[f"name-{key}"].blockkit) if node["type"] == "plain_text"]
    assert any(shown_prefix(HOSTILE[key]) in text for text in plain)


def test_mrkdwn_check_catches_live_markup() -> None:
    ours = "*<https://login.microsoftonline.com/error?code=7000222|AADSTS7000222>* fine &amp; &lt;"
    assert mrkdwn_problems(ours) == []
    for bad in ("<!channel>", "<@U024BE7LH>", "<https://evil.example|click me>", "a & b", "1 > 0", "&lt;ok&gt; <x"):
        assert mrkdwn_problems(bad), bad


def test_taint_check_sees_every_hostile_string_and_none_of_ours() -> None:
    assert all(tainted(text) and slack_tainted(text) for text in HOSTILE.values())
    ours = hostile_diagnosis("payments-api")
    card = render_adaptive(ours)
    assert [v for p, k, v in strings(card) if tainted(v)] == []
    mrkdwn = [n["text"] for n in slack_text_objects(render_blockkit(ours)) if n["type"] == "mrkdwn"]
    assert mrkdwn and [text for text in mrkdwn if slack_tainted(text)] == []


# --- long content -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["40-credentials", "40-hostile-credentials"])
def test_teams_shows_ten_credentials_and_counts_the_rest(cases: dict[str, Case], name: str) -> None:
    card = cases[name].adaptive
    tables = [node for node in _dicts(card) if node.get("type") == "Table"]
    assert len(tables) == 1
    assert len(tables[0]["rows"]) <= 1 + 10  # the header row and at most ten credentials
    shown = [value for _, key, value in strings(card) if key == "text"]
    assert any("and 30 more" in text for text in shown)


@pytest.mark.parametrize("name", ["40-credentials", "40-hostile-credentials"])
def test_slack_shows_ten_credentials_and_counts_the_rest(cases: dict[str, Case], name: str) -> None:
    message = cases[name].blockkit
    assert len(message["blocks"]) <= SLACK_MAX_BLOCKS
    fields = [field for block in message["blocks"] for field in block.get("fields", [])]
    assert 0 < len(fields) <= SLACK_MAX_FIELDS
    assert any("and 30 more" in node["text"] for node in slack_text_objects(message))


def test_long_card_sizes_stay_under_the_limits(cases: dict[str, Case]) -> None:
    print(size_figures({name: (case.adaptive, case.blockkit) for name, case in cases.items()}))


def test_huge_paste_is_read(cases: dict[str, Case]) -> None:
    diagnosis = cases["1mb-paste"].diagnosis
    assert diagnosis.input.recognised and diagnosis.errors
    assert diagnosis.graph.mode is GraphMode.NONE


def _dicts(node: Any) -> list[Json]:
    found: list[Json] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found += _dicts(value)
    elif isinstance(node, list):
        for value in node:
            found += _dicts(value)
    return found
