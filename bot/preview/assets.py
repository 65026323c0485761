"""Where Microsoft's renderer, markdown-it and the Teams look come from: the project's `node_modules`.

`npm ci` installs them from package.json / package-lock.json: `adaptivecards` (the renderer Teams
is built on), `markdown-it` (the renderer only reads markdown through a hook) and
`adaptivecards-designer` (only for its Teams host config and container CSS).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ENV_NODE_MODULES = "SECRETBOT_NODE_MODULES"
# The project root when running from a checkout: bot/preview/assets.py -> bot/preview -> bot -> root.
PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Relative to node_modules.
_FILES = {
    "renderer": "adaptivecards/dist/adaptivecards.min.js",
    "markdown": "markdown-it/dist/markdown-it.min.js",
    "host_config": "adaptivecards-designer/lib/hostConfigs/microsoft-teams-light.json",
    "css": "adaptivecards-designer/dist/containers/teams-container-light.css",
}


class PreviewError(Exception):
    """Pictures cannot be taken on this machine; the message is one line and says what to install."""


class AssetsMissing(PreviewError):
    """The npm packages are not installed."""


@dataclass(frozen=True)
class Assets:
    renderer: Path  # adaptivecards.min.js
    markdown: Path  # markdown-it.min.js
    host_config: Path  # Teams light host config (JSON)
    css: Path  # Teams light container CSS

    @classmethod
    def in_node_modules(cls, node_modules: Path | str) -> Assets:
        """The assets under this node_modules directory; `AssetsMissing` when any is absent."""
        root = Path(node_modules).resolve()
        missing = [rel for rel in _FILES.values() if not (root / rel).is_file()]
        if missing:
            hint = _npm_hint(root)
            raise AssetsMissing(f"the card renderer is not installed: {root / missing[0]} is missing; {hint}")
        return cls(**{name: root / rel for name, rel in _FILES.items()})

    @classmethod
    def find(cls, node_modules: Path | str | None = None, env: Mapping[str, str] | None = None) -> Assets:
        """Look in `node_modules` if given, else $SECRETBOT_NODE_MODULES, else ./node_modules, else the
        project root's node_modules. An explicit directory is used as is (no fallback)."""
        env = os.environ if env is None else env
        explicit = node_modules or env.get(ENV_NODE_MODULES)
        if explicit:
            return cls.in_node_modules(explicit)
        tried = list(_candidates())
        for candidate in tried:
            if all((candidate / rel).is_file() for rel in _FILES.values()):
                return cls.in_node_modules(candidate)
        places = " or ".join(str(c) for c in tried)
        raise AssetsMissing(
            f"the card renderer is not installed (looked in {places}); "
            f"{_npm_hint(PROJECT_ROOT / 'node_modules')} or set {ENV_NODE_MODULES} to a node_modules directory"
        )


def _candidates() -> Iterator[Path]:
    here = (Path.cwd() / "node_modules").resolve()
    yield here
    project = PROJECT_ROOT / "node_modules"
    if project != here:
        yield project


def _npm_hint(node_modules: Path) -> str:
    """Where to run `npm ci`: next to the package.json that owns this node_modules, else the checkout."""
    for directory in (node_modules.parent, PROJECT_ROOT):
        if (directory / "package.json").is_file():
            return f"run 'npm ci' in {directory}"
    return "run 'npm ci' in secretbot's checkout (where package.json is)"
