"""Pictures of cards: the Debian Chromium, driven by Playwright, renders each card page and
screenshots the card, and reports what the page found (see page.js).

No browser is downloaded: Playwright launches the system Chromium ($SECRETBOT_CHROMIUM, else
/usr/bin/chromium). Playwright itself is imported only when pictures are taken, so the rest of the
bot does not need it installed.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.preview.assets import Assets, PreviewError
from bot.preview.page import card_page

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page, Playwright, Route

CHROMIUM = "/usr/bin/chromium"
ENV_CHROMIUM = "SECRETBOT_CHROMIUM"
# Chromium phones home at start-up (component updates, sync, field trials, first-run pages). CI has
# no network, and a picture must not depend on one: turn all of it off. No sandbox: CI runs as root.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
)
RENDERED = "RENDERED"  # the renderer accepted the card (it may still have layout problems)
INVALID = "INVALID"  # parse or validation events, or the card could not be rendered
_MARGIN = 16  # page padding around the card (page.py)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Shot:
    name: str
    width: int
    png: Path
    status: str  # RENDERED or INVALID
    problems: tuple[str, ...]  # renderer events, then layout problems ("overflow: …", "text truncated: …")

    @property
    def ok(self) -> bool:
        return self.status == RENDERED and not self.problems


def chromium_path(explicit: str | Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The Chromium to drive; `PreviewError` (one line) when it is not there."""
    env = os.environ if env is None else env
    path = Path(explicit or env.get(ENV_CHROMIUM) or CHROMIUM)
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise PreviewError(
            f"Chromium not found at {path}: install it (apt-get install chromium fonts-noto-color-emoji) "
            f"or set {ENV_CHROMIUM} to a Chromium binary"
        )
    return path


async def screenshot_cards(
    cards: Mapping[str, Mapping[str, Any]],
    out_dir: str | Path,
    widths: Iterable[int] = (560,),
    *,
    assets: Assets | None = None,
    chromium: str | Path | None = None,
    scale: float = 1.0,
    page_timeout: float = 20.0,
) -> list[Shot]:
    """Render every card at every width into `out_dir/<name>-<width>.png`, in one browser.
    `scale` is the device pixel ratio (2 doubles the picture's pixels); `page_timeout` is per card, in s.

    Card names become file names, so they are letters, digits, `_`, `.` and `-`.
    Raises `PreviewError` when Chromium, Playwright or the npm assets are missing.
    """
    widths = _checked(cards, widths)
    assets = assets or Assets.find()
    executable = chromium_path(chromium)
    try:
        from playwright.async_api import Error, async_playwright
    except ImportError:
        raise PreviewError("Playwright for Python is not installed: pip install playwright") from None
    out = Path(out_dir)
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="secretbot-cards-") as pages:
        async with async_playwright() as playwright:
            browser = await _launch(playwright, executable)
            try:
                # One tab, one card after the other: on a CI machine's few cores, parallel tabs were slower.
                tab = await _Tab.open(browser, scale, Path(pages), assets, page_timeout)
                return [await tab.shoot(name, card, width, out) for name, card in cards.items() for width in widths]
            except Error as error:
                raise PreviewError(f"Chromium failed: {_first_line(error)}") from None
            finally:
                await browser.close()


def _checked(cards: Mapping[str, Mapping[str, Any]], widths: Iterable[int]) -> tuple[int, ...]:
    for name in cards:
        if not _NAME.fullmatch(name):
            raise ValueError(f"card name {name!r} cannot be a file name (letters, digits, '_', '.', '-')")
    checked = tuple(widths)
    for width in checked:
        if width < 1:
            raise ValueError(f"width must be a positive number of pixels, not {width}")
    return checked


async def _launch(playwright: Playwright, executable: Path) -> Browser:
    from playwright.async_api import Error

    try:
        return await playwright.chromium.launch(executable_path=str(executable), args=list(CHROMIUM_ARGS))
    except Error as error:
        raise PreviewError(f"could not start Chromium at {executable}: {_first_line(error)}") from None


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


async def _offline(route: Route) -> None:
    """Pages only read local files: a card image on the internet fails fast instead of hanging."""
    if route.request.url.startswith(("file:", "data:")):
        await route.continue_()
    else:
        await route.abort()


@dataclass
class _Tab:
    page: Page
    pages: Path  # where the HTML pages are written
    assets: Assets
    page_timeout: float  # seconds
    errors: list[str]  # uncaught script errors of the current page

    @classmethod
    async def open(cls, browser: Browser, scale: float, pages: Path, assets: Assets, page_timeout: float) -> _Tab:
        page = await browser.new_page(device_scale_factor=scale)
        await page.route("**/*", _offline)
        tab = cls(page, pages, assets, page_timeout, [])
        page.on("pageerror", lambda error: tab.errors.append(f"[Script] {error}"))
        return tab

    async def shoot(self, name: str, card: Mapping[str, Any], width: int, out: Path) -> Shot:
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        html = self.pages / f"{name}-{width}.html"
        await asyncio.to_thread(html.write_text, card_page(card, width=width, assets=self.assets), "utf-8")
        png = out / f"{name}-{width}.png"
        self.errors.clear()
        await self.page.set_viewport_size({"width": width + 2 * _MARGIN, "height": 600})
        await self.page.goto(html.as_uri())
        try:
            await self.page.wait_for_function("window.secretbotPreview !== undefined", timeout=self.page_timeout * 1000)
        except PlaywrightTimeout:
            await self.page.locator("#card").screenshot(path=png)
            late = f"[Render] the page did not finish within {self.page_timeout:g} s"
            return Shot(name, width, png, INVALID, (*self.errors, late))
        result = await self.page.evaluate("window.secretbotPreview")
        await self.page.locator("#card").screenshot(path=png)
        problems = (*self.errors, *(str(line) for line in [*result["events"], *result["layout"]]))
        return Shot(name, width, png, INVALID if self.errors else str(result["status"]), problems)
