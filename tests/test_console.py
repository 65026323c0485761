"""The demo console's HTTP side: pastes and buttons go through the same dispatcher as Slack and Teams,
answers come back for both platforms, bad requests get a clear answer, other sites are refused, and
`serve` has no console at all. The page itself is driven in test_console_browser.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.fakegraph.samples import sample_errors, sample_reference_time
from bot.platforms.console import MAX_PASTE_CHARS, OLD_BUTTON, ConsoleOptions, ConsolePerson, Sample, is_loopback
from bot.preview.assets import ENV_NODE_MODULES
from bot.settings import Settings
from handlers.recheck import TOO_OLD
from tests.conftest import SampleTenant
from tests.paths import ROOT
from tests.redis_server import free_port
from tests.tenant_edits import PAYMENTS_APP, edited, remove_secret

SECRET = "Zk38Q~pQ0vL2nA.r7Tc-Wm1xYb_3sGd9eHf4iJ~u"  # invented, of the real modern shape
HR_SYNC = "e4d3921a-724a-47f6-a518-182b5e200159"
NOW = sample_reference_time()
OPTIONS = ConsoleOptions(
    samples=tuple(Sample(s.cause, s.title, s.text) for s in sample_errors()),
    tenant="Northwind Operations (the bundled sample tenant)",
    clock="fixed",
)


def _clock() -> datetime:
    return NOW


@pytest.fixture
async def console() -> AsyncIterator[TestClient]:
    app = create_app(Settings(snapshot="sample"), console=OPTIONS, clock=_clock)
    async with TestClient(TestServer(app)) as client:
        yield client


async def _post(client: TestClient, path: str, body: object) -> tuple[int, dict]:
    response = await client.post(path, json=body)
    return response.status, await response.json()


async def test_a_paste_is_answered_for_teams_slack_and_text(console: TestClient) -> None:
    paste = next(s.text for s in sample_errors() if s.cause == "expired_secret_in_use")
    status, body = await _post(console, "/console/api/messages", {"text": paste})
    assert status == 200
    answer = body["answer"]
    assert answer["cause"] == "expired_secret_in_use"
    assert answer["teams"]["type"] == "AdaptiveCard" and answer["teams"]["version"] == "1.5"
    assert answer["slack"]["blocks"][0]["type"] == "header" and answer["slack"]["text"]
    assert "Expired secret still in use" in answer["text"]  # the text report names the cause as the cards do
    assert body["you"] == {"text": paste, "secret_removed": False}


async def test_the_button_goes_through_the_shared_handler_table(console: TestClient) -> None:
    status, body = await _post(console, "/console/api/actions", {"verb": "diagnosis.recheck", "id": HR_SYNC})
    assert status == 200
    assert "hr-sync" in body["answer"]["text"]
    metrics = await (await console.get("/metrics")).text()
    assert 'platform="console"' in metrics


async def test_check_again_keeps_the_question_and_says_what_changed(sample_tenant: SampleTenant) -> None:
    app = create_app(Settings(), console=OPTIONS, clock=_clock, directory=sample_tenant.directory)
    async with TestClient(TestServer(app)) as client:
        paste = next(s.text for s in sample_errors() if s.cause == "expired_secret_in_use")
        _, body = await _post(client, "/console/api/messages", {"text": paste})
        [action] = body["answer"]["teams"]["actions"][:1]
        assert action["verb"] == "diagnosis.recheck" and action["data"]["id"] != PAYMENTS_APP
        button = {"verb": action["verb"], "id": action["data"]["id"]}

        status, body = await _post(client, "/console/api/actions", button)
        assert status == 200 and body["answer"]["cause"] == "expired_secret_in_use"
        assert "Re-checked 2026-11-20 09:00 UTC" in body["answer"]["text"]

        sample_tenant.graph.use_snapshot(edited(remove_secret(PAYMENTS_APP, "ci-2025")))
        status, body = await _post(client, "/console/api/actions", button)
        assert status == 200 and body["answer"]["cause"] == "expired_secret_in_use"  # removal fixes no client
        assert "Removed: secret 'ci-2025'" in body["answer"]["text"]
        assert "Removed: secret 'ci-2025'" in json.dumps(body["answer"]["slack"]["blocks"])

        status, body = await _post(client, "/console/api/actions", {**button, "id": "AbCdEfGhIjKlMnOpQrStUv"})
        assert (status, body) == (410, {"error": TOO_OLD})


async def test_an_unknown_button_says_so(console: TestClient) -> None:
    status, body = await _post(console, "/console/api/actions", {"verb": "rotation.launch_missiles", "id": HR_SYNC})
    assert (status, body) == (404, {"error": OLD_BUTTON})


async def test_a_pasted_secret_never_comes_back(console: TestClient) -> None:
    paste = f"client_secret={SECRET} AADSTS7000215 for app '{HR_SYNC}'"
    response = await console.post("/console/api/messages", json={"text": paste})
    raw = await response.text()
    assert SECRET not in raw and SECRET[:10] not in raw
    body = await response.json()
    assert body["you"]["secret_removed"] is True
    assert body["answer"]["cause"] == "secret_value_pasted"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "says"),
    [
        ("text=AADSTS7000215", "application/x-www-form-urlencoded", 415, "application/json"),
        ("{not json", "application/json", 400, "not JSON"),
        ('["AADSTS7000215"]', "application/json", 400, "JSON object"),
        ('{"text": 7000215}', "application/json", 400, "'text'"),
    ],
)
async def test_bad_requests_get_a_clear_answer(
    console: TestClient, body: str, content_type: str, status: int, says: str
) -> None:
    response = await console.post("/console/api/messages", data=body, headers={"Content-Type": content_type})
    assert response.status == status
    assert says in (await response.json())["error"]


async def test_a_paste_over_1_mb_is_refused_and_1_mb_is_read(console: TestClient) -> None:
    status, body = await _post(console, "/console/api/messages", {"text": "x" * (MAX_PASTE_CHARS + 1)})
    assert status == 413 and "1 MB" in body["error"]
    quotes = '"' * 1000  # each one is two bytes once JSON-escaped
    text = ("AADSTS7000215 " + quotes) * (MAX_PASTE_CHARS // 1014)
    status, body = await _post(console, "/console/api/messages", {"text": text})
    assert status == 200 and body["answer"]["cause"] == "no_app_id"
    assert len(body["you"]["text"]) < 5000  # the transcript copy is cut, the diagnosis read all of it


async def test_other_hosts_and_other_sites_are_refused(console: TestClient) -> None:
    rebound = await console.get("/console/api/about", headers={"Host": "attacker.example"})
    assert rebound.status == 403
    cross = await console.post(
        "/console/api/messages", json={"text": "AADSTS7000215"}, headers={"Origin": "https://attacker.example"}
    )
    assert cross.status == 403
    same = await console.post(
        "/console/api/messages",
        json={"text": "AADSTS7000215"},
        headers={"Origin": str(console.make_url("")).rstrip("/")},
    )
    assert same.status == 200


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("10.0.0.5", False),
        ("localhost.attacker.example", False),
        ("", False),
    ],
)
def test_loopback_names(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


async def test_the_page_and_the_about_box(console: TestClient) -> None:
    page = await console.get("/")
    assert page.status == 200
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert "console.js" in await page.text()
    about = await (await console.get("/console/api/about")).json()
    assert about["tenant"] == OPTIONS.tenant
    assert [s["cause"] for s in about["samples"]] == [s.cause for s in sample_errors()]


async def test_without_the_renderer_the_page_is_told_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(ENV_NODE_MODULES, str(tmp_path / "node_modules"))
    app = create_app(Settings(snapshot="sample"), console=OPTIONS, clock=_clock)
    async with TestClient(TestServer(app)) as client:
        about = await (await client.get("/console/api/about")).json()
        assert "npm ci" in about["renderer"]
        assert (await client.get("/console/vendor/adaptivecards.min.js")).status == 404
        status, body = await _post(client, "/console/api/messages", {"text": "AADSTS7000222"})
        assert status == 200 and "AADSTS7000222" in body["answer"]["text"]  # what the page shows instead


async def test_serve_has_no_console() -> None:
    async with TestClient(TestServer(create_app(Settings(snapshot="sample")))) as client:
        assert (await client.get("/")).status == 404
        assert (await client.post("/console/api/messages", json={"text": "AADSTS7000215"})).status == 404


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--no-browser", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_demo_with_an_unreadable_snapshot_says_so_in_one_line(tmp_path: object) -> None:
    result = _demo("--snapshot", "/nonexistent/tenant.json", "--port", str(free_port()))
    assert result.returncode == 2
    assert result.stderr.startswith("secretbot: ") and len(result.stderr.strip().splitlines()) == 1
    assert "tenant.json" in result.stderr


def test_demo_on_a_busy_port_suggests_another() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = _demo("--port", str(busy.getsockname()[1]))
    assert result.returncode == 2
    assert "--port" in result.stderr and "Traceback" not in result.stderr


async def test_a_large_paste_full_of_distinct_secrets_comes_back_with_every_one_cut(console: TestClient) -> None:
    # Large enough to be parsed in a worker thread; every value distinct, so each needs its own cut.
    values = [f"{n:06d}Xk9_{n * 7919 % 1000003:07d}qZ" for n in range(25_000)]
    paste = "".join(f"client_secret={value}&" for value in values)
    assert len(paste) <= MAX_PASTE_CHARS
    status, body = await _post(console, "/console/api/messages", {"text": paste})
    assert status == 200
    assert body["you"]["secret_removed"] is True
    assert body["you"]["text"].startswith("client_secret=[redacted-secret]&client_secret=[redacted-secret]&")
    assert body["answer"]["cause"] == "secret_value_pasted"
    shown = json.dumps(body)
    assert not [value for value in values if value in shown]


INVOICE_WORKER = "95814675-5260-4ba9-9362-3b53b93e295f"  # the sample app tagged secretbot:rotate
ALEX = ConsolePerson("requester", "Alex", "asks", "console-alex")
SAM = ConsolePerson("approver", "Sam", "approver", "console-sam")


async def test_the_console_acts_as_the_person_chosen_and_refuses_a_requester_approving() -> None:
    options = ConsoleOptions(samples=(), tenant="sample", clock="fixed", people=(ALEX, SAM))
    app = create_app(Settings(snapshot="sample", approvers=(SAM.user_id,)), console=options, clock=_clock)
    async with TestClient(TestServer(app)) as client:
        about = await (await client.get("/console/api/about")).json()
        assert [p["name"] for p in about["people"]] == ["Alex", "Sam"]
        assert about["rotation"] == "on, with local fakes for: token endpoint, Key Vault"
        status, body = await _post(client, "/console/api/messages", {"text": "rotate x", "as": "mallory"})
        assert (status, body) == (400, {"error": "Nobody of that name is in this demo."})

        _, body = await _post(client, "/console/api/messages", {"text": f"rotate {INVOICE_WORKER}", "as": "requester"})
        rotation = body["answer"]["rotation"]
        assert rotation["state"] == "requested" and not rotation["working"]
        assert "Requested by Alex" in body["answer"]["text"]
        approve = {"verb": "rotation.approve", "id": rotation["id"]}
        status, body = await _post(client, "/console/api/actions", {**approve, "as": "requester"})
        assert status == 200 and body["for"] == "requester" and "you cannot approve it" in body["notice"]

        status, body = await _post(client, "/console/api/actions", {**approve, "as": "approver"})
        assert status == 200 and body["answer"]["rotation"]["working"] is True
        assert "approved by Sam" in body["answer"]["text"]
        followed = await (await client.get(f"/console/api/rotations/{rotation['id']}")).json()
        assert followed["answer"]["rotation"]["id"] == rotation["id"]
        assert (await client.get("/console/api/rotations/0123456789abcdef")).status == 404


async def test_request_rotation_on_a_warning_in_the_channel_view_points_the_warning_at_the_request() -> None:
    """As on Slack and Teams: the warning stays (its rows, its buttons) with a line naming the request,
    and the request comes back as a message of its own; the channel view keeps the line."""
    options = ConsoleOptions(samples=(), tenant="sample", clock="fixed", people=(ALEX, SAM))
    app = create_app(Settings(snapshot="sample", approvers=(SAM.user_id,)), console=options, clock=_clock)
    async with TestClient(TestServer(app)) as client:
        status, scanned = await _post(client, "/console/api/scan", {})
        assert status == 200
        [warning] = [m for m in scanned["messages"] if "rotation.request" in json.dumps(m.get("answer"))]
        blocks = warning["answer"]["slack"]["blocks"]
        [button] = [e for b in blocks for e in b.get("elements", []) if e.get("action_id") == "rotation.request"]
        press = {"verb": "rotation.request", "id": button["value"]}
        assert press["id"] != INVOICE_WORKER  # the warning's id, not an app id
        status, body = await _post(client, "/console/api/actions", {**press, "as": "requester"})
        channel = await (await client.get("/console/api/channel")).json()
    assert status == 200 and body["answer"]["cause"] == "expiry_warning"
    request = body["request"]
    assert request["rotation"]["state"] == "requested" and "Requested by Alex" in request["text"]
    line = f"Rotation requested by Alex for invoice-worker, request {request['rotation']['id']}"
    assert f"{line}: see the request message below." in json.dumps(body["answer"]["teams"])
    assert f"{line}: see the request card." in body["answer"]["text"]
    assert "rotation.request" in json.dumps(body["answer"]["teams"])  # still the warning, with its buttons
    [shown] = [m for m in channel["messages"] if m["id"] == warning["id"]]
    assert line in shown["answer"]["text"]
