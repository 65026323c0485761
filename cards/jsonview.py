"""The `diagnose --format json` document: the firm contract other tools read (ARCHITECTURE.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.domain import Application, Credential, Diagnosis, FoundIn


def render_json(diagnosis: Diagnosis) -> dict[str, Any]:
    parsed = diagnosis.input
    return {
        "input": {
            "codes": list(parsed.codes),
            "app_id": parsed.app_id,
            "app_id_masked": parsed.app_id_masked,
            "tenant": parsed.tenant,
            "trace_id": parsed.trace_id,
            "correlation_id": parsed.correlation_id,
            "timestamp": iso(parsed.timestamp),
            "error": parsed.error,
            "secret_value_detected": parsed.secret_value_detected,
        },
        "errors": [
            {"code": e.code, "name": e.name, "summary": e.summary, "lookup_url": e.lookup_url} for e in diagnosis.errors
        ],
        "app": _app(diagnosis),
        "findings": [
            {
                "cause": f.cause.value,
                "severity": f.severity.value,
                "summary": f.summary,
                "evidence": list(f.evidence),
                "fix": list(f.fix),
            }
            for f in diagnosis.findings
        ],
        "graph": {
            "mode": diagnosis.graph.mode.value,
            "round_trips": diagnosis.graph.round_trips,
            "missing_permissions": list(diagnosis.graph.missing_permissions),
        },
    }


def iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _app(diagnosis: Diagnosis) -> dict[str, Any] | None:
    if diagnosis.found_in is None:
        return None
    app = diagnosis.app
    if app is None:  # looked up, found nowhere: say which id was looked for
        app = Application(object_id="", app_id=diagnosis.input.app_id or "", display_name="")
    return {
        "app_id": app.app_id,
        "object_id": app.object_id or None,
        "display_name": app.display_name or None,
        "sign_in_audience": app.sign_in_audience,
        "found_in": (diagnosis.found_in or FoundIn.NOWHERE).value,
        "credentials": [_credential(c, diagnosis.reference_time) for c in app.credentials],
    }


def _credential(credential: Credential, ref: datetime) -> dict[str, Any]:
    return {
        "kind": credential.kind.value,
        "key_id": credential.key_id,
        "display_name": credential.display_name,
        "hint": credential.hint,
        "start": iso(credential.start),
        "end": iso(credential.end),
        "state": credential.state_at(ref).value,
        "days_left": credential.days_left(ref),
    }
