"""Warning digests drawn by Microsoft's own renderer in headless Chromium at a phone's width (320 px)
and a chat pane's (560 px): accepted, inside the card, every text and button shown in full.

Needs Debian's chromium and `npm ci`; skipped without them unless SECRETBOT_REQUIRE_TOOLS=1 (CI).
"""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import pytest

from bot.preview import RENDERED, Assets, PreviewError, Shot, chromium_path, screenshot_cards
from cards.digest_adaptive import render_digest_adaptive
from tests.test_digest_cards import CASES
from tests.tools import missing_tool

WIDTHS = (320, 560)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], Shot]:
    if importlib.util.find_spec("playwright") is None:
        missing_tool("Playwright for Python is not installed")
    try:
        chromium_path()
        Assets.find()
    except PreviewError as error:
        missing_tool(str(error))
    cards = {name.replace(" ", "-"): render_digest_adaptive(digest) for name, digest in CASES.items()}
    taken = asyncio.run(screenshot_cards(cards, Path(tmp_path_factory.mktemp("digests")), WIDTHS))
    return {(shot.name, shot.width): shot for shot in taken}


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", [name.replace(" ", "-") for name in CASES])
def test_digest_card_renders_and_fits(shots: dict[tuple[str, int], Shot], name: str, width: int) -> None:
    shot = shots[name, width]
    assert (shot.status, shot.problems) == (RENDERED, ()), f"{name} at {width} px ({shot.png})"
