"""Pictures of the Teams cards secretbot answers with: pastes (by default the bundled sample errors)
are diagnosed against a tenant snapshot, rendered as Adaptive Cards and photographed by
`bot.preview`. Behind `secretbot render`; the browser tests use the same steps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.fakegraph.samples import sample_errors
from bot.preview import Assets, Shot, chromium_path, screenshot_cards
from bot.settings import Settings
from bot.wiring import open_directory
from cards.adaptive import render_adaptive
from handlers.conversation import reply


def sample_pastes(causes: Iterable[str] | None = None) -> dict[str, str]:
    """The sample errors' pastes by cause, in the samples' order; all of them when `causes` is None."""
    wanted = None if causes is None else set(causes)
    return {s.cause: s.text for s in sample_errors() if wanted is None or s.cause in wanted}


async def diagnosis_cards(
    pastes: Mapping[str, str], *, snapshot: str | None, now: datetime, settings: Settings
) -> dict[str, dict[str, Any]]:
    """Each paste's Teams card, diagnosed against `snapshot` (None: live Graph when configured,
    else from the text alone)."""
    async with open_directory(settings, snapshot) as directory:
        return {name: render_adaptive(await reply(text, directory=directory, now=now)) for name, text in pastes.items()}


async def take_pictures(
    pastes: Mapping[str, str],
    out_dir: str | Path,
    widths: Iterable[int],
    *,
    snapshot: str | None,
    now: datetime,
    settings: Settings,
) -> list[Shot]:
    """`out_dir/<name>-<width>.png` for every paste and width, with what the renderer found.
    Missing tools (`PreviewError`) are reported before any diagnosis is made."""
    chromium_path()
    assets = Assets.find()
    cards = await diagnosis_cards(pastes, snapshot=snapshot, now=now, settings=settings)
    return await screenshot_cards(cards, out_dir, widths, assets=assets)


def shot_line(shot: Shot) -> str:
    """One line per picture: status, file, and the problems if there are any."""
    line = f"{shot.status:<8}  {shot.png}"
    if shot.problems:
        count = len(shot.problems)
        line += f"  {count} problem{'s' if count > 1 else ''}: " + " | ".join(shot.problems)
    return line
