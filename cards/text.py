"""Plain-text rendering of a diagnosis: the terminal report, and the fallback for chat and logs.

It says what the cards say, in full: the cause by the same name, the evidence, the fix steps, every
credential. A terminal has no size limit, so nothing is summarised away.
"""

from __future__ import annotations

from datetime import datetime

from bot.domain import CodeInfo, Credential, Diagnosis, Finding, FoundIn, GraphMode
from cards.view import (
    AnswerView,
    answer_view,
    cause_name,
    change_lines,
    command_view,
    found_in_words,
    help_view,
    leading_finding,
    rechecked_line,
)
from cards.welcome import EXAMPLE_PASTE
from cards.words import plural

NOTHING_RECOGNISED = (
    "I could not find an Entra ID error in that text.\n\n"
    "I understand AADSTS error messages as tools print them (token endpoint JSON, Azure CLI, PowerShell, "
    "MSAL, Terraform, GitHub Actions logs, stack traces), and a bare application (client) id.\n"
    "Paste the whole error, including the lines with the app id, Trace ID and Timestamp, for example:\n\n"
    f"  {EXAMPLE_PASTE}"
)


def render_text(diagnosis: Diagnosis) -> str:
    if diagnosis.asked_for_help:
        return _fixed(help_view())
    if diagnosis.command is not None:
        return _fixed(command_view(diagnosis.command))
    if diagnosis.rotation is not None:
        return _fixed(answer_view(diagnosis))
    if not diagnosis.input.recognised:
        return NOTHING_RECOGNISED + "\n"
    sections = [_headline(diagnosis), *_findings(diagnosis), _codes(diagnosis), _credentials(diagnosis)]
    sections.append(_rotation_offer(diagnosis))
    sections.insert(1, _recheck(diagnosis))  # a re-checked answer says when, and what changed, under its headline
    sections.append(_graph(diagnosis))
    return "\n\n".join(s for s in sections if s).rstrip() + "\n"


def _rotation_offer(diagnosis: Diagnosis) -> str:
    """Where a rotation would help but cannot be requested: why not, as the cards say it."""
    offer = diagnosis.rotation_offer
    return f"Rotation from chat:\n  {offer.why_not}" if offer and offer.why_not else ""


def _fixed(view: AnswerView) -> str:
    """The welcome as the cards show it: title, subject, each section, the footer."""
    parts = [f"{view.title}\n{view.subject}."]
    for section in view.sections:
        indent = "    " if section.examples else "  "
        parts.append(f"{section.heading}:\n" + "\n".join(indent + line for line in section.lines))
    return "\n\n".join([*parts, view.footer]) + "\n"


def _headline(diagnosis: Diagnosis) -> str:
    codes = ", ".join(f"AADSTS{c}" for c in diagnosis.input.codes) or "no error code"
    subject = f"{codes} · app {diagnosis.input.app_id}" if diagnosis.input.app_id else codes
    if diagnosis.app and diagnosis.found_in:
        subject += f" ('{diagnosis.app.display_name}', {found_in_words(diagnosis, diagnosis.found_in)})"
    elif diagnosis.found_in is FoundIn.NOWHERE:
        subject += f" ({found_in_words(diagnosis, FoundIn.NOWHERE)})"
    lead = leading_finding(diagnosis)
    if lead is not None:
        return f"{subject}\n\n{_label(lead)}: {lead.summary}"
    if not diagnosis.errors:
        return f"{subject}\n\nNo cause could be determined."
    # Only notes were found (no app id, say): the code's own meaning and fix lead, as on the cards.
    info = diagnosis.errors[0]
    return "\n".join([subject, "", info.summary, *_steps(info.fix)])


def _recheck(diagnosis: Diagnosis) -> str:
    line = rechecked_line(diagnosis)
    if line is None:
        return ""
    return "\n".join([line, "What changed:", *(f"  • {change}" for change in change_lines(diagnosis))])


def _findings(diagnosis: Diagnosis) -> list[str]:
    lead = leading_finding(diagnosis)
    blocks = []
    for finding in diagnosis.findings:
        lines = [] if finding is lead else [f"{_label(finding)}: {finding.summary}"]
        lines += [f"  • {line}" for line in finding.evidence]
        lines += _steps(finding.fix)
        blocks.append("\n".join(lines))
    return blocks


def _steps(fix: tuple[str, ...]) -> list[str]:
    if not fix:
        return []
    return ["  How to fix it:", *(f"    {n}. {step}" for n, step in enumerate(fix, 1))]


def _label(finding: Finding) -> str:
    return f"[{finding.severity.value}] {cause_name(finding.cause)}"


def _codes(diagnosis: Diagnosis) -> str:
    lines = [line for info in diagnosis.errors for line in _code(info)]
    return "What the error code means:\n" + "\n".join(lines) if lines else ""


def _code(info: CodeInfo) -> list[str]:
    return [f"AADSTS{info.code} {info.name} ({info.category.value}): {info.summary}", f"    {info.lookup_url}"]


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
        credential.state_at(ref).value.replace("_", " "),
        "-" if days is None else str(days),
    )


def _day(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


def _graph(diagnosis: Diagnosis) -> str:
    graph = diagnosis.graph
    if graph.mode is GraphMode.NONE:
        line = "Checked the error text only (no Graph access configured)."
    elif graph.round_trips == 0:
        line = "Checked the error text only: without an app id there was nothing to ask Microsoft Graph."
    else:
        line = f"Checked with Microsoft Graph ({graph.mode.value}, {plural(graph.round_trips, 'request')})."
    if graph.missing_permissions:
        missing = ", ".join(graph.missing_permissions)
        line += f" Missing {'permission' if len(graph.missing_permissions) == 1 else 'permissions'}: {missing}."
    notes = "".join(f"\nNote: {note}" for note in diagnosis.notes)
    return line + notes
