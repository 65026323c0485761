"""The HTTP edge against hostile clients: unsigned or malformed Slack requests, replays, slow and
oversized requests, foreign Host names and junk request ids. Each gets a 4xx (or is dropped) and
leaves one warning line, never a 500 or a stack trace; honest requests still work.

The server is the real app on a real socket (aiohttp's TestServer), the Slack Web API the local fake.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.edge import MAX_BODY_BYTES, Limits
from bot.logs import JsonFormatter
from bot.platforms.console import MAX_BODY_BYTES as CONSOLE_MAX
from bot.platforms.console import ConsoleOptions
from tests.fake_slack import FakeSlack
from tests.redis_server import free_port
from tests.test_slack import PAYMENTS_APP, SEED, SIGNING_SECRET, event, eventually, settings, signed

JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# Short bounds so a test waits about a second, not the production 10-15 s.
QUICK = Limits(header_timeout=1.0, body_timeout=1.0)
GIVE_UP = 8.0  # a test's own deadline: far past QUICK's bounds, far below a trickle's natural end


@asynccontextmanager
async def serving(fake: FakeSlack, limits: Limits = QUICK, **app: Any) -> AsyncIterator[TestClient]:
    server = TestServer(create_app(settings(fake), limits=limits, **app))
    await server.start_server(**limits.server_options())  # TestServer's own constructor drops them
    async with TestClient(server) as client:
        yield client


@pytest.fixture
async def client(fake_slack: FakeSlack) -> AsyncIterator[TestClient]:
    async with serving(fake_slack) as client:
        yield client


def problems(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Records at WARNING or above."""
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


def assert_one_warning(caplog: pytest.LogCaptureFixture, says: str) -> None:
    records = problems(caplog)
    assert [r.levelname for r in records] == ["WARNING"], [r.getMessage() for r in records]
    assert says in records[0].getMessage()
    assert records[0].exc_info is None and "Traceback" not in caplog.text


def raw_signed(body: bytes, *, secret: str = SIGNING_SECRET) -> dict[str, str]:
    """Slack's scheme over bytes, for bodies slack_sdk's signer cannot take (not UTF-8)."""
    timestamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": f"v0={digest}"}


def with_timestamp(body: str, timestamp: str) -> dict[str, str]:
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signed(body)["X-Slack-Signature"]}


GOOD_EVENT = event("message", SEED, event_id="EvHostile")
TRUNCATED = GOOD_EVENT[: len(GOOD_EVENT) // 2]
NOT_UTF8 = b'{"type": "event_callback", "text": "\xff\xfe"}'
BROKEN_FORM = "payload=%7Bnot+json"
BAD_PERCENT = "command=%zz%"

# (why, body, headers, status, what the warning says); headers are made when the test runs, so that
# signed ones are fresh then (collecting the whole suite can take longer than Slack's window).
Headers = Callable[[], dict[str, str]]
HOSTILE: list[tuple[str, str | bytes, Headers, int, str]] = [
    ("no signature headers", GOOD_EVENT, lambda: JSON, 401, "no signature"),
    ("garbage timestamp", GOOD_EVENT, lambda: JSON | with_timestamp(GOOD_EVENT, "yesterday"), 401, "not a number"),
    ("empty timestamp", GOOD_EVENT, lambda: JSON | with_timestamp(GOOD_EVENT, ""), 401, "no signature"),
    ("old timestamp", GOOD_EVENT, lambda: JSON | signed(GOOD_EVENT, age=400), 401, "5 minutes"),
    ("future timestamp", GOOD_EVENT, lambda: JSON | signed(GOOD_EVENT, age=-400), 401, "5 minutes"),
    ("forged signature", GOOD_EVENT, lambda: JSON | signed(GOOD_EVENT, secret="guess"), 401, "bad signature"),
    ("truncated JSON, unsigned", TRUNCATED, lambda: JSON, 401, "no signature"),
    ("truncated JSON, signed", TRUNCATED, lambda: JSON | signed(TRUNCATED), 400, "malformed body"),
    ("JSON that is not an object", "[1, 2]", lambda: JSON | signed("[1, 2]"), 400, "malformed body"),
    ("form with a broken payload", BROKEN_FORM, lambda: FORM | signed(BROKEN_FORM), 400, "malformed"),
    ("bad percent-encoding, forged", BAD_PERCENT, lambda: FORM | signed(BAD_PERCENT, secret="x"), 401, "bad signature"),
    ("not UTF-8", NOT_UTF8, lambda: JSON | raw_signed(NOT_UTF8), 401, "not UTF-8"),
    ("huge body", "x" * (MAX_BODY_BYTES + 1), lambda: JSON, 413, "larger than"),
    ("not the gzip it claims to be", b"\x1f\x8bjunk", lambda: JSON | {"Content-Encoding": "gzip"}, 400, "malformed"),
    ("wrong content type, unsigned", "<xml/>", lambda: {"Content-Type": "text/xml"}, 401, "no signature"),
    ("wrong content type, signed", "<xml/>", lambda: {"Content-Type": "text/xml"} | signed("<xml/>"), 400, "malformed"),
]


@pytest.mark.parametrize(("why", "body", "headers", "status", "says"), HOSTILE, ids=[row[0] for row in HOSTILE])
async def test_hostile_slack_requests_get_a_4xx_and_one_warning(
    client: TestClient,
    fake_slack: FakeSlack,
    caplog: pytest.LogCaptureFixture,
    why: str,
    body: str | bytes,
    headers: Headers,
    status: int,
    says: str,
) -> None:
    caplog.set_level(logging.INFO)
    response = await client.post("/slack/events", data=body, headers=headers())
    assert response.status == status, why
    assert_one_warning(caplog, says)
    if status == 401:  # the log says which check failed; a forger is not told
        assert await response.json() == {"error": "not a verified Slack request"}
    await asyncio.sleep(0.1)
    assert fake_slack.calls == []  # nothing ran, not even auth.test


async def test_a_huge_chunked_body_is_cut_at_the_limit(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while it is read
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b"x" * 65536

    response = await client.post("/slack/events", data=chunks(), headers=JSON)
    assert response.status == 413
    assert_one_warning(caplog, "larger than")


async def test_a_signed_request_still_works_after_the_hostile_ones(client: TestClient, fake_slack: FakeSlack) -> None:
    for _, body, headers, _, _ in HOSTILE:
        await client.post("/slack/events", data=body, headers=headers())
    assert (await client.post("/slack/events", data=GOOD_EVENT, headers=JSON | signed(GOOD_EVENT))).status == 200
    await eventually(lambda: bool(fake_slack.called("chat.update")))


# --- replays ------------------------------------------------------------------------------------


def slash_command(fake: FakeSlack) -> str:
    form = {"command": "/secretbot", "text": PAYMENTS_APP, "user_id": "U0ALICE", "channel_id": "C0CHAN"}
    return urlencode(form | {"response_url": fake.url("/response/replay")})


def button_click(fake: FakeSlack) -> str:
    payload = {
        "type": "block_actions",
        "user": {"id": "U0ALICE", "name": "alice"},
        "channel": {"id": "C0CHAN"},
        "container": {"type": "message", "message_ts": "1700000000.000009", "channel_id": "C0CHAN"},
        "message": {"ts": "1700000000.000009"},
        "actions": [{"action_id": "diagnosis.recheck", "value": PAYMENTS_APP, "type": "button", "block_id": "b"}],
        "response_url": fake.url("/response/click"),
        "trigger_id": "1.2.3",
    }
    return urlencode({"payload": json.dumps(payload)})


async def test_a_replayed_slash_command_is_answered_once(
    client: TestClient, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    body = slash_command(fake_slack)
    headers = FORM | signed(body)  # captured once, sent three times
    first = await client.post("/slack/events", data=body, headers=headers)
    assert first.status == 200 and "Checking" in (await first.json())["text"]
    await eventually(lambda: bool(fake_slack.called("response_url")))
    caplog.clear()
    for _ in range(2):
        again = await client.post("/slack/events", data=body, headers=headers)
        assert again.status == 200 and await again.read() == b""
    await asyncio.sleep(0.3)  # time for a wrongly run replay to reach the fake Slack
    assert len(fake_slack.called("response_url")) == 1
    assert [r.getMessage() for r in problems(caplog)] == ["replayed slack request dropped"] * 2


async def test_a_replayed_button_click_runs_once(client: TestClient, fake_slack: FakeSlack) -> None:
    body = button_click(fake_slack)
    headers = FORM | signed(body)
    assert (await client.post("/slack/events", data=body, headers=headers)).status == 200
    await eventually(lambda: bool(fake_slack.called("chat.update")))
    assert (await client.post("/slack/events", data=body, headers=headers)).status == 200
    await asyncio.sleep(0.3)
    assert len(fake_slack.called("chat.update")) == 1


async def test_the_same_command_signed_anew_is_a_new_request(client: TestClient, fake_slack: FakeSlack) -> None:
    body = slash_command(fake_slack)
    assert (await client.post("/slack/events", data=body, headers=FORM | signed(body))).status == 200
    await eventually(lambda: len(fake_slack.called("response_url")) == 1)
    # A person typing the same command again a second later: Slack signs it with a new timestamp.
    assert (await client.post("/slack/events", data=body, headers=FORM | signed(body, age=-1))).status == 200
    await eventually(lambda: len(fake_slack.called("response_url")) == 2)


async def test_with_the_state_store_down_a_command_is_answered_with_one_warning(
    fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    down = settings(fake_slack, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    async with TestClient(TestServer(create_app(down))) as client:
        caplog.clear()
        body = slash_command(fake_slack)
        assert (await client.post("/slack/events", data=body, headers=FORM | signed(body))).status == 200
        await eventually(lambda: bool(fake_slack.called("response_url")))
    # One line each: the worker waiting for Redis (once per outage, however long), the request's
    # claim, the answer run in this process instead of queued, and its Check again seeing the app only.
    assert sorted(r.getMessage() for r in problems(caplog)) == [
        "job queue unavailable (ConnectionError from ConnectionRefusedError): answering in this process",
        "job queue unreachable (ConnectionError from ConnectionRefusedError): the worker waits for Redis",
        "state store unavailable (ConnectionError from ConnectionRefusedError): answering without de-duplication",
        "state store unavailable (ConnectionError from ConnectionRefusedError): question not kept, "
        "Check again will see the app only",
    ]


# --- slow and oversized clients on a real socket -------------------------------------------------


async def exchange(client: TestClient, head: bytes, trickle: bytes = b"", every: float = 0.2) -> tuple[bytes, float]:
    """Send `head` at once, then `trickle` a byte at a time; return what the server answered and how
    long until it closed the connection."""
    assert client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    started = time.monotonic()

    async def send_slowly() -> None:
        for byte in trickle:
            await asyncio.sleep(every)
            writer.write(bytes([byte]))
            await writer.drain()

    writer.write(head)
    sender = asyncio.ensure_future(send_slowly())
    try:
        async with asyncio.timeout(GIVE_UP):
            answer = await reader.read()  # until the server closes
    except ConnectionResetError:
        answer = b""
    finally:
        sender.cancel()
        writer.close()
    return answer, time.monotonic() - started


async def test_a_client_trickling_its_body_is_cut_off_with_408(
    client: TestClient, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    body = b"x" * 100  # 20 s at this pace
    head = b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n"
    answer, closed_after = await exchange(client, head, body)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert closed_after < GIVE_UP
    assert_one_warning(caplog, "took longer than 1 s")
    assert fake_slack.calls == []


async def test_every_route_bounds_its_body(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 50\r\n\r\n"
    answer, closed_after = await exchange(client, head, b"y" * 50)
    assert answer.startswith(b"HTTP/1.1 408 ") and closed_after < GIVE_UP
    assert_one_warning(caplog, "took longer")


async def test_a_client_trickling_its_headers_is_disconnected(client: TestClient) -> None:
    head = b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    answer, closed_after = await exchange(client, head, b"X-Slow: " + b"z" * 100)  # 20 s at this pace
    assert answer == b"" and closed_after < GIVE_UP


async def test_a_declared_oversize_body_gets_413_before_it_is_sent(client: TestClient) -> None:
    head = f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n"
    assert client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(head.encode())
    async with asyncio.timeout(GIVE_UP):
        assert (await reader.readline()).startswith(b"HTTP/1.1 413 ")
    writer.close()


async def test_the_console_takes_its_own_larger_limit_and_no_more(fake_slack: FakeSlack) -> None:
    async with serving(fake_slack, console=LOOPBACK_CONSOLE) as client:
        paste = {"text": "AADSTS7000215 " + "é" * (MAX_BODY_BYTES // 2)}  # over 1 MiB once JSON-escaped
        assert (await client.post("/console/api/messages", json=paste)).status == 200
        head = f"POST /console/api/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {CONSOLE_MAX + 1}\r\n\r\n"
        assert client.port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
        writer.write(head.encode())
        async with asyncio.timeout(GIVE_UP):
            assert (await reader.readline()).startswith(b"HTTP/1.1 413 ")
        writer.close()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: " + b"a" * 10_000 + b"\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nnot-hex\r\n",
    ],
    ids=["overlong header", "malformed header", "broken chunked body"],
)
async def test_malformed_http_is_one_warning_without_a_stack(
    client: TestClient, caplog: pytest.LogCaptureFixture, request_bytes: bytes
) -> None:
    answer, _ = await exchange(client, request_bytes)
    assert answer.startswith((b"HTTP/1.0 400 ", b"HTTP/1.1 400 "))
    assert_one_warning(caplog, "malformed")


async def test_junk_instead_of_http_is_no_warning_and_no_stack(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answer, _ = await exchange(client, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 TLS hello\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 400 ")
    # aiohttp's own choice: the usual internet noise on a plain-HTTP port is logged at debug level.
    assert problems(caplog) == []
    assert all(r.exc_info is None for r in caplog.records)


# --- the demo on loopback answers only to loopback names ----------------------------------------

LOOPBACK_CONSOLE = ConsoleOptions(samples=(), tenant="sample", clock="now", loopback_only=True)


@pytest.mark.parametrize("path", ["/", "/console/static/console.js", "/console/api/about", "/healthz", "/metrics"])
async def test_on_loopback_every_route_refuses_a_foreign_host(
    fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    async with serving(fake_slack, console=LOOPBACK_CONSOLE) as client:
        assert (await client.get(path)).status == 200  # TestClient sends Host: 127.0.0.1:<port>
        assert (await client.get(path, headers={"Host": f"localhost:{client.port}"})).status == 200
        caplog.clear()
        rebound = await client.get(path, headers={"Host": "evil.example"})
        assert rebound.status == 403
        assert_one_warning(caplog, "127.0.0.1 or localhost only")


async def test_slack_on_the_demo_on_loopback_is_refused_for_a_foreign_host(fake_slack: FakeSlack) -> None:
    async with serving(fake_slack, console=LOOPBACK_CONSOLE) as client:
        headers = JSON | signed(GOOD_EVENT) | {"Host": "evil.example"}
        assert (await client.post("/slack/events", data=GOOD_EVENT, headers=headers)).status == 403


# --- request ids ----------------------------------------------------------------------------------


@pytest.fixture
def json_lines(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.handler.setFormatter(JsonFormatter())  # the production format, request id included
    yield caplog


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("req-2026.11_20-abc", True),
        ("a" * 64, True),
        ("a" * 3032, False),
        ("two words", False),
        ('x", "level": "forged', False),
        ("ünïcode", False),
    ],
)
async def test_a_request_id_is_kept_only_when_short_and_plain(
    client: TestClient, json_lines: pytest.LogCaptureFixture, sent: str, kept: bool
) -> None:
    response = await client.post("/slack/events", data="{}", headers=JSON | {"X-Request-Id": sent})
    assert response.status == 401
    (line,) = [json.loads(text) for text in json_lines.text.splitlines() if text]
    assert line["level"] == "warning"
    if kept:
        assert line["request_id"] == sent
    else:
        assert line["request_id"] != sent and len(line["request_id"]) <= 64
        assert line["request_id"].isalnum()
