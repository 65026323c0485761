"""The `secretbot diagnose` contract: exit codes, one-line errors, JSON keys and types."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

from bot.cli import main
from bot.fakegraph import sample_snapshot_path
from bot.fakegraph.samples import sample_errors
from cards.jsonview import render_json
from cards.text import render_text
from handlers.conversation import reply
from tests.conftest import SampleTenant
from tests.redis_server import free_port

SAMPLE = {s.cause: s for s in sample_errors()}
NOW = "2026-11-20T09:00:00Z"


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def test_json_output_follows_the_contract() -> None:
    result = run(
        "diagnose", "--snapshot", "sample", "--now", NOW, "--format", "json", SAMPLE["expired_secret_in_use"].text
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"input", "errors", "app", "findings", "graph"}
    assert set(data["input"]) == {
        "codes", "app_id", "app_id_masked", "tenant", "trace_id", "correlation_id", "timestamp", "error",
        "secret_value_detected",
    }  # fmt: skip
    assert data["input"]["codes"] == [7000222]
    assert data["input"]["timestamp"] == "2026-11-20T08:58:12Z"
    assert data["errors"][0] == {
        "code": 7000222,
        "name": "InvalidClientSecretExpiredKeysProvided",
        "summary": data["errors"][0]["summary"],
        "lookup_url": "https://login.microsoftonline.com/error?code=7000222",
    }
    app = data["app"]
    assert app["found_in"] == "tenant" and app["display_name"] == "payments-api"
    for credential in app["credentials"]:
        assert set(credential) == {"kind", "key_id", "display_name", "hint", "start", "end", "state", "days_left"}
        assert credential["state"] in {"active", "expired", "not_yet_valid"}
        assert isinstance(credential["days_left"], int)
        assert credential["key_id"] == credential["key_id"].lower()
    first = data["findings"][0]
    assert first["cause"] == "expired_secret_in_use" and first["severity"] == "error"
    assert all(isinstance(line, str) for f in data["findings"] for line in f["evidence"] + f["fix"])
    assert data["graph"] == {"mode": "snapshot", "round_trips": 1, "missing_permissions": []}  # one $batch


def test_stdin_and_dash_read_the_paste() -> None:
    piped = run("diagnose", "--format", "json", stdin=SAMPLE["no_app_id"].text)
    dashed = run("diagnose", "-", "--format", "json", stdin=SAMPLE["no_app_id"].text)
    assert piped.returncode == dashed.returncode == 0
    assert json.loads(piped.stdout) == json.loads(dashed.stdout)
    assert json.loads(piped.stdout)["graph"]["mode"] == "none"


def test_text_report_leads_with_the_cause() -> None:
    result = run("diagnose", "--snapshot", "sample", SAMPLE["all_secrets_expired"].text)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert "[error] All secrets expired: " in lines[2]
    assert "Credentials of 'nightly-export'" in result.stdout


def test_text_report_names_causes_as_the_cards_do_and_shows_the_fix() -> None:
    result = run("diagnose", "--snapshot", "sample", "--now", NOW, SAMPLE["expired_secret_in_use"].text)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "[error] Expired secret still in use: " in out
    assert "expired_secret_in_use" not in out and "_" not in out.split("What the error code means")[0]
    steps = out.split("How to fix it:\n", 1)[1].splitlines()
    assert steps[0].strip().startswith("1. ") and steps[1].strip().startswith("2. ")
    assert "1 failed sign-in with" in out and "(s)" not in out
    assert "Checked with Microsoft Graph (snapshot, 1 request)." in out


def test_text_report_without_an_app_id_leads_with_the_codes_fix() -> None:
    """Only a note ("no app id") was found: the code's meaning and its fix steps lead, as on the cards."""
    result = run("diagnose", "--snapshot", "sample", "--now", NOW, SAMPLE["no_app_id"].text)
    assert result.returncode == 0, result.stderr
    headline, rest = result.stdout.split("[info] No app id: ", 1)
    assert "How to fix it:\n    1. " in headline and "\n    2. " in headline
    assert "Paste the application (client) id" in rest
    assert "without an app id there was nothing to ask Microsoft Graph" in result.stdout


def test_text_report_counts_sign_ins_with_real_plurals(tmp_path: Path) -> None:
    """A tenant snapshot where the app failed three times: "3 failed sign-ins", not "sign-in(s)"."""
    tenant = json.loads(sample_snapshot_path().read_text("utf-8"))
    failed = next(s for s in tenant["signIns"] if s["status"]["errorCode"] == 7000222)
    for n in (1, 2):
        tenant["signIns"].append(
            failed | {"id": f"00000000-0000-4000-8000-00000000000{n}", "ipAddress": f"198.51.100.{n}"}
        )
    path = tmp_path / "tenant.json"
    path.write_text(json.dumps(tenant))
    result = run("diagnose", "--snapshot", str(path), "--now", NOW, SAMPLE["expired_secret_in_use"].text)
    assert result.returncode == 0, result.stderr
    assert ": 3 failed sign-ins with AADSTS7000222, the last at" in result.stdout
    assert "(s)" not in result.stdout


def test_nothing_recognised_is_a_normal_answer() -> None:
    for paste in ("the build is red, any idea?", "AADSTS"):
        result = run("diagnose", stdin=paste)
        assert result.returncode == 0
        assert "could not find an Entra ID error" in result.stdout
        assert "AADSTS7000215" in result.stdout  # an example of what to paste


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("diagnose", "--bogus", "x"), "unrecognized arguments: --bogus"),
        (("diagnose", "--format", "yaml", "x"), "invalid choice"),
        (("diagnose", "--now", "yesterday", "x"), "not an ISO 8601 time"),
        (("diagnose", "--snapshot", "/nonexistent/tenant.json", "x"), "tenant.json"),
        (("frobnicate",), "invalid choice"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_snapshot_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "tenant.json"
    bad.write_text('{"applications": [ {"appId": 42} ]')
    result = run("diagnose", "--snapshot", str(bad), "AADSTS7000215")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_az_ad_app_list_export_works_as_a_snapshot(tmp_path: Path) -> None:
    export = [
        {
            "appId": "11112222-3333-4444-5555-666677778888",
            "id": "99990000-aaaa-bbbb-cccc-ddddeeeeffff",
            "displayName": "exported-app",
            "signInAudience": "AzureADMyOrg",
            "passwordCredentials": [
                {
                    "customKeyIdentifier": None,
                    "displayName": "old",
                    "endDateTime": "2026-01-01T00:00:00Z",
                    "hint": "abc",
                    "keyId": "12121212-3434-5656-7878-909090909090",
                    "secretText": None,
                    "startDateTime": "2025-01-01T00:00:00Z",
                }
            ],
            "keyCredentials": [],
        }
    ]
    path = tmp_path / "apps.json"
    path.write_text(json.dumps(export))
    paste = "AADSTS7000222: The provided client secret keys for app '11112222-3333-4444-5555-666677778888' are expired."
    result = run("diagnose", "--snapshot", str(path), "--now", NOW, "--format", "json", paste)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["findings"][0]["cause"] == "all_secrets_expired"
    assert data["app"]["display_name"] == "exported-app"


def test_teams_package_command(tmp_path: Path) -> None:
    out = tmp_path / "app.zip"
    bot_id = "5f2a1c3e-7b4d-4e8f-9a01-23456789abcd"
    result = run("teams-package", "--bot-id", bot_id, "--host", "bot.example.com", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.exists()
    hostless = run("teams-package", "--bot-id", bot_id, "--out", str(tmp_path / "hostless.zip"))
    assert hostless.returncode == 2 and "--host" in hostless.stderr
    assert len(hostless.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "hostless.zip").exists()  # no package that points Teams at YOUR-HOST
    bad = run("teams-package", "--bot-id", "not-a-guid", "--out", str(tmp_path / "x.zip"))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_serve_answers_health_and_stops() -> None:
    port = free_port()
    env = os.environ | {"PORT": str(port), "HOST": "127.0.0.1", "SECRETBOT_SNAPSHOT": "sample"}
    server = subprocess.Popen([sys.executable, "-m", "bot", "serve"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                    ready = json.loads(response.read())
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        assert ready == {
            "ready": True,
            "redis": "ok",
            "queue": "ok",
            "graph": "snapshot",
            "slack": False,
            "teams": False,
            "rotation": "not offered",  # no SECRETBOT_APPROVERS: nobody could approve
        }
    finally:
        server.terminate()
        _, logs = server.communicate(timeout=10)
    assert all(json.loads(line)["level"] for line in logs.splitlines() if line.startswith("{"))


def test_deleted_app_answer_says_who_deleted_it_and_when() -> None:
    result = run("diagnose", "--snapshot", "sample", "--now", NOW, "--format", "json", SAMPLE["app_deleted"].text)
    assert result.returncode == 0, result.stderr
    first = json.loads(result.stdout)["findings"][0]
    assert first["cause"] == "app_deleted"
    assert "Audit log: priya.raman@northwind-ops.example deleted the app at 2026-11-02 16:40 UTC." in first["evidence"]


def test_correlation_id_missing_from_the_log_is_said_and_nearby_failures_shown() -> None:
    paste = (
        "AADSTS7000215: Invalid client secret provided for app '8c3f846c-c6a9-42d3-83f8-4c485e5c4176'. "
        "Correlation ID: 00000000-1111-4222-8333-444444444444 Timestamp: 2026-11-20 08:54:00Z"
    )
    result = run("diagnose", "--snapshot", "sample", "--now", NOW, paste)
    assert result.returncode == 0, result.stderr
    assert "no sign-in with correlation id 00000000-1111-4222-8333-444444444444 in the last 30 days" in result.stdout
    assert "1 failed sign-in with AADSTS7000215, the last at 2026-11-20 08:53 UTC from 203.0.113.80" in result.stdout
    assert "added secret 'agent-2026-11'" in result.stdout


# Start-up time: a command imports what it needs when it runs. These ask a fresh interpreter which
# modules one diagnosis loaded; the figures themselves are in docs/benchmarks.md.
SERVER_STORE_AND_SDKS = {
    "aiohttp", "redis", "fakeredis", "msgraph", "kiota_abstractions", "httpx", "slack_bolt", "slack_sdk",
    "microsoft_agents", "playwright",
}  # fmt: skip
BOT_PARTS_FOR_OTHER_COMMANDS = {
    "bot.platforms", "bot.state", "bot.server", "bot.app", "bot.demo", "bot.preview.shots", "bot.rotations_cli",
}  # fmt: skip


@pytest.mark.parametrize("text", ["help", "the build is red, any idea?", *(s.text for s in sample_errors())])
def test_without_graph_the_command_answers_as_the_chat_handlers_do_without_a_directory(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The command answers a paste without an event loop; the chat handlers' answer is the reference.
    expected = asyncio.run(reply(text, directory=None, now=datetime.fromisoformat(NOW)))
    assert main(["diagnose", "--now", NOW, text]) == 0
    assert capsys.readouterr().out == render_text(expected)
    assert main(["diagnose", "--now", NOW, "--format", "json", text]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(render_json(expected)))


@pytest.mark.parametrize("cause", sorted(SAMPLE))
async def test_a_snapshot_diagnosis_answers_as_the_fake_graph_does_over_http(
    cause: str, sample_tenant: SampleTenant, capsys: pytest.CaptureFixture[str]
) -> None:
    # The command asks the fake Graph in its own process; the same paste over real HTTP is the reference.
    text = SAMPLE[cause].text
    expected = await reply(text, directory=sample_tenant.directory, now=datetime.fromisoformat(NOW))
    assert (
        await asyncio.to_thread(main, ["diagnose", "--snapshot", "sample", "--now", NOW, "--format", "json", text]) == 0
    )
    answer = json.loads(capsys.readouterr().out)
    assert answer == json.loads(json.dumps(render_json(expected)))
    assert answer["graph"]["round_trips"] == sample_tenant.graph.round_trips  # each $batch still counts once
    assert answer["graph"]["mode"] == "snapshot"


def modules_loaded_by(*args: str) -> tuple[str, set[str]]:
    """What `secretbot ARGS` printed, and the modules (and their packages) it had imported by the end."""
    script = (
        "import sys; from bot.cli import main; main(sys.argv[1:]); print('-- loaded:', *sorted(sys.modules), sep='\\n')"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "SECRETBOT_", "IDENTITY_", "MSI_"))}
    result = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60, check=False, env=env
    )
    assert result.returncode == 0, result.stderr
    output, _, modules = result.stdout.partition("-- loaded:\n")
    return output, {m for name in modules.split() for m in (name, name.partition(".")[0])}


def test_a_diagnosis_without_graph_runs_no_event_loop_and_loads_no_server_store_or_sdk() -> None:
    # asyncio alone is ~30 ms of a ~150 ms start; the libraries below take far longer still.
    output, loaded = modules_loaded_by("diagnose", SAMPLE["expired_secret_in_use"].text)
    assert "expired" in output  # it did answer
    assert loaded & (SERVER_STORE_AND_SDKS | BOT_PARTS_FOR_OTHER_COMMANDS | {"asyncio", "azure", "croniter"}) == set()
    assert loaded & {"bot.graph", "bot.fakegraph.snapshot", "bot.fakegraph.server"} == set()


def test_a_diagnosis_against_a_snapshot_asks_the_fake_graph_in_process_and_loads_no_http_sdk_store_or_server() -> None:
    output, loaded = modules_loaded_by("diagnose", "--snapshot", "sample", SAMPLE["expired_secret_in_use"].text)
    assert "Checked with Microsoft Graph (snapshot, 1 request)" in output
    assert {"bot.graph.directory", "bot.fakegraph.local"} <= loaded  # the Graph directory, over the fake's core
    # aiohttp (~0.1 s) is neither the fake's server nor the client; azure-core (~20 ms) neither.
    assert loaded & (SERVER_STORE_AND_SDKS | BOT_PARTS_FOR_OTHER_COMMANDS | {"azure", "bot.fakegraph.server"}) == set()
