"""Pictures of Teams cards, drawn by Microsoft's own renderer in headless Chromium.

Infrastructure with no knowledge of the bot: it takes Adaptive Card JSON (dicts) and file paths,
and returns pictures plus what the renderer and the layout checks found. `bot.pictures` wires it
to the diagnosis for the `secretbot render` command and the browser tests.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.preview.assets import Assets, AssetsMissing, PreviewError
    from bot.preview.page import card_page
    from bot.preview.shots import INVALID, RENDERED, Shot, chromium_path, screenshot_cards

# Each name is imported from its module on first use: the picture taker imports asyncio, and the
# CLI, which names `PreviewError` for every command, takes pictures only for `secretbot render`.
_MODULE_OF = {
    "Assets": "assets",
    "AssetsMissing": "assets",
    "PreviewError": "assets",
    "card_page": "page",
    "INVALID": "shots",
    "RENDERED": "shots",
    "Shot": "shots",
    "chromium_path": "shots",
    "screenshot_cards": "shots",
}
__all__ = [
    "INVALID",
    "RENDERED",
    "Assets",
    "AssetsMissing",
    "PreviewError",
    "Shot",
    "card_page",
    "chromium_path",
    "screenshot_cards",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
