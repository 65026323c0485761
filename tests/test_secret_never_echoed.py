"""A pasted secret value appears in no output: not the report, the JSON, the logs, nor Graph requests."""

from __future__ import annotations

import json
import logging

import pytest

from bot.cli import main
from bot.fakegraph.samples import sample_errors, sample_reference_time
from cards.jsonview import render_json
from cards.text import render_text
from handlers.diagnose import diagnose
from tests.conftest import SampleTenant

SAMPLE = next(s for s in sample_errors() if s.cause == "secret_value_pasted")
SECRET = next(word for word in SAMPLE.text.split() if "Q~" in word)


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


def test_cli_never_prints_it(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for fmt in ("text", "json"):
        assert main(["diagnose", "--format", fmt, SAMPLE.text]) == 0
        captured = capsys.readouterr()
        assert SECRET not in captured.out + captured.err + caplog.text
        assert "leaked" in captured.out
