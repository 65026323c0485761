"""Plain-text rendering of a diagnosis: the terminal report, and the fallback for chat and logs."""

from __future__ import annotations

from datetime import datetime

from bot.domain import Credential, Diagnosis, Finding, FoundIn, GraphMode
from cards.view import EXAMPLE_PASTE, change_lines, found_in_words, rechecked_line

NOTHING_RECOGNISED = (
    "I could not find an Entra ID error in that text.\n\n"
    "I understand AADSTS error messages as tools print them (token endpoint JSON, Azure CLI, PowerShell, "
    "MSAL, Terraform, GitHub Actions logs, stack traces), and a bare application (client) id.\n"
    "Paste the whole error, including the lines with the app id, Trace ID and Timestamp, for example:\n\n"
    f"  {EXAMPLE_PASTE}"
)


def render_text(diagnosis: Diagnosis) -> str:
    if not diagnosis.input.recognised:
        return NOTHING_RECOGNISED + "\n"
    sections = [_headline(diagnosis), *_findings(diagnosis), _codes(diagnosis), _credentials(diagnosis)]
    sections.insert(1, _recheck(diagnosis))  # a re-checked answer says when, and what changed, under its headline
    sections.append(_graph(diagnosis))
    return "\n\n".join(s for s in sections if s).rstrip() + "\n"


def _headline(diagnosis: Diagnosis) -> str:
    primary = diagnosis.primary
    codes = ", ".join(f"AADSTS{c}" for c in diagnosis.input.codes) or "no error code"
    subject = f"{codes} · app {diagnosis.input.app_id}" if diagnosis.input.app_id else codes
    if diagnosis.app and diagnosis.found_in:
        subject += f" ('{diagnosis.app.display_name}', {found_in_words(diagnosis, diagnosis.found_in)})"
    elif diagnosis.found_in is FoundIn.NOWHERE:
        subject += f" ({found_in_words(diagnosis, FoundIn.NOWHERE)})"
    if primary is None:
        meaning = diagnosis.errors[0].summary if diagnosis.errors else "No cause could be determined."
        return f"{subject}\n\n{meaning}"
    return f"{subject}\n\n{_label(primary)}: {primary.summary}"


def _recheck(diagnosis: Diagnosis) -> str:
    line = rechecked_line(diagnosis)
    if line is None:
        return ""
    return "\n".join([line, "What changed:", *(f"  • {change}" for change in change_lines(diagnosis))])


def _findings(diagnosis: Diagnosis) -> list[str]:
    blocks = []
    for index, finding in enumerate(diagnosis.findings):
        lines = [] if index == 0 else [f"{_label(finding)}: {finding.summary}"]
        lines += [f"  • {line}" for line in finding.evidence]
        if finding.fix:
            lines.append("  Fix:")
            lines += [f"    {n}. {step}" for n, step in enumerate(finding.fix, 1)]
        blocks.append("\n".join(lines))
    return blocks


def _label(finding: Finding) -> str:
    return f"[{finding.severity.value}] {finding.cause.value}"


def _codes(diagnosis: Diagnosis) -> str:
    lines = []
    for info in diagnosis.errors:
        lines.append(f"AADSTS{info.code} {info.name} ({info.category.value}): {info.summary}")
        if not diagnosis.findings:
            lines += [f"    {n}. {step}" for n, step in enumerate(info.fix, 1)]
        lines.append(f"    {info.lookup_url}")
    return "What the error code means:\n" + "\n".join(lines) if lines else ""


def _credentials(diagnosis: Diagnosis) -> str:
    app = diagnosis.app
    if app is None or not app.credentials:
        return ""
    ref = diagnosis.reference_time
    rows: list[tuple[str, ...]] = [("kind", "name", "hint", "start", "end", "state", "days left")]
    rows += [_row(c, ref) for c in app.credentials]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    table = "\n".join(
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )
    return f"Credentials of '{app.display_name}' at {_day(ref)}:\n{table}"


def _row(credential: Credential, ref: datetime) -> tuple[str, ...]:
    days = credential.days_left(ref)
    return (
        credential.kind.value,
        credential.display_name or "-",
        credential.hint or "-",
        _day(credential.start),
        _day(credential.end),
        credential.state_at(ref).value,
        "-" if days is None else str(days),
    )


def _day(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


def _graph(diagnosis: Diagnosis) -> str:
    graph = diagnosis.graph
    if graph.mode is GraphMode.NONE:
        line = "Checked the error text only (no Graph access configured)."
    else:
        line = f"Graph: {graph.mode.value}, {graph.round_trips} round trip(s)."
    if graph.missing_permissions:
        line += f" Missing permissions: {', '.join(graph.missing_permissions)}."
    notes = "".join(f"\nNote: {note}" for note in diagnosis.notes)
    return line + notes
