"""Questions for Check again as JSON: the facts of a paste and what its first answer saw.

A versioned, explicit format (no pickle), so a record written by an older or newer release is read
or skipped, never misread. `ParsedInput` holds no secret value (the parser cuts values out before
reading facts); `leaked_hints` are the first three characters Graph itself shows as a secret's hint.
"""

from __future__ import annotations

import json
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

VERSION = 1


def encode(question: Question) -> str:
    parsed, first = question.input, question.first
    data = {
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
    return json.dumps(data, separators=(",", ":"))


def decode(raw: str | bytes) -> Question:
    """The question in `raw`; ValueError when it is not one this release can read."""
    try:
        data = json.loads(raw)
        if data.get("v") != VERSION:
            raise ValueError(f"unknown question format {data.get('v')!r}")
        return _question(data["input"], data["first"])
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"not a question record ({type(error).__name__})") from None


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
