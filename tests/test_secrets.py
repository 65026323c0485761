"""Secret values are found in every wrapper, cut out first, and never come back out."""

from __future__ import annotations

import base64

import pytest

from handlers.parse import parse, transcript_text
from handlers.parse.secrets import REDACTED, redact, redact_decoded
from handlers.parse.unwrap import unwrap
from tests.secret_shapes import LOWER40, SHAPES, Shape

# Invented values of the real shapes (modern `xxx8Q~` + 34, previous `xxx7Q~` + 31, legacy 32).
MODERN = "Zk38Q~pQ0vL2nA.r7Tc-Wm1xYb_3sGd9eHf4iJ~u"
PREVIOUS = "Ab17Q~Cd3Ef5Gh7Ij9Kl1Mn3Op5Qr7St9Uv1W"
LEGACY = "[6gyXA5S20@MN+WRXAJ]I-TO7g1:h2P8"


@pytest.mark.parametrize(
    "text",
    [
        f"the secret is {MODERN} please help",
        f'{{"clientSecret": "{MODERN}", "error": "AADSTS7000215"}}',
        f"```\nAZURE_CLIENT_SECRET={MODERN}\n```",
        f"<p>secret: <code>{MODERN}</code></p>",
        f"client_secret={MODERN.replace('~', '%7E')}&grant_type=client_credentials",
        '"secret": "' + MODERN.replace("~", "\\u007e") + '"',
        f"az login --service-principal -u x -p {MODERN} --tenant y",
        f"value ends a sentence {MODERN}.",
        f"previous format {PREVIOUS} here",
    ],
)
def test_modern_secret_is_detected_as_certain_in_any_wrapper(text: str) -> None:
    parsed = parse(text)
    assert parsed.secret_value_detected
    assert parsed.secret_value_certain
    assert MODERN not in repr(parsed) and PREVIOUS not in repr(parsed)


@pytest.mark.parametrize(
    "text",
    [
        f"the secret is {MODERN} please help",
        f"client_secret={MODERN.replace('~', '%7E')}&grant_type=client_credentials",
        '"secret": "' + MODERN.replace("~", "\\u007e") + '"',
        f"<p>secret: <code>{MODERN.replace('~', '&#126;')}</code></p>",
    ],
)
def test_transcript_shows_no_secret_in_any_encoding(text: str) -> None:
    shown = transcript_text(text)
    assert REDACTED in shown
    for encoded in (MODERN, MODERN.replace("~", "%7E"), MODERN.replace("~", "\\u007e"), MODERN.replace("~", "&#126;")):
        assert encoded not in shown


def test_transcript_keeps_a_paste_without_secrets_as_typed() -> None:
    text = "AADSTS7000215: Invalid client secret provided.\n  Trace ID: 7f8e9d0c-aaaa-bbbb-cccc-1234567890ab &amp; more"
    assert transcript_text(text) == text


def test_redaction_keeps_the_hint_and_removes_the_value() -> None:
    result = redact(f"before {MODERN} after")
    assert result.text == f"before {REDACTED} after"
    assert result.hints == (MODERN[:3],)
    assert result.certain


@pytest.mark.parametrize(
    "text",
    [
        "client_secret=Pq4z9_aLm2Nc8vBx7Rt6Ys",  # a long opaque value given to a secret key
        "--password 'Hq9.Lz2-Wm8Kp3Xr7Vt5Nb'",
    ],
)
def test_keyed_values_are_secrets(text: str) -> None:
    result = redact(text)
    assert result.certain
    assert REDACTED in result.text


def test_legacy_shape_is_only_possible_and_needs_context() -> None:
    assert not redact(f"token {LEGACY} seen").detected  # no talk of secrets: left alone
    result = redact(f"my client secret is {LEGACY}")
    assert result.possible and not result.certain
    assert LEGACY not in result.text


# The 34-character legacy shape: letters, digits and at least one of - ~ _ .
LEGACY34 = "Xq4-Tz8_Lm2.Vb6~Rn0-Wk5_Jh9.Pd3~Gs"


@pytest.mark.parametrize("value", [LEGACY, LEGACY34])
def test_legacy_shapes_of_both_lengths_are_found_between_any_delimiters(value: str) -> None:
    for text in (f"client secret:\u3000{value}\u3000ok", f"secret=({value});", f"secret\t'{value}'"):
        result = redact(text)
        assert result.possible and value not in result.text, text


@pytest.mark.parametrize("value", [LEGACY[:-1], LEGACY34 + "A", LEGACY34[:-1]])
def test_legacy_shapes_of_other_lengths_are_not_secrets(value: str) -> None:
    assert not redact(f"client secret ({value})").detected


def test_guid_given_as_secret_is_reported_as_secret_id_not_redacted() -> None:
    guid = "0c1d2e3f-9999-8888-7777-fedcba987654"
    result = redact(f"az login --service-principal -u app -p {guid} --tenant t")
    assert result.secret_guid == guid
    assert not result.detected
    assert guid in result.text


@pytest.mark.parametrize(
    "text",
    [
        "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the "
        "client secret value, not the client secret ID, for a secret added to app '***'.",
        "az login --service-principal -u <appId> -p <secret> --tenant <tenantId>",
        "client_secret=${{ secrets.AZURE_CLIENT_SECRET }} password: $env:SP_PASSWORD",
        "--password /home/runner/work/_temp/certificate.pem was rejected",
        "Microsoft.Identity.Client.MsalServiceException: at Microsoft.Identity.Client.Internal.Requests",
        "mkdir -p /var/lib/secretbot/some/long/path/here",
    ],
)
def test_ordinary_text_is_not_a_secret(text: str) -> None:
    assert not redact(text).detected


# A long paste that talks of secrets, so the second look after decoding reads only changed lines.
_LOG_LINE = "2026-11-20 09:00:00 INFO token request for client secret credential flow, attempt {n} of many"
_SECRET_LOG = "\n".join(_LOG_LINE.format(n=n) for n in range(40))
_ENTITY_LEGACY = LEGACY.replace(":", "&#58;")
_ESCAPED_MODERN = MODERN.replace("~", "\\u007e")


def test_secret_that_only_decoding_reveals_is_found_among_unchanged_lines() -> None:
    # An entity: raw, the token is too long to look like a secret.
    text = f"{_SECRET_LOG}\nthe value was {_ENTITY_LEGACY} yesterday\n{_SECRET_LOG}"
    assert not redact(text).detected
    parsed = parse(text)
    assert parsed.secret_value_detected and LEGACY[:3] in parsed.leaked_hints
    assert LEGACY not in transcript_text(text)


@pytest.mark.parametrize(
    "text",
    [
        f"{_SECRET_LOG}\n&lt;p&gt; my client secret is {_ENTITY_LEGACY}",
        f'{_SECRET_LOG}\n{{\\"client_secret\\": \\"{_ESCAPED_MODERN}\\"}}',
        f"{_SECRET_LOG}\nAZURE_CLIENT_SECRET={MODERN}`x`{LEGACY}\n{_SECRET_LOG}",
        f"password: {MODERN}\n{_SECRET_LOG}\n&amp; {LEGACY}",
        # the marker that replaced a value makes a 32-character token with its neighbours
        f"{_SECRET_LOG}\nXy9:{MODERN}:Qrstuvwxyz\n&amp; done",
    ],
)
def test_reading_only_changed_lines_finds_what_reading_everything_finds(text: str) -> None:
    first = redact(text)
    decoded = unwrap(first.text)
    assert decoded != first.text
    assert redact_decoded(decoded, first) == redact(decoded)


# Logs whose lines a terminal's line breaks do not join (a line ending in ")" is no broken token): so
# the second look reads a few lines around what decoding changed. The quiet one never talks of
# secrets: legacy shapes in it are only looked for once something does.
_LOG = "\n".join(f"2026-11-20 09:00:{n:02d} INFO token request, client secret credential flow ({n})" for n in range(40))
_QUIET_LOG = "\n".join(f"2026-11-20 09:00:{n:02d} INFO step {n} finished, the next one starts (ok)" for n in range(40))


@pytest.mark.parametrize(
    "text",
    [
        # an escaped value that a terminal also broke over two lines, among long lines it may join
        f"{_LOG}\n{'x' * 30} the secret {_ESCAPED_MODERN[:18]}\n{_ESCAPED_MODERN[18:]} done\n{_LOG}",
        f"{_LOG}\n{'y' * 40}\n{_ESCAPED_MODERN[:10]}\n{'z' * 30}{_ESCAPED_MODERN[10:]}\n{_LOG}",
        # the decoded line is shorter, so the line break after it no longer joins the next line
        f"{_LOG}\n{'x' * 20}the secret {MODERN[:4]}\\u0051\\u007e{MODERN[6:20]}\n{MODERN[20:]} failed\n{_LOG}",
        # the decoded line is too short to be joined to the next one any more, which then starts with a
        # key and holds a value broken over two lines: joined to the line before, it was no key
        f"{_LOG}\n{'&amp;' * 4}{'y' * 20}\npassword={LOWER40[:31]}\n{LOWER40[31:]} done\n{_LOG}",
        # a legacy shape on a line decoding leaves alone, while only the decoded line talks of secrets
        f"{_QUIET_LOG}\nthe value {LEGACY} was used\n{_QUIET_LOG}\nmy pass\\u0077ord expired\n{_QUIET_LOG}",
        f"{_QUIET_LOG}\nthe value {LEGACY} was used\n{_QUIET_LOG}\nmy pass&#119;ord expired &amp; more",
        # the first and the last line change: all of it is read
        f"&amp; first\n{_LOG}\n{_ENTITY_LEGACY} last",
    ],
)
def test_reading_only_what_decoding_changed_finds_what_reading_everything_finds(text: str) -> None:
    first = redact(text)
    assert not first.detected  # so the second look may read only what decoding changed
    decoded = unwrap(first.text)
    assert redact_decoded(decoded, first) == redact(decoded)


def test_a_legacy_shape_is_found_in_an_unchanged_line_once_a_decoded_line_talks_of_secrets() -> None:
    text = f"{_QUIET_LOG}\nthe value {LEGACY} was used\n{_QUIET_LOG}\nmy pass\\u0077ord expired\n{_QUIET_LOG}"
    assert not redact(text).legacy_checked
    parsed = parse(text)
    assert parsed.secret_value_detected and parsed.leaked_hints == (LEGACY[:3],)
    assert LEGACY not in transcript_text(text)


def test_an_escaped_value_a_terminal_broke_in_a_long_log_is_cut_whole() -> None:
    text = f"{_LOG}\n{'x' * 30} the secret {_ESCAPED_MODERN[:18]}\n{_ESCAPED_MODERN[18:]} done\n{_LOG}"
    parsed = parse(text)
    assert parsed.secret_value_certain and parsed.leaked_hints == (MODERN[:3],)
    shown = transcript_text(text)
    assert MODERN[:18] not in shown and MODERN[18:] not in shown and _ESCAPED_MODERN[18:] not in shown
    assert shown.count(REDACTED) == 1 and shown.endswith(_LOG)


# --- shapes that used to get through, and what must still not count -------------------------------

APP = "8c3e6f0a-1b2d-4e5f-9a8b-7c6d5e4f3a2b"


def test_basic_credentials_are_a_secret_with_the_hint_of_the_secret_part() -> None:
    header = base64.b64encode(f"{APP}:{MODERN}".encode()).decode()
    result = redact(f"Authorization: Basic {header}\nAADSTS7000215")
    assert result.certain and header not in result.text and "AADSTS7000215" in result.text
    assert result.hints == (MODERN[:3],)


def test_a_basic_value_with_a_sign_that_lower_cases_to_a_letter_is_no_secret_and_no_crash() -> None:
    # The Kelvin sign lower-cases to "k", so the pattern (on lower-cased text) takes it for base64.
    text = "Authorization: Basic YWJj\u212aOmRlZmdoaWprbG1ub3BxcnN0dXZ3eHl6\nAADSTS7000215"
    assert not parse(text).secret_value_detected
    assert transcript_text(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Basic " + base64.b64encode(b"just some words, no colon").decode(),  # not user:password
        "basic authentication is disabled for this tenant by policy",
        "Authorization: Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJhcGkifQ.c2lnbmF0dXJl",
        # base64 of 32 bytes where nothing talks of secrets, and hex digests after other keys
        "sha256 digest q8Jz3Rk0Lm5Wx2Vb7Nc4Pd9Tf1Gh6Ys0Ue3Ia8Oq2Mw= for the build",
        "commit=3f9c2a7b8d1e4f6a0b2c5d8e9f1a3b4c5d6e7f80 object_id=0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        f"client_id={APP} app id {APP} Trace ID: 7f8e9d0c-aaaa-bbbb-cccc-1234567890ab",
        "client_secret=all-lower-case-words-only-here-no-digits",
    ],
)
def test_what_is_not_a_secret_stays(text: str) -> None:
    result = redact(text)
    assert not result.detected and result.text == text
    assert not parse(text).secret_value_detected


def test_long_one_case_value_after_a_key_is_a_secret() -> None:
    value = "k3j9x0q7w2m5n8b1v4c6z0l3p9r2t5y8u1i4o7e2"
    result = redact(f"client_secret={value}&grant_type=client_credentials")
    assert result.certain and value not in result.text


def test_invisible_characters_do_not_hide_a_secret() -> None:
    for mark in ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "&#8203;", "\\u200b"):
        text = f"the secret {MODERN[:12]}{mark}{MODERN[12:]} failed"
        parsed = parse(text)
        assert parsed.secret_value_certain, repr(mark)
        assert MODERN[12:] not in transcript_text(text), repr(mark)


def test_a_value_a_terminal_broke_over_two_lines_is_cut_whole() -> None:
    line = f"$ curl -s -d grant_type=client_credentials -d client_secret={MODERN[:20]}\n{MODERN[20:]} -d x=y"
    result = redact(line)
    assert result.certain and MODERN[:20] not in result.text and MODERN[20:] not in result.text
    assert result.text.endswith(" -d x=y")


def test_lines_are_joined_only_for_a_secret_and_never_over_an_error_code() -> None:
    long_line = "2026-11-20 09:00:00 ERROR token request for the payroll app failed with"
    text = f"{long_line}\nAADSTS7000215 and password=Short1x\nAADSTS7000222 in the next line"
    result = redact(text)
    assert not result.detected and result.text == text
    assert parse(text).codes == (7000215, 7000222)


def test_a_keyed_value_is_cut_wherever_else_it_appears() -> None:
    value = "Pq4z9_aLm2Nc8vBx7Rt6Ys"
    text = f'client_secret={value}\nretrying with "{value}" and secret:{value}.'
    result = redact(text)
    assert value not in result.text and result.text.count(REDACTED) == 3


def test_a_large_adversarial_paste_is_cut_completely() -> None:
    # Distinct values after a key, each different, so no cut can serve another: every one must go.
    values = [f"{n:06d}Xk9_{n * 7919 % 1000003:07d}qZ" for n in range(40_000)]
    text = "".join(f"client_secret={value}&" for value in values)
    result = redact(text)
    assert result.text == f"client_secret={REDACTED}&" * len(values)
    # Copies elsewhere are cut too when there are too many values to look for each one anywhere.
    copies = redact(f'{text}\n"{values[7]}" x:y={values[9]} {values[11]}.')
    assert copies.text.endswith(f'\n"{REDACTED}" x:y={REDACTED} {REDACTED}.')
    parsed = parse(text)
    assert parsed.secret_value_certain and not any(value in repr(parsed) for value in values[:100])


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_reading_only_changed_lines_agrees_for_every_shape(shape: Shape) -> None:
    # Long log lines around the paste, so that the second look reads only the changed lines.
    text = f"{_SECRET_LOG}\n{shape.paste}\n&amp; {_SECRET_LOG}"
    first = redact(text)
    decoded = unwrap(first.text)
    assert redact_decoded(decoded, first) == redact(decoded)
