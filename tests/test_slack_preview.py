"""The console's Slack preview draws Block Kit mrkdwn as Slack does: *bold*, _italic_, ~strike~, `code`,
```blocks```, <url|links> (also inside bold) and &lt; entities become formatting and characters, not
literal marks; hostile text never becomes markup or a script.

The real `slack_preview.js` runs in headless Chromium (the browser the console test uses) on an empty
page; no server is needed. Skipped without Playwright or chromium unless SECRETBOT_REQUIRE_TOOLS=1.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bot.fakegraph.samples import sample_errors, sample_reference_time
from bot.preview import PreviewError, chromium_path
from bot.preview.shots import CHROMIUM_ARGS
from cards.blockkit import render_blockkit
from handlers.diagnose import diagnose
from tests.paths import ROOT
from tests.tools import missing_tool

SCRIPT = ROOT / "bot" / "platforms" / "console_page" / "slack_preview.js"
LOOKUP = "https://login.microsoftonline.com/error?code=7000222"


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    if importlib.util.find_spec("playwright") is None:
        missing_tool("Playwright for Python is not installed")
    try:
        executable = chromium_path()
    except PreviewError as error:
        missing_tool(str(error))
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable), args=list(CHROMIUM_ARGS))
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.set_content("<!doctype html><html><body></body></html>")
        page.add_script_tag(path=str(SCRIPT))
        yield page
        browser.close()
        assert errors == []


def drawn(page: Any, message: dict[str, Any]) -> dict[str, Any]:
    """Render into the page; return its HTML, its text and whether any script ran."""
    return dict(
        page.evaluate(
            """message => {
                window.ran = false;
                document.body.replaceChildren(window.SlackPreview.render(message, () => {}));
                return {html: document.body.innerHTML, text: document.body.innerText, ran: window.ran};
            }""",
            message,
        )
    )


def mrkdwn(text: str) -> dict[str, Any]:
    return {"text": "fallback", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def inner(html: str) -> str:
    """The section's own HTML, without the wrapping divs."""
    return html.split('class="slack-block slack-section">', 1)[1].rsplit("</div></div>", 1)[0]


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("*What we found*", "<b>What we found</b>"),
        ("_italic_ and ~gone~", "<i>italic</i> and <s>gone</s>"),
        ("run `az ad app show`", "run <code>az ad app show</code>"),
        ("```az login\n--tenant x```", '<pre class="slack-pre">az login\n--tenant x</pre>'),
        ("a &lt;b&gt; &amp;amp; c", "a &lt;b&gt; &amp;amp; c"),  # shown as "a <b> &amp; c"
        (
            f"*<{LOOKUP}|AADSTS7000222>* Expired: x",
            f'<b><a href="{LOOKUP.replace("&", "&amp;")}" target="_blank" rel="noopener noreferrer">'
            "AADSTS7000222</a></b> Expired: x",
        ),
        ("*bold _and italic_*", "<b>bold <i>and italic</i></b>"),
    ],
)
def test_mrkdwn_is_drawn_as_slack_draws_it(page: Any, text: str, html: str) -> None:
    assert inner(drawn(page, mrkdwn(text))["html"]) == html


@pytest.mark.parametrize(
    "text",
    ["expired_secret_in_use and my_app_name", "2*3*4 = 24", "a * b * c", "* not bold*", "*unclosed", "_a\nb_"],
)
def test_marks_inside_words_or_unclosed_stay_as_typed(page: Any, text: str) -> None:
    result = drawn(page, mrkdwn(text))
    assert "<b>" not in result["html"] and "<i>" not in result["html"]
    assert result["text"].split() == text.split()


def test_entities_become_characters_once(page: Any) -> None:
    assert drawn(page, mrkdwn("x &lt; y &amp;&amp; y &gt; z, &amp;lt; stays"))["text"].strip() == (
        "x < y && y > z, &lt; stays"
    )


@pytest.mark.parametrize(
    "text",
    [
        "&lt;img src=x onerror=&quot;window.ran=true&quot;&gt;",
        "&lt;script&gt;window.ran = true&lt;/script&gt;",
        "<javascript:window.ran=true|click me>",
        "*<img src=x onerror=window.ran=true>*",
        "<https://ok.example|&lt;img src=x onerror=window.ran=true&gt;>",
    ],
)
def test_hostile_text_never_becomes_markup(page: Any, text: str) -> None:
    result = drawn(page, mrkdwn(text))
    assert not result["ran"]
    assert "<img" not in result["html"] and "<script" not in result["html"]
    assert 'href="javascript' not in result["html"]


def test_plain_text_is_never_parsed(page: Any) -> None:
    message = {"text": "t", "blocks": [{"type": "section", "text": {"type": "plain_text", "text": "*a* <b>x</b>"}}]}
    result = drawn(page, message)
    assert result["text"].strip() == "*a* <b>x</b>" and "<b>" not in result["html"]


def test_a_real_answer_shows_no_literal_marks(page: Any) -> None:
    paste = next(s.text for s in sample_errors() if s.cause == "expired_secret_in_use")
    # Playwright's sync API holds this thread's event loop, so the diagnosis runs on another thread.
    with ThreadPoolExecutor(1) as pool:
        diagnosis = pool.submit(asyncio.run, diagnose(paste, directory=None, now=sample_reference_time())).result()
    message = render_blockkit(diagnosis)
    result = drawn(page, message)
    assert "*" not in result["text"] and "&lt;" not in result["text"] and "&amp;" not in result["text"]
    assert "<b>What we found</b>" in result["html"] or "<b>How to fix it</b>" in result["html"]
    assert f'href="{LOOKUP.replace("&", "&amp;")}"' in result["html"]
