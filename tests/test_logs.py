"""What the server's log shows for a diagnosis against Graph: the bot's lines, not one per HTTP request
(unless debugging)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from bot.fakegraph.samples import sample_errors, sample_reference_time
from bot.logs import configure_logging
from handlers.diagnose import diagnose
from tests.conftest import SampleTenant

PASTE = next(s.text for s in sample_errors() if s.cause == "expired_secret_in_use")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in ("", "httpx", "httpcore")]
    saved = [(logger, logger.level, logger.handlers[:]) for logger in loggers]
    yield
    for logger, level, handlers in saved:
        logger.setLevel(level)
        logger.handlers[:] = handlers


async def logged_loggers(level: str, tenant: SampleTenant, capsys: pytest.CaptureFixture[str]) -> set[str]:
    configure_logging(level)  # after capsys took stderr over, so the lines land in it
    result = await diagnose(PASTE, directory=tenant.directory, now=sample_reference_time())
    assert result.graph.round_trips == 1
    lines = capsys.readouterr().err.splitlines()
    return {json.loads(line)["logger"] for line in lines}


async def test_graph_requests_are_not_logged_at_info(
    sample_tenant: SampleTenant, capsys: pytest.CaptureFixture[str]
) -> None:
    loggers = await logged_loggers("INFO", sample_tenant, capsys)
    assert not {name for name in loggers if name.startswith(("httpx", "httpcore", "bot.graph.transport"))}


async def test_debug_shows_the_graph_requests(sample_tenant: SampleTenant, capsys: pytest.CaptureFixture[str]) -> None:
    assert "bot.graph.transport" in await logged_loggers("debug", sample_tenant, capsys)


def test_the_sdks_own_http_client_logs_only_warnings_unless_debugging() -> None:
    # msgraph-sdk (single objects, writes) sends through httpx, which logs every request at INFO.
    configure_logging("INFO")
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
    configure_logging("debug")
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.DEBUG
