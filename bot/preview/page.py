"""One HTML page per card: Microsoft's renderer draws it in a fixed-width Teams-like container.

The card JSON and the host config are inlined as JSON data blocks, escaped so that no card text
(`</script>`, `<!--`) can end the block early; the renderer, markdown-it and the Teams CSS are
referenced as local files, so the page works offline from anywhere on this machine. The page's own
script (`page.js`) reports parse and validation events and layout problems; see its header.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from bot.preview.assets import Assets

# Teams' chat background around the card; the card itself is white (host config).
_STYLE = """
body { margin: 0; padding: 16px; background: #f5f5f5; }
#card { box-sizing: border-box; background: #fff; }
#status { font: 12px/1.4 monospace; white-space: pre-wrap; margin-top: 16px; }
"""


def card_page(card: Mapping[str, Any], *, width: int, assets: Assets) -> str:
    """A page rendering `card` into a container `width` CSS pixels wide (border included)."""
    if width < 1:
        raise ValueError(f"width must be a positive number of pixels, not {width}")
    host_config = _read_json(assets.host_config)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width">
<title></title>
<link rel="stylesheet" href="{_uri(assets.css)}">
<style>{_STYLE}#card {{ width: {int(width)}px; }}</style>
<script src="{_uri(assets.markdown)}"></script>
<script src="{_uri(assets.renderer)}"></script>
</head>
<body>
<div id="card" class="teams-card"></div>
<pre id="status"></pre>
<script type="application/json" id="card-json">{json_for_html(card)}</script>
<script type="application/json" id="host-config">{json_for_html(host_config)}</script>
<script>{_page_script()}</script>
</body>
</html>
"""


def json_for_html(value: Any) -> str:
    """JSON safe inside a <script> element: `<`, `>` and `&` become \\u escapes, which JSON.parse reads
    back unchanged, so the text can never close the element or open a comment."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    for char, escape in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escape)
    return text


def _uri(path: Path) -> str:
    return html.escape(path.as_uri(), quote=True)


@cache
def _read_json(path: Path) -> Any:
    return json.loads(path.read_text("utf-8"))


@cache
def _page_script() -> str:
    script = resources.files(__package__).joinpath("page.js").read_text("utf-8")
    if "</script" in script.lower():  # our own file; guard against an edit that would break the page
        raise ValueError("page.js must not contain '</script'")
    return script
