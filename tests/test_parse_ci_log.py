"""The parser on a realistic CI log: colour codes, Unicode, progress bars, and Entra errors inside."""

from __future__ import annotations

import re
from dataclasses import asdict, replace
from datetime import UTC, datetime
from functools import cache

import pytest

from bot.domain import ParsedInput
from handlers.parse import parse, transcript_text
from tests import ci_log
from tests.secret_shapes import KEYED, LEGACY32, LEGACY44, SHAPES, Shape

FACTS = ("codes", "app_id", "tenant", "trace_id", "correlation_id", "timestamp", "error", "secret_value_detected")


@pytest.mark.parametrize("size", [1_000_000, 60_000])
def test_every_fact_of_the_ci_log_is_found(size: int) -> None:
    log = ci_log.ci_log(size)
    assert "\x1b[" in log.text and "\r[" in log.text and "✓" in log.text and "数据" in log.text  # what it claims
    assert len(log.error_lines) == 3
    parsed = parse(log.text)
    assert parsed.codes == ci_log.CODES
    assert parsed.app_id == ci_log.APP
    assert parsed.tenant == ci_log.TENANT
    # The first error's ids: the colour codes around them must not hide them behind the later ones.
    assert parsed.trace_id == ci_log.TRACE
    assert parsed.correlation_id == ci_log.CORRELATION
    assert parsed.timestamp == datetime.fromisoformat(ci_log.TIMESTAMP).replace(tzinfo=UTC)
    assert parsed.error == "invalid_client"
    assert parsed.client_credentials
    # Masked values (***), commit hashes, image digests and progress bars are no secrets.
    assert not parsed.secret_value_detected
    assert parsed.leaked_hints == ()
    # Every GUID of the log (subscriptions, the errors' ids), in order, and nothing else.
    every_guid = re.findall(r"[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}", log.text)
    assert len(set(every_guid)) > 40 and parsed.guids == tuple(dict.fromkeys(every_guid))
    assert parsed.secret_guid is None and not parsed.app_id_masked and not parsed.bare_guid
    assert parsed.login_host is None and not parsed.common_authority


@cache
def _log_facts() -> tuple[list[str], int, ParsedInput]:
    log = ci_log.ci_log(300_000)
    return log.text.split("\n"), log.error_lines[1] + 2, parse(log.text)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_a_secret_pasted_into_the_ci_log_is_found_and_cut_and_no_other_fact_changes(shape: Shape) -> None:
    # After the second error, so the first error's facts stay the first ones.
    lines, at, facts = _log_facts()
    text = "\n".join([*lines[:at], shape.paste, *lines[at:]])
    parsed = parse(text)
    assert parsed.secret_value_detected
    assert replace(parsed, secret_value_detected=False, secret_value_certain=False, leaked_hints=()) == replace(
        facts, guids=parsed.guids
    )
    shown = transcript_text(text)
    assert not [fragment for fragment in shape.fragments if fragment in shown]


@pytest.mark.parametrize("seed", [ci_log.SEED, 7, 2026])
def test_colour_codes_change_no_fact(seed: int) -> None:
    coloured = ci_log.ci_log(300_000, seed=seed)
    plain = ci_log.ci_log(300_000, colour=False, seed=seed)
    assert "\x1b" not in plain.text and len(plain.text) < len(coloured.text)
    facts = {key: value for key, value in asdict(parse(coloured.text)).items() if key in FACTS}
    assert facts == {key: value for key, value in asdict(parse(plain.text)).items() if key in FACTS}
    assert facts["codes"] == ci_log.CODES


def test_a_colour_code_before_a_secret_does_not_hide_it() -> None:
    line = f"  {ci_log.YELLOW}client_secret={ci_log.RESET}{ci_log.YELLOW}{KEYED}{ci_log.RESET} ✓"
    parsed = parse(f"{line}\nAADSTS7000215: Invalid client secret provided.")
    assert parsed.secret_value_detected and parsed.secret_value_certain
    assert KEYED not in transcript_text(line)


@pytest.mark.parametrize(
    ("text", "value", "found"),
    [
        (f"credential: ✓ {LEGACY32} → done", LEGACY32, True),
        (f"password\u3000{LEGACY44}\u3000ok", LEGACY44, True),  # ideographic spaces break tokens like ASCII ones
        (f"secret\u00a0{LEGACY32}\u2028", LEGACY32, True),
        # A legacy shape is a whole token: joined to a letter of another script, it is not one.
        (f"secret é{LEGACY32} x", LEGACY32, False),
        (f"secret é{LEGACY32[1:]} x", LEGACY32[1:], False),  # 32 characters, one of them not ASCII
        (f"secret {LEGACY32}数 x", LEGACY32, False),
        (f"client secret 🚀{LEGACY44}", LEGACY44, False),
    ],
)
def test_legacy_shapes_next_to_non_ascii_text(text: str, value: str, found: bool) -> None:
    parsed = parse(text)
    assert parsed.secret_value_detected is found
    assert (value in transcript_text(text)) is not found
