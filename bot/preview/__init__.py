"""Pictures of Teams cards, drawn by Microsoft's own renderer in headless Chromium.

Infrastructure with no knowledge of the bot: it takes Adaptive Card JSON (dicts) and file paths,
and returns pictures plus what the renderer and the layout checks found. `bot.pictures` wires it
to the diagnosis for the `secretbot render` command and the browser tests.
"""

from bot.preview.assets import Assets, AssetsMissing, PreviewError
from bot.preview.page import card_page
from bot.preview.shots import INVALID, RENDERED, Shot, chromium_path, screenshot_cards

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
