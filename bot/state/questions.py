"""Questions for Check again as JSON: the facts of a paste and what its first answer saw.

A versioned, explicit format (no pickle), so a record written by an older or newer release is read
or skipped, never misread. `ParsedInput` holds no secret value (the parser cuts values out before
reading facts); `leaked_hints` are the first three characters Graph itself shows as a secret's hint.

Version 2 leaves out fields at their defaults (null, false, an empty list) and compresses the JSON
with zlib, primed with the format's own field names: a question is kept for 7 days per answer, and
the sample errors' questions shrink from 1.6 kB of JSON to about 0.55 kB. Version 1 records (plain
JSON with every field) are still read.
"""

from __future__ import annotations

import json
import zlib
from datetime import datetime
from typing import Any

from bot.domain import (
    Cause,
    Credential,
    CredentialKind,
    Finding,
    FirstAnswer,
    FoundIn,
    ParsedInput,
    Question,
    Severity,
)

VERSION = 2
PLAIN_VERSION = 1  # plain JSON, every field present

# What a version 2 record leaves out, as the decoder fills it back in (set at the end of the module).
_INPUT_DEFAULTS: dict[str, Any] = {}
# zlib's preset dictionary for version 2: the field names as `encode` writes them. Never edit it: a
# record compressed with another dictionary does not decompress (zlib checks the dictionary's
# checksum), so a new dictionary needs a new version.
_PRIMER = (
    b'{"v":2,"input":{"codes":[,"app_id":"","app_id_masked":true,"tenant":"","trace_id":"","correlation_id":"'
    b'","timestamp":"+00:00","error":"invalid_client","secret_value_detected":true,"secret_value_certain":true,'
    b'"leaked_hints":["","guids":["","secret_guid":"","bare_guid":true,"login_host":"","common_authority":true,'
    b'"client_credentials":true},"first":{"answered_at":"","finding":{"cause":"","severity":"error","summary":"'
    b'","evidence":["","fix":["","found_in":"tenant","credentials":[{"kind":"secret","key_id":"","display_name":"'
    b'","hint":"","start":"","end":"'
)
_FIRST_DEFAULTS: dict[str, Any] = {"finding": None, "found_in": None, "credentials": []}
_CREDENTIAL_DEFAULTS: dict[str, Any] = {"display_name": None, "hint": None, "start": None, "end": None}


def encode(question: Question) -> bytes:
    data = _fields(question)
    data["input"] = _without_defaults(data["input"])
    data["first"] = _without_defaults(data["first"])
    data["first"]["credentials"] = [_without_defaults(c) for c in data["first"].get("credentials", [])]
    compressor = zlib.compressobj(zdict=_PRIMER)
    return compressor.compress(json.dumps(data, separators=(",", ":")).encode()) + compressor.flush()


def decode(raw: str | bytes) -> Question:
    """The question in `raw`; ValueError when it is not one this release can read."""
    data = json.loads(json_text(raw))
    try:
        if data.get("v") == PLAIN_VERSION:
            return _question(data["input"], data["first"])
        if data.get("v") != VERSION:
            raise ValueError(f"unknown question format {data.get('v')!r}")
        first = _FIRST_DEFAULTS | data["first"]
        first["credentials"] = [_CREDENTIAL_DEFAULTS | c for c in first["credentials"]]
        return _question(_INPUT_DEFAULTS | data["input"], first)
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"not a question record ({type(error).__name__})") from None


def json_text(raw: str | bytes) -> str:
    """The JSON a record holds, as kept (fields at their defaults left out): to inspect what is stored."""
    try:
        return raw if isinstance(raw, str) else (raw if raw[:1] == b"{" else _decompress(raw)).decode()
    except (zlib.error, UnicodeDecodeError):
        raise ValueError("not a question record (neither JSON nor zlib)") from None


def _decompress(raw: bytes) -> bytes:
    decompressor = zlib.decompressobj(zdict=_PRIMER)
    plain = decompressor.decompress(raw) + decompressor.flush()
    if not decompressor.eof:
        raise zlib.error("truncated")
    return plain


def _without_defaults(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None and value is not False and value != []}


def _fields(question: Question) -> dict[str, Any]:
    """Every field of the question as JSON values (version 1's layout, with version 2's number)."""
    parsed, first = question.input, question.first
    return {
        "v": VERSION,
        "input": {
            "codes": list(parsed.codes),
            "app_id": parsed.app_id,
            "app_id_masked": parsed.app_id_masked,
            "tenant": parsed.tenant,
            "trace_id": parsed.trace_id,
            "correlation_id": parsed.correlation_id,
            "timestamp": _time(parsed.timestamp),
            "error": parsed.error,
            "secret_value_detected": parsed.secret_value_detected,
            "secret_value_certain": parsed.secret_value_certain,
            "leaked_hints": list(parsed.leaked_hints),
            "guids": list(parsed.guids),
            "secret_guid": parsed.secret_guid,
            "bare_guid": parsed.bare_guid,
            "login_host": parsed.login_host,
            "common_authority": parsed.common_authority,
            "client_credentials": parsed.client_credentials,
        },
        "first": {
            "answered_at": _time(first.answered_at),
            "finding": _finding(first.finding),
            "found_in": first.found_in.value if first.found_in else None,
            "credentials": [
                {
                    "kind": c.kind.value,
                    "key_id": c.key_id,
                    "display_name": c.display_name,
                    "hint": c.hint,
                    "start": _time(c.start),
                    "end": _time(c.end),
                }
                for c in first.credentials
            ],
        },
    }


def _question(src: dict[str, Any], first: dict[str, Any]) -> Question:
    parsed = ParsedInput(
        codes=tuple(int(code) for code in src["codes"]),
        app_id=src["app_id"],
        app_id_masked=bool(src["app_id_masked"]),
        tenant=src["tenant"],
        trace_id=src["trace_id"],
        correlation_id=src["correlation_id"],
        timestamp=_parse_time(src["timestamp"]),
        error=src["error"],
        secret_value_detected=bool(src["secret_value_detected"]),
        secret_value_certain=bool(src["secret_value_certain"]),
        leaked_hints=tuple(src["leaked_hints"]),
        guids=tuple(src["guids"]),
        secret_guid=src["secret_guid"],
        bare_guid=bool(src["bare_guid"]),
        login_host=src["login_host"],
        common_authority=bool(src["common_authority"]),
        client_credentials=bool(src["client_credentials"]),
    )
    answered_at = _parse_time(first["answered_at"])
    if answered_at is None:
        raise ValueError("a question without the time of its first answer")
    credentials = tuple(
        Credential(
            kind=CredentialKind(c["kind"]),
            key_id=c["key_id"],
            display_name=c["display_name"],
            hint=c["hint"],
            start=_parse_time(c["start"]),
            end=_parse_time(c["end"]),
        )
        for c in first["credentials"]
    )
    found_in = FoundIn(first["found_in"]) if first["found_in"] else None
    return Question(parsed, FirstAnswer(answered_at, _parse_finding(first["finding"]), found_in, credentials))


def _finding(finding: Finding | None) -> dict[str, Any] | None:
    if finding is None:
        return None
    return {
        "cause": finding.cause.value,
        "severity": finding.severity.value,
        "summary": finding.summary,
        "evidence": list(finding.evidence),
        "fix": list(finding.fix),
    }


def _parse_finding(data: dict[str, Any] | None) -> Finding | None:
    if data is None:
        return None
    return Finding(
        Cause(data["cause"]),
        Severity(data["severity"]),
        str(data["summary"]),
        tuple(str(line) for line in data["evidence"]),
        tuple(str(line) for line in data["fix"]),
    )


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


# A paste with no facts, as `_fields` writes it: every input field at its default.
_INPUT_DEFAULTS.update(_fields(Question(ParsedInput(), FirstAnswer(datetime.min, None, None)))["input"])
