"""Build the Teams app package (a zip to upload in Teams or the Developer Portal) from manifest/teams/.

The template `manifest/teams/manifest.json` carries the all-zero GUID as its app id and bot id and
`YOUR-HOST` as its host, so it stays valid against Microsoft's schema; packaging puts the real bot id
(the Azure Bot's Microsoft App ID) in both places and, when given, the public host name in the
developer URLs and `validDomains`. The zip holds `manifest.json` and the two icons at its root.

The template lives in the source checkout, not in the Python package: pass `manifest_dir` when
running from an installed wheel.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any

PLACEHOLDER_ID = "00000000-0000-0000-0000-000000000000"
PLACEHOLDER_HOST = "YOUR-HOST"
MANIFEST_NAME = "manifest.json"

_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
# A DNS host name such as bot.example.com or abc-3978.euw.devtunnels.ms: no scheme, port or path.
_HOST = re.compile(r"(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]{0,62}")
# Fixed member timestamps make the same inputs give the same zip, byte for byte.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_CHECKOUT = Path(__file__).resolve().parents[1]


def default_manifest_dir() -> Path:
    """`manifest/teams` of the checkout this module belongs to, else of the current directory."""
    candidates = list(dict.fromkeys([_CHECKOUT / "manifest" / "teams", Path.cwd().resolve() / "manifest" / "teams"]))
    for candidate in candidates:
        if (candidate / MANIFEST_NAME).is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(
        f"Teams manifest template not found (tried {tried}); run from a secretbot checkout or pass its manifest/teams"
    )


def build_teams_package(bot_id: str, out: Path, *, host: str | None = None, manifest_dir: Path | None = None) -> Path:
    """Write the Teams app package for `bot_id` to `out` and return `out`.

    Raises ValueError for a bot id that is not a GUID (or is the template's all-zero placeholder) and
    for a host that is not a bare host name; FileNotFoundError when the template or an icon is missing.
    """
    bot_id = _check_bot_id(bot_id)
    if host is not None:
        host = _check_host(host)
    source = default_manifest_dir() if manifest_dir is None else manifest_dir
    template = source / MANIFEST_NAME
    if not template.is_file():
        raise FileNotFoundError(f"Teams manifest template not found: {template}")
    manifest = fill_manifest(json.loads(template.read_text(encoding="utf-8")), bot_id, host=host)

    icons = [manifest["icons"]["color"], manifest["icons"]["outline"]]
    for icon in icons:
        if not (source / icon).is_file():
            raise FileNotFoundError(f"Teams icon not found: {source / icon}")

    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as package:
        _add(package, MANIFEST_NAME, (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
        for icon in icons:
            _add(package, Path(icon).name, (source / icon).read_bytes())
    return out


def fill_manifest(template: dict[str, Any], bot_id: str, *, host: str | None = None) -> dict[str, Any]:
    """The template with the bot id as app id and bot id, and `host` for every `YOUR-HOST`."""
    manifest = _replace_host(template, host) if host is not None else json.loads(json.dumps(template))
    if not isinstance(manifest, dict) or not manifest.get("bots"):
        raise ValueError("the Teams manifest template has no bot")
    manifest["id"] = bot_id
    for bot in manifest["bots"]:
        bot["botId"] = bot_id
    return manifest


def _check_bot_id(bot_id: str) -> str:
    value = bot_id.strip()
    if not _GUID.fullmatch(value):
        raise ValueError(
            f"bot id must be a GUID like 6f1c2a9e-0b7d-4c3e-9a51-2d8e4f7b1c05 (the Azure Bot's Microsoft App ID),"
            f" got {bot_id!r}"
        )
    if value == PLACEHOLDER_ID:
        raise ValueError("bot id is the template's all-zero placeholder; pass the Azure Bot's Microsoft App ID")
    return value.lower()


def _check_host(host: str) -> str:
    value = host.strip().rstrip(".")
    if not _HOST.fullmatch(value):
        raise ValueError(f"host must be a bare host name like bot.example.com (no scheme, port or path), got {host!r}")
    return value.lower()


def _replace_host(value: Any, host: str) -> Any:
    if isinstance(value, str):
        return value.replace(PLACEHOLDER_HOST, host)
    if isinstance(value, list):
        return [_replace_host(item, host) for item in value]
    if isinstance(value, dict):
        return {key: _replace_host(item, host) for key, item in value.items()}
    return value


def _add(package: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    package.writestr(info, data)
