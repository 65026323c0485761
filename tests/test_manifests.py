"""The Slack and Teams app manifests in manifest/, the Teams icons and the Teams app package.

Slack: validated with jsonschema against slackapi/manifest-schema (copied to tests/fixtures/schemas).
Teams: validated by Microsoft's own @microsoft/app-manifest from node_modules, through
tests/js/validate-teams-manifest.js (offline; skipped without node or the package unless
SECRETBOT_REQUIRE_TOOLS=1, then failed).
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from PIL import Image

from bot.teams_package import PLACEHOLDER_HOST, PLACEHOLDER_ID, build_teams_package
from tests.paths import FIXTURES, ROOT
from tests.tools import missing_tool

SLACK_MANIFEST = ROOT / "manifest" / "slack" / "manifest.yaml"
SLACK_SCHEMA = FIXTURES / "schemas" / "slack-manifest.schema.1.0.0.json"
TEAMS_DIR = ROOT / "manifest" / "teams"
TEAMS_MANIFEST = TEAMS_DIR / "manifest.json"
VALIDATE_JS = ROOT / "tests" / "js" / "validate-teams-manifest.js"
APP_MANIFEST_PKG = ROOT / "node_modules" / "@microsoft" / "app-manifest"
FS_EXTRA_PKG = ROOT / "node_modules" / "fs-extra"

REQUEST_URL = f"https://{PLACEHOLDER_HOST}/slack/events"
SLACK_SCOPES = {
    "commands", "chat:write", "app_mentions:read", "im:history", "channels:history", "groups:history", "mpim:history",
    "users:read", "users:read.email",  # owners of expiring credentials are mentioned (users.lookupByEmail)
}  # fmt: skip
SLACK_EVENTS = {"app_mention", "message.im", "message.channels", "message.groups", "message.mpim"}
TEAMS_SCOPES = {"personal", "team", "groupChat"}

Json = dict[str, Any]


# --- Slack ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slack() -> Json:
    manifest: Json = yaml.safe_load(SLACK_MANIFEST.read_text(encoding="utf-8"))
    return manifest


def _slack_validator() -> Draft7Validator:
    schema = json.loads(SLACK_SCHEMA.read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def _schema_errors(validator: Draft7Validator, manifest: Json) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(manifest)]


def test_slack_manifest_matches_slacks_schema(slack: Json) -> None:
    assert _schema_errors(_slack_validator(), slack) == []


def test_the_slack_schema_check_can_fail(slack: Json) -> None:
    broken = copy.deepcopy(slack)
    del broken["display_information"]
    broken["features"]["slash_commands"][0].pop("description")
    broken["settings"]["interactivity"]["request_url"] = "YOUR-HOST/slack/events"
    errors = _schema_errors(_slack_validator(), broken)
    assert len(errors) == 3, errors


def test_slack_manifest_has_what_the_bot_relies_on(slack: Json) -> None:
    assert slack["display_information"]["name"] == "secretbot"
    assert slack["features"]["bot_user"] == {"display_name": "secretbot", "always_online": True}
    (command,) = slack["features"]["slash_commands"]
    assert command["command"] == "/secretbot"
    assert command["usage_hint"] == "<pasted AADSTS error> | <app id> | help"
    assert command["should_escape"] is False
    assert set(slack["oauth_config"]["scopes"]["bot"]) == SLACK_SCOPES
    assert len(slack["oauth_config"]["scopes"]["bot"]) == len(SLACK_SCOPES)
    assert "user" not in slack["oauth_config"]["scopes"]
    settings = slack["settings"]
    assert set(settings["event_subscriptions"]["bot_events"]) == SLACK_EVENTS
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["socket_mode_enabled"] is False
    assert settings["token_rotation_enabled"] is False
    # The schema only names this pattern under a non-standard "regex" keyword, so check it here.
    assert len(slack["display_information"]["background_color"]) == 7
    int(slack["display_information"]["background_color"][1:], 16)


def test_every_slack_request_url_is_the_documented_placeholder(slack: Json) -> None:
    urls = {key_path: value for key_path, value in _walk(slack) if key_path.endswith("url")}
    assert set(urls) == {
        "features.slash_commands.0.url",
        "settings.event_subscriptions.request_url",
        "settings.interactivity.request_url",
    }
    assert set(urls.values()) == {REQUEST_URL}


def test_slack_manifest_explains_socket_mode_and_each_scope() -> None:
    text = SLACK_MANIFEST.read_text(encoding="utf-8")
    assert "SLACK_APP_TOKEN" in text and "connections:write" in text
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("- ") and stripped[2:].split(" #")[0] in SLACK_SCOPES:
            assert " # " in stripped, f"scope without a one-line reason: {stripped}"


def _walk(node: Any, where: str = "") -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        return [item for key, value in node.items() for item in _walk(value, f"{where}.{key}" if where else key)]
    if isinstance(node, list):
        return [item for index, value in enumerate(node) for item in _walk(value, f"{where}.{index}")]
    return [(where, node)]


# --- Teams: Microsoft's validator -----------------------------------------------------------------------


def _require_teams_validator() -> None:
    """Skip without node or @microsoft/app-manifest + fs-extra, unless SECRETBOT_REQUIRE_TOOLS=1: then fail."""
    missing = None
    if shutil.which("node") is None:
        missing = "node is not installed"
    else:
        for package in (APP_MANIFEST_PKG, FS_EXTRA_PKG):
            if not (package / "package.json").is_file():
                missing = f"{package.relative_to(ROOT)} is missing (run 'npm ci' in {ROOT})"
                break
    if missing is None:
        return
    missing_tool(f"Microsoft's Teams manifest validator cannot run: {missing}")


def teams_errors(*manifests: Path) -> list[list[str]]:
    """Errors reported by @microsoft/app-manifest for each manifest file (an empty list: valid)."""
    _require_teams_validator()
    result = subprocess.run(
        ["node", str(VALIDATE_JS), *map(str, manifests)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    if result.returncode not in (0, 1):
        pytest.fail(f"{VALIDATE_JS.name} exited {result.returncode}: {result.stderr.strip()[:2000]}")
    reports: list[Json] = json.loads(result.stdout)
    assert [Path(r["file"]) for r in reports] == list(manifests)
    assert result.returncode == (1 if any(r["errors"] for r in reports) else 0)
    return [r["errors"] for r in reports]


@pytest.fixture(scope="module")
def teams() -> Json:
    manifest: Json = json.loads(TEAMS_MANIFEST.read_text(encoding="utf-8"))
    return manifest


def test_teams_manifest_passes_microsofts_validator() -> None:
    assert teams_errors(TEAMS_MANIFEST) == [[]]


def test_the_teams_validator_can_fail(teams: Json, tmp_path: Path) -> None:
    missing_field = copy.deepcopy(teams)
    del missing_field["developer"]["privacyUrl"]
    wrong_values = copy.deepcopy(teams)
    wrong_values["manifestVersion"] = "1.25"
    wrong_values["bots"][0]["botId"] = "not-a-guid"
    wrong_values["bots"][0]["scopes"] = ["channel"]
    files = tmp_path / "missing-field.json", tmp_path / "wrong-values.json"
    for file, manifest in zip(files, (missing_field, wrong_values), strict=True):
        file.write_text(json.dumps(manifest), encoding="utf-8")
    missing, wrong = teams_errors(*files)
    assert len(missing) == 1 and "privacyUrl" in missing[0], missing
    assert len(wrong) == 3, wrong
    assert any(e.startswith("/manifestVersion ") for e in wrong)
    assert any(e.startswith("/bots/0/botId ") for e in wrong)
    assert any(e.startswith("/bots/0/scopes/0 ") for e in wrong)


def test_a_built_package_passes_microsofts_validator(tmp_path: Path) -> None:
    bot_id = str(uuid.uuid4())
    package = build_teams_package(bot_id, tmp_path / "app.zip", host="bot.example.com")
    with zipfile.ZipFile(package) as archive:
        archive.extract("manifest.json", tmp_path)
    assert teams_errors(tmp_path / "manifest.json") == [[]]


# --- Teams: what the bot relies on ---------------------------------------------------------------------


def test_teams_manifest_has_what_the_bot_relies_on(teams: Json) -> None:
    schema_url = "https://developer.microsoft.com/json-schemas/teams/v{}/MicrosoftTeams.schema.json"
    assert teams["$schema"] == schema_url.format(teams["manifestVersion"])
    assert teams["id"] == PLACEHOLDER_ID
    assert teams["name"]["short"] == "secretbot"
    assert teams["icons"] == {"color": "color.png", "outline": "outline.png"}
    (bot,) = teams["bots"]
    assert bot["botId"] == PLACEHOLDER_ID
    assert set(bot["scopes"]) == TEAMS_SCOPES
    assert bot["isNotificationOnly"] is False
    assert bot["supportsFiles"] is False
    assert sorted(scope for entry in bot["commandLists"] for scope in entry["scopes"]) == sorted(TEAMS_SCOPES)
    for entry in bot["commandLists"]:
        assert len(entry["scopes"]) == 1
        assert {c["title"]: c["description"] for c in entry["commands"]} == {
            "help": "What I can do",
            "diagnose": "Paste an AADSTS error or an app id",
        }
    assert teams["validDomains"] == [PLACEHOLDER_HOST]
    for key in ("websiteUrl", "privacyUrl", "termsOfUseUrl"):
        assert teams["developer"][key].startswith(f"https://{PLACEHOLDER_HOST}/")


def test_teams_manifest_uses_the_newest_schema_the_validator_bundles(teams: Json) -> None:
    _require_teams_validator()
    bundled = APP_MANIFEST_PKG / "build" / "json-schemas" / "teams"
    versions = [p.name[1:] for p in bundled.iterdir() if p.name[1:2].isdigit()]
    newest = max(versions, key=lambda v: tuple(int(part) for part in v.split(".")))
    assert teams["manifestVersion"] == newest


# --- Teams icons ---------------------------------------------------------------------------------------


def test_color_icon_is_a_full_colour_192_square() -> None:
    with Image.open(TEAMS_DIR / "color.png") as image:
        assert image.format == "PNG"
        assert image.size == (192, 192)
        rgba = image.convert("RGBA")
    alpha_low, _ = rgba.getchannel("A").getextrema()
    assert alpha_low == 255, "the colour icon must be fully opaque (a solid square; Teams rounds it)"
    colours = rgba.convert("RGB").getcolors(maxcolors=192 * 192)
    assert colours is not None and len(colours) > 2, "the colour icon is empty or flat"


def test_outline_icon_is_white_on_transparent_32_square() -> None:
    with Image.open(TEAMS_DIR / "outline.png") as image:
        assert image.format == "PNG"
        assert image.size == (32, 32)
        assert image.mode == "RGBA", "the outline icon needs an alpha channel"
        pixels = image.getcolors(maxcolors=32 * 32)
    assert pixels is not None
    kinds = {_outline_kind(pixel) for _, pixel in pixels}
    assert kinds == {"white", "transparent"}, f"only white and fully transparent pixels allowed, found {kinds}"


def _outline_kind(pixel: float | tuple[int, ...]) -> str:
    if pixel == (255, 255, 255, 255):
        return "white"
    if isinstance(pixel, tuple) and pixel[3] == 0:
        return "transparent"
    return str(pixel)


# --- Teams package -------------------------------------------------------------------------------------


def test_package_holds_the_manifest_and_icons_with_the_bot_id(tmp_path: Path) -> None:
    bot_id = str(uuid.uuid4())
    out = tmp_path / "dist" / "secretbot-teams.zip"
    assert build_teams_package(bot_id.upper(), out) == out
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(archive.read("manifest.json"))
        assert archive.read("color.png") == (TEAMS_DIR / "color.png").read_bytes()
        assert archive.read("outline.png") == (TEAMS_DIR / "outline.png").read_bytes()
    assert manifest["id"] == bot_id
    assert manifest["bots"][0]["botId"] == bot_id
    assert PLACEHOLDER_ID not in json.dumps(manifest)
    template = json.loads(TEAMS_MANIFEST.read_text(encoding="utf-8"))
    assert {k: v for k, v in manifest.items() if k not in ("id", "bots")} == {
        k: v for k, v in template.items() if k not in ("id", "bots")
    }


def test_package_puts_the_host_in_urls_and_valid_domains(tmp_path: Path) -> None:
    out = build_teams_package(str(uuid.uuid4()), tmp_path / "app.zip", host="Bot.Example.com")
    with zipfile.ZipFile(out) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["validDomains"] == ["bot.example.com"]
    assert manifest["developer"]["privacyUrl"] == "https://bot.example.com/privacy"
    assert PLACEHOLDER_HOST not in json.dumps(manifest)


def test_package_is_reproducible(tmp_path: Path) -> None:
    bot_id = str(uuid.uuid4())
    first = build_teams_package(bot_id, tmp_path / "a.zip").read_bytes()
    assert build_teams_package(bot_id, tmp_path / "b.zip").read_bytes() == first


@pytest.mark.parametrize(
    "bot_id",
    ["", "secretbot", "6f1c2a9e0b7d4c3e9a512d8e4f7b1c05", "{6f1c2a9e-0b7d-4c3e-9a51-2d8e4f7b1c05}",
     "6f1c2a9e-0b7d-4c3e-9a51-2d8e4f7b1c0", "6f1c2a9e-0b7d-4c3e-9a51-2d8e4f7b1c0g", PLACEHOLDER_ID],
)  # fmt: skip
def test_a_bot_id_that_is_not_a_guid_is_refused(bot_id: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="bot id"):
        build_teams_package(bot_id, tmp_path / "app.zip")
    assert not (tmp_path / "app.zip").exists()


@pytest.mark.parametrize("host", ["https://bot.example.com", "bot.example.com/teams", "bot.example.com:443", "", "a b"])
def test_a_host_that_is_not_a_host_name_is_refused(host: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="host"):
        build_teams_package(str(uuid.uuid4()), tmp_path / "app.zip", host=host)


def test_a_missing_template_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="manifest template"):
        build_teams_package(str(uuid.uuid4()), tmp_path / "app.zip", manifest_dir=tmp_path / "nowhere")


def test_a_copied_template_directory_can_be_used(tmp_path: Path) -> None:
    copy_dir = tmp_path / "teams"
    shutil.copytree(TEAMS_DIR, copy_dir, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    out = build_teams_package(str(uuid.uuid4()), tmp_path / "app.zip", manifest_dir=copy_dir)
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
