"""A pasted secret value appears in no output: every shape of `tests/secret_shapes.py` against every
surface that could echo it: the answer (text, JSON, Teams and Slack cards), the console's transcript,
the Slack and Teams wire, the CLI in both formats, every logger, Redis and Graph requests.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.cli import main
from bot.domain import Cause
from bot.fakegraph.samples import sample_errors, sample_reference_time
from bot.logs import configure_logging
from bot.platforms.console import ConsoleOptions
from bot.settings import Settings
from bot.state import keys, questions
from cards.adaptive import render_adaptive
from cards.blockkit import render_blockkit
from cards.jsonview import render_json
from cards.text import render_text
from handlers.diagnose import diagnose
from handlers.parse.secrets import REDACTED
from tests.conftest import SampleTenant
from tests.fake_connector import FakeConnector
from tests.fake_slack import FakeSlack
from tests.redis_server import redis_server
from tests.secret_shapes import SHAPES, Shape
from tests.test_slack import event, eventually, post_json
from tests.test_slack import settings as slack_settings
from tests.test_teams import fixture as teams_activity
from tests.test_teams import post as post_teams

SAMPLE = next(s for s in sample_errors() if s.cause == "secret_value_pasted")
SECRET = next(word for word in SAMPLE.text.split() if "Q~" in word)
NOW = sample_reference_time()

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web.NotAppKeyWarning")  # the Agents SDK's, as in test_teams


def strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value, keys included: escapes (`\\u200b`) decoded, as a reader sees them."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def leaks(shape: Shape, *outputs: str) -> list[str]:
    return [fragment for fragment in shape.fragments for output in outputs if fragment in output]


def assert_warned(diagnosis_input: Any, findings: Any) -> None:
    assert diagnosis_input.secret_value_detected
    assert any(finding.cause is Cause.SECRET_VALUE_PASTED for finding in findings)


# --- the answer, through the handler and card API --------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=str)
async def test_answer_warns_and_no_rendering_log_or_graph_request_shows_it(
    shape: Shape, sample_tenant: SampleTenant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every library's debug logging included
    result = await diagnose(shape.paste, directory=sample_tenant.directory, now=NOW)
    assert_warned(result.input, result.findings)
    cards = [render_json(result), render_adaptive(result), render_blockkit(result)]
    outputs = [render_text(result), repr(result), caplog.text, *(s for card in cards for s in strings(card))]
    outputs += [f"{r.path}?{r.query_string} {r.headers}" for r in sample_tenant.graph.requests]
    assert leaks(shape, *outputs) == []


async def test_secret_is_in_no_rendering_no_log_and_no_graph_request(
    sample_tenant: SampleTenant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every library's debug logging included
    result = await diagnose(SAMPLE.text, directory=sample_tenant.directory, now=sample_reference_time())
    assert result.input.secret_value_detected
    assert result.primary is not None and result.primary.cause.value == "secret_value_pasted"
    outputs = [render_text(result), json.dumps(render_json(result)), repr(result), caplog.text]
    outputs += [f"{r.path}?{r.query_string} {r.headers}" for r in sample_tenant.graph.requests]
    for output in outputs:
        assert SECRET not in output
        assert SECRET[6:] not in output  # not even the part after the recognisable prefix


# --- the demo console: transcript and answer over HTTP -----------------------------------------------


@pytest.fixture
async def console() -> AsyncIterator[TestClient]:
    options = ConsoleOptions(samples=(), tenant="sample", clock="fixed")
    app = create_app(Settings(snapshot="sample"), console=options, clock=lambda: NOW)
    async with TestClient(TestServer(app)) as client:
        yield client


@pytest.mark.parametrize("shape", SHAPES, ids=str)
async def test_console_transcript_and_answer_never_show_it(
    shape: Shape, console: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await console.post("/console/api/messages", json={"text": shape.paste})
    assert response.status == 200
    raw = await response.text()
    body = json.loads(raw)
    assert body["you"]["secret_removed"] is True
    assert REDACTED in body["you"]["text"]
    assert body["answer"]["cause"] is not None
    assert leaks(shape, raw, caplog.text, *strings(body)) == []


# --- Slack and Teams on the wire, and what they leave in Redis --------------------------------------


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as server:
        yield server.url


@pytest.fixture
def redis_contents(redis_url: str) -> Iterator[Callable[[], str]]:
    """Everything in Redis, keys and values, as one text; the store is emptied before each test.
    Questions are kept zlib-compressed: they are read decompressed, as the bot reads them."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    raw = redis.Redis.from_url(redis_url)
    client.flushall()

    def string(key: str) -> str:
        value = raw.get(key)
        assert isinstance(value, bytes)
        return questions.json_text(value) if key.startswith(keys.QUESTION_PREFIX) else value.decode()

    def dump() -> str:
        lines = []
        for key in client.scan_iter():
            kind = client.type(key)
            value: object = {
                "string": string,
                "set": client.smembers,
                "hash": client.hgetall,
                "list": lambda k: client.lrange(k, 0, -1),
                "zset": lambda k: client.zrange(k, 0, -1),
            }[kind](key)
            lines.append(f"{key} {value}")
        assert lines, "nothing was stored: the test would prove nothing about Redis"
        return "\n".join(lines)

    yield dump
    client.close()
    raw.close()


@pytest.mark.parametrize("shape", SHAPES, ids=str)
async def test_slack_wire_logs_and_redis_never_show_it(
    shape: Shape,
    fake_slack: FakeSlack,
    redis_url: str,
    redis_contents: Callable[[], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    app = create_app(slack_settings(fake_slack, redis_url=redis_url))
    async with TestClient(TestServer(app)) as client:
        assert await post_json(client, event("message", shape.paste, event_id="EvSecret")) == 200
        await eventually(lambda: bool(fake_slack.called("chat.update")))
    [answer] = fake_slack.called("chat.update")
    assert "leak" in json.dumps(answer).lower()
    sent = [s for call in fake_slack.calls for s in strings(call.args)]
    assert leaks(shape, *sent, caplog.text, redis_contents()) == []


@pytest.mark.parametrize("shape", SHAPES, ids=str)
async def test_teams_wire_logs_and_redis_never_show_it(
    shape: Shape,
    connector: FakeConnector,
    redis_url: str,
    redis_contents: Callable[[], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = Settings(snapshot="sample", teams_insecure_no_auth=True, redis_url=redis_url)
    async with TestClient(TestServer(create_app(settings))) as client:
        status, _ = await post_teams(client, teams_activity("personal_message", connector, shape.paste))
        await eventually(lambda: bool(connector.sent("message", method="PUT")))  # a worker answers
    assert status == 202
    [reply] = connector.sent("message", method="PUT")
    assert "leak" in reply.raw.lower()
    sent = [s for call in connector.calls for s in (call.raw, *strings(call.body))]
    assert leaks(shape, *sent, caplog.text, redis_contents()) == []


# --- the server's log lines, should any library ever log a paste -------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_a_log_line_that_quotes_a_paste_is_cut_like_the_transcript(
    shape: Shape, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging("DEBUG")
        logging.getLogger("some.library").debug("received body: %s", shape.paste)
    finally:
        root.handlers[:], root.level = handlers, level
    [line] = capsys.readouterr().err.splitlines()
    message = json.loads(line)["message"]
    assert REDACTED in message
    assert leaks(shape, line, message) == []


# --- the command line ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_cli_never_prints_it(
    shape: Shape, fmt: str, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert main(["diagnose", "--format", fmt, "--now", NOW.isoformat(), shape.paste]) == 0
    captured = capsys.readouterr()
    assert "leak" in captured.out.lower()
    shown = [captured.out, captured.err, caplog.text]
    if fmt == "json":
        shown += strings(json.loads(captured.out))
    assert leaks(shape, *shown) == []


def test_cli_never_prints_the_sample_secret(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for fmt in ("text", "json"):
        assert main(["diagnose", "--format", fmt, SAMPLE.text]) == 0
        captured = capsys.readouterr()
        assert SECRET not in captured.out + captured.err + caplog.text
        assert "leaked" in captured.out
