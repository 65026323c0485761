"""Teams cards drawn by Microsoft's own renderer in headless Chromium, at a phone's width (320 px) and
a chat pane's (560 px): every answer must be accepted by the renderer, stay inside the card and show
all its text. Probe cards built to break the layout prove that the checks notice.

Needs Debian's chromium and `npm ci`; skipped without them unless SECRETBOT_REQUIRE_TOOLS=1 (CI).
Set SECRETBOT_CARD_SHOTS to a directory to keep the pictures.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.fakegraph.samples import sample_errors, sample_reference_time
from bot.pictures import diagnosis_cards, sample_pastes
from bot.preview import (
    INVALID,
    RENDERED,
    Assets,
    AssetsMissing,
    PreviewError,
    Shot,
    card_page,
    chromium_path,
    screenshot_cards,
)
from bot.settings import Settings
from tests.tools import missing_tool

WIDTHS = (320, 560)
NOW = sample_reference_time()
CAUSES = [s.cause for s in sample_errors()]
# Every sample against the sample tenant, every sample from the text alone, and "nothing recognised".
ANSWERS = [*CAUSES, *(f"text-only-{cause}" for cause in CAUSES), "nothing-recognised"]

_LONG_WORD = "AADSTS7000215" * 12
PROBES: dict[str, dict[str, Any]] = {
    # A TextBlock without wrap shows one line and ends in an ellipsis.
    "probe-long-word": {"body": [{"type": "TextBlock", "text": _LONG_WORD}]},
    # Two 250 px columns fit 560 px but not 320 px.
    "probe-wide-columns": {
        "body": [
            {
                "type": "ColumnSet",
                "columns": [
                    {"type": "Column", "width": "250px", "items": [{"type": "TextBlock", "text": "left"}]},
                    {"type": "Column", "width": "250px", "items": [{"type": "TextBlock", "text": "right"}]},
                ],
            }
        ]
    },
    "probe-long-buttons": {
        "body": [{"type": "TextBlock", "text": "Rotate?"}],
        "actions": [
            {"type": "Action.OpenUrl", "title": f"Request rotation of secret {n}", "url": "https://example.com"}
            for n in (1, 2, 3)
        ],
    },
    "probe-unknown-element": {"body": [{"type": "Tabel"}, {"type": "TextBlock", "text": "x"}]},
    # Card text that would end the page's JSON block if it were not escaped.
    "probe-script-text": {
        "body": [{"type": "TextBlock", "text": "</script><script>document.title='RENDERED'</script><!--", "wrap": True}]
    },
}
for _probe in PROBES.values():
    _probe.update({"type": "AdaptiveCard", "version": "1.5"})


def _missing_tool() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "Playwright for Python is not installed"
    try:
        chromium_path()
        Assets.find()
    except PreviewError as error:
        return str(error)
    return None


@pytest.fixture(scope="session")
def tools() -> None:
    missing = _missing_tool()
    if missing:
        missing_tool(missing)


@pytest.fixture(scope="session")
def shots(tools: None, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], Shot]:
    """Every answer and probe at every width, in one browser session."""
    out = Path(os.environ.get("SECRETBOT_CARD_SHOTS") or tmp_path_factory.mktemp("cards"))
    taken = asyncio.run(_take(out))
    return {(shot.name, shot.width): shot for shot in taken}


async def _take(out: Path) -> list[Shot]:
    settings = Settings()
    cards = await diagnosis_cards(sample_pastes(), snapshot="sample", now=NOW, settings=settings)
    text_only = await diagnosis_cards(
        {f"text-only-{cause}": text for cause, text in sample_pastes().items()} | {"nothing-recognised": "hello"},
        snapshot=None,
        now=NOW,
        settings=settings,
    )
    return await screenshot_cards(cards | text_only | PROBES, out, WIDTHS)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", ANSWERS)
def test_answer_card_renders_and_fits(shots: dict[tuple[str, int], Shot], name: str, width: int) -> None:
    shot = shots[name, width]
    report = "\n  ".join(shot.problems)
    assert shot.status == RENDERED, f"Teams card {name!r} at {width} px is {shot.status} ({shot.png}):\n  {report}"
    assert shot.problems == (), f"Teams card {name!r} does not fit {width} px ({shot.png}):\n  {report}"


def test_a_long_word_without_wrap_is_reported_as_truncated(shots: dict[tuple[str, int], Shot]) -> None:
    for width in WIDTHS:
        shot = shots["probe-long-word", width]
        assert shot.status == RENDERED
        assert [p for p in shot.problems if p.startswith('text truncated: TextBlock "AADSTS7000215')], shot.problems


def test_columns_wider_than_the_card_are_reported(shots: dict[tuple[str, int], Shot]) -> None:
    narrow, wide = shots["probe-wide-columns", 320], shots["probe-wide-columns", 560]
    assert narrow.status == RENDERED
    assert [p for p in narrow.problems if re.match(r'overflow: ColumnSet > Column "right" sticks out .* by \d+ px', p)]
    assert wide.problems == ()


def test_buttons_cut_off_are_reported(shots: dict[tuple[str, int], Shot]) -> None:
    problems = shots["probe-long-buttons", 320].problems
    assert len([p for p in problems if p.startswith('text truncated: Action.OpenUrl "Request rotation')]) == 3


def test_renderer_events_make_a_card_invalid(shots: dict[tuple[str, int], Shot]) -> None:
    shot = shots["probe-unknown-element", 560]
    assert shot.status == INVALID
    assert shot.problems[0].startswith('[Parse] UnknownElementType: Unknown element type "Tabel"')


def test_card_text_cannot_break_out_of_the_page(shots: dict[tuple[str, int], Shot]) -> None:
    # Unescaped, the text would end the card's JSON early: the page would fail to parse it.
    for width in WIDTHS:
        shot = shots["probe-script-text", width]
        assert (shot.status, shot.problems) == (RENDERED, ())


def test_pictures_are_pngs_of_the_card_width(shots: dict[tuple[str, int], Shot]) -> None:
    shot = shots["secret_mismatch", 560]
    header = shot.png.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(header[16:20], "big") == 560


def test_render_command_draws_one_picture_per_sample_and_width(tools: None, tmp_path: Path) -> None:
    result = _secretbot("render", "--cause", "app_not_found", "--width", "400", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"RENDERED  {tmp_path / 'app_not_found-400.png'}\n"
    assert (tmp_path / "app_not_found-400.png").stat().st_size > 1000


# Without the browser: the page itself, and the one-line errors.


def test_page_embeds_card_json_that_no_text_can_close(tmp_path: Path) -> None:
    assets = _fake_assets(tmp_path)
    card = {"type": "AdaptiveCard", "body": [{"type": "TextBlock", "text": "</script><!-- & </SCRIPT> \u2028"}]}
    page = card_page(card, width=320, assets=assets)
    assert page.lower().count("</script") == page.lower().count("<script")  # only our own closing tags
    embedded = re.search(r'<script type="application/json" id="card-json">(.*?)</script>', page, re.S)
    assert embedded and json.loads(embedded.group(1)) == card
    assert "#card { width: 320px; }" in page


def test_missing_npm_packages_say_how_to_install_them(tmp_path: Path) -> None:
    with pytest.raises(AssetsMissing, match=r"run 'npm ci'"):
        Assets.find(tmp_path / "node_modules")
    with pytest.raises(AssetsMissing, match=r"adaptivecards\.min\.js is missing"):
        Assets.find(env={"SECRETBOT_NODE_MODULES": str(tmp_path)})


def test_missing_chromium_is_one_line(tmp_path: Path) -> None:
    result = _secretbot("render", "--out", str(tmp_path), env={"SECRETBOT_CHROMIUM": str(tmp_path / "chromium")})
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Chromium not found at" in result.stderr
    assert "Traceback" not in result.stderr


def test_render_usage_errors_are_one_line() -> None:
    for args in (["--width", "5"], ["--cause", "no_such_cause"]):
        result = _secretbot("render", *args)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr


def _secretbot(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


def _fake_assets(root: Path) -> Assets:
    (root / "host.json").write_text("{}", "utf-8")
    return Assets(renderer=root / "ac.js", markdown=root / "md.js", host_config=root / "host.json", css=root / "t.css")
