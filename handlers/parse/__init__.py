"""Turn whatever people paste into the facts of `ParsedInput`.

Order matters: secret values are cut out of the raw text (less its colour codes) first, so no later
step, log line or exception can ever carry one; then the chat and log wrappers are undone; then facts
are read.
"""

from __future__ import annotations

from bot.domain import ParsedInput
from handlers.parse import extract
from handlers.parse.secrets import redact, redact_decoded
from handlers.parse.unwrap import unwrap, without_terminal_codes

__all__ = ["parse", "transcript_text"]


def parse(raw: str) -> ParsedInput:
    first = redact(without_terminal_codes(raw))
    # Decoding (%7E, \u007e, entities) can reveal a secret the raw text hid, so look again.
    unwrapped = unwrap(first.text)
    second = redact_decoded(unwrapped, first) if unwrapped != first.text else first
    # The scans lower-cased the text already when they found nothing in it.
    text = second.clean_lowered if second.clean_lowered is not None else second.text.lower()
    app_id, masked = extract.app_id(text)
    bare = app_id is None and extract.GUID_RE.fullmatch(text.strip()) is not None
    if bare:
        app_id = text.strip()  # a bare GUID is someone asking about that app (or a secret's ID alone)
    tenant, common = extract.tenant(text)
    return ParsedInput(
        codes=extract.codes(text),
        app_id=app_id,
        app_id_masked=masked,
        tenant=tenant,
        trace_id=extract.trace_id(text),
        correlation_id=extract.correlation_id(text),
        timestamp=extract.timestamp(text),
        error=extract.oauth_error(text),
        secret_value_detected=first.detected or second.detected,
        secret_value_certain=first.certain or second.certain,
        leaked_hints=tuple(dict.fromkeys(first.hints + second.hints)),
        guids=extract.guids(text),
        secret_guid=extract.secret_guid(text),
        bare_guid=bare,
        login_host=extract.national_login_host(text),
        common_authority=common,
        client_credentials=extract.client_credentials(text),
    )


def transcript_text(raw: str) -> str:
    """The paste as a chat transcript may show it back: every secret-shaped value cut out, also
    one that only decoding revealed (then the decoded text is shown, since the raw one hides it)."""
    first = redact(without_terminal_codes(raw))
    unwrapped = unwrap(first.text)
    second = redact_decoded(unwrapped, first)
    return first.text if second.text == unwrapped else second.text
