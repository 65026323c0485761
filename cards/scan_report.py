"""`secretbot scan` output: the JSON contract (ARCHITECTURE.md, firm), CSV for spreadsheets, and text.

None of them shows more of a secret than Graph's own three-character `hint`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import orjson

from bot.domain import ExpiryState, ObjectType, ScannedCredential, ScanReport
from cards.jsonview import iso
from cards.words import plural

CSV_COLUMNS = (
    "object_type", "app_id", "object_id", "display_name", "kind", "usage", "key_id", "name", "hint", "start",
    "end", "days_left", "state", "threshold", "replaced_by", "owners", "last_used",
)  # fmt: skip


def render_scan_json(report: ScanReport) -> dict[str, Any]:
    return {
        "scanned_at": iso(report.scanned_at),
        "tenant": report.tenant,
        "counts": {
            "applications": report.applications,
            "service_principals": report.service_principals,
            "credentials": report.credentials,
        },
        "credentials": [_row(row) for row in report.rows],
    }


def scan_json_chunks(report: ScanReport) -> Iterator[str]:
    """The same document as `render_scan_json`, written a credential per line, so a report of
    100,000 rows is never one string in memory."""
    head = render_scan_json(replace(report, rows=()))
    opening = orjson.dumps({key: value for key, value in head.items() if key != "credentials"}).decode()
    yield opening[:-1] + ',\n"credentials": ['
    for index, row in enumerate(report.rows):
        yield ("\n  " if index == 0 else ",\n  ") + orjson.dumps(_row(row)).decode()
    yield "\n]}\n" if report.rows else "]}\n"


def _row(row: ScannedCredential) -> dict[str, Any]:
    cred = row.credential
    return {
        "object_type": cred.object_type.value,
        "app_id": cred.app_id,
        "object_id": cred.object_id,
        "display_name": cred.display_name,
        "kind": cred.kind.value,
        "usage": cred.usage,
        "key_id": cred.key_id,
        "name": cred.name,
        "hint": cred.hint,
        "start": iso(cred.start),
        "end": iso(cred.end),
        "days_left": row.days_left,
        "state": row.state.value,
        "threshold": row.threshold,
        "replaced_by": row.replaced_by,
        "owners": [
            {"id": o.object_id, "display_name": o.display_name, "upn": o.user_principal_name, "mail": o.mail}
            for o in cred.owners
        ],
        "last_used": iso(row.last_used),
    }


def render_scan_csv(report: ScanReport) -> str:
    """One line per credential, the JSON's fields; owners as "name <upn>" joined by "; "."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in report.rows:
        data = _row(row)
        data["owners"] = "; ".join(_owner_label(o) for o in row.credential.owners)
        writer.writerow(["" if data[name] is None else data[name] for name in CSV_COLUMNS])
    return out.getvalue()


def render_scan_text(report: ScanReport, *, within: int) -> str:
    """A terminal report: a summary line, then one block per credential, most urgent first."""
    tenant = f"tenant {report.tenant}" if report.tenant else "the tenant"
    lines = [
        f"Scanned {tenant} at {iso(report.scanned_at)}: {plural(report.applications, 'application')}, "
        f"{plural(report.service_principals, 'service principal')}, {plural(report.credentials, 'credential')}."
    ]
    expired = sum(1 for row in report.rows if row.state is ExpiryState.EXPIRED)
    ending = len(report.rows) - expired
    lines.append(f"{plural(expired, 'credential')} expired, {ending} ending within {within} days.")
    lines.extend(f"Note: {note}" for note in report.notes)
    for row in report.rows:
        lines.append("")
        lines.extend(_block(row))
    return "\n".join(lines) + "\n"


def _block(row: ScannedCredential) -> list[str]:
    cred = row.credential
    where = "app" if cred.object_type is ObjectType.APPLICATION else "service principal"
    kind = cred.kind.value + (f" ({cred.usage})" if cred.usage else "")
    label = f"{cred.name!r}" if cred.name else "(no name)"
    hint = f", hint {cred.hint}" if cred.hint else ""
    lines = [f"{_when(row)}: {where} {cred.display_name} ({cred.app_id})", f"  {kind} {label}, key {cred.key_id}{hint}"]
    if row.replaced_by:
        lines.append(f"  replaced by {row.replaced_by} (newer, ends later)")
    if row.last_used:
        lines.append(f"  last used {iso(row.last_used)}")
    owners = ", ".join(_owner_label(o) for o in cred.owners) if cred.owners else "none (ownerless)"
    lines.append(f"  owners: {owners}")
    return lines


def _when(row: ScannedCredential) -> str:
    end = iso(row.credential.end)
    if row.state is ExpiryState.EXPIRED:
        return f"EXPIRED {end}"
    if row.state is ExpiryState.NO_END:
        return "no end date"
    left = row.days_left or 0
    return f"ends {end} ({'within a day' if left < 1 else 'in ' + plural(left, 'day')})"


def _owner_label(owner: Any) -> str:
    upn = owner.user_principal_name or owner.mail
    name = owner.display_name or upn or "unnamed owner"
    return f"{name} <{upn}>" if upn and upn != name else name
