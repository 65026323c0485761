"""One channel-neutral view of an answer; the Teams and Slack renderers lay it out natively.

Everything here is decided once: the headline, its tone, what is evidence, which rows of the
credentials table fit, and where long content is cut ("and N more").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from bot.domain import (
    LOOKUP_URL,
    Cause,
    CodeInfo,
    CommandReply,
    Credential,
    CredentialState,
    Diagnosis,
    Finding,
    FoundIn,
    GraphMode,
    Severity,
    Verb,
)
from cards.limits import shorten
from cards.welcome import EXAMPLE_PASTE, HELP_FOOTER, HELP_SECTIONS, HELP_SUBJECT, HELP_TITLE, Section
from cards.words import and_more

MAX_CREDENTIAL_ROWS = 10
MAX_EVIDENCE = 8
MAX_FIX_STEPS = 6
MAX_OTHER_FINDINGS = 5
MAX_CODES = 4
MAX_TITLE = 300
MAX_NAME = 120
MAX_TEXT = 400  # characters of one line of evidence or one step; the card stays readable on a phone
SHORT_TEXT = 160  # a line's length once `shrink` has cut every list as far as it goes
_T = TypeVar("_T")


class Kind(StrEnum):
    DIAGNOSIS = "diagnosis"  # Graph answered
    PARSE_ONLY = "parse_only"  # no Graph configured: the text alone
    NOTHING = "nothing"  # no error recognised in the paste
    HELP = "help"  # the message asked what the bot does
    COMMAND = "command"  # the answer to a chat command (`watch`, `unwatch`, `watching`)
    PARTIAL = "partial"  # Graph refused part of the lookup
    GRAPH_UNAVAILABLE = "graph_unavailable"  # Graph failed or throttled: the text alone
    ROTATION = "rotation"  # a rotation request's card (cards.rotation_view)


class Tone(StrEnum):
    """How alarming a piece is; each renderer maps it to its own colours."""

    BAD = "bad"
    WARN = "warn"
    GOOD = "good"
    NEUTRAL = "neutral"


@dataclass(frozen=True)
class CredentialRow:
    kind: str
    name: str
    hint: str
    start: str
    end: str
    state: str
    days_left: int | None
    tone: Tone


@dataclass(frozen=True)
class CodeLine:
    code: int
    name: str
    summary: str
    url: str


@dataclass(frozen=True)
class Note:
    tone: Tone
    label: str
    text: str


@dataclass(frozen=True)
class Button:
    verb: str
    id: str
    title: str


@dataclass(frozen=True)
class LeftOut:
    """How many items of each list the view does not show; the renderers say "and N more ..."."""

    evidence: int = 0
    fix: int = 0
    others: int = 0
    codes: int = 0


@dataclass(frozen=True)
class AnswerView:
    kind: Kind
    title: str  # the primary cause in plain words
    tone: Tone
    subject: str  # codes and app, one line
    cause: str | None
    evidence: tuple[str, ...]
    fix: tuple[str, ...]
    others: tuple[Note, ...]  # further findings, most important first
    credentials: tuple[CredentialRow, ...]
    more_credentials: int
    credentials_title: str
    codes: tuple[CodeLine, ...]
    footer: str
    buttons: tuple[Button, ...] = ()
    rechecked: str | None = None  # "Re-checked … UTC", on an answer to Check again
    changes: tuple[str, ...] = ()  # the "What changed" section of a re-checked answer
    left_out: LeftOut = LeftOut()
    sections: tuple[Section, ...] = ()

    @property
    def lookup_url(self) -> str | None:
        return self.codes[0].url if self.codes else None


NOTHING_TITLE = "No Entra ID error found in that message"
NOTHING_TEXT = (
    "Paste the whole error as your tool printed it (token endpoint JSON, Azure CLI, PowerShell, MSAL, "
    "Terraform, GitHub Actions), including the app id, Trace ID and Timestamp lines, or just an application "
    "(client) id."
)
_SEVERITY_TONE = {Severity.ERROR: Tone.BAD, Severity.WARNING: Tone.WARN, Severity.INFO: Tone.NEUTRAL}
_STATE_TONE = {
    CredentialState.ACTIVE: Tone.GOOD,
    CredentialState.EXPIRED: Tone.BAD,
    CredentialState.NOT_YET_VALID: Tone.WARN,
}
# What each cause is called wherever it is named: card notes, the terminal report.
CAUSE_NAMES = {
    Cause.SECRET_VALUE_PASTED: "Secret value pasted",
    Cause.SECRET_ID_USED_AS_VALUE: "Secret ID used as the secret",
    Cause.ALL_SECRETS_EXPIRED: "All secrets expired",
    Cause.EXPIRED_SECRET_IN_USE: "Expired secret still in use",
    Cause.SECRET_MISMATCH: "Wrong secret",
    Cause.SECRET_RECENTLY_ADDED: "Secret just added",
    Cause.NO_SECRETS: "No secrets",
    Cause.SECRET_MISSING_FROM_REQUEST: "No secret sent",
    Cause.APP_NOT_FOUND: "App not found",
    Cause.APP_DELETED: "App deleted",
    Cause.APP_IN_OTHER_TENANT: "App from another tenant",
    Cause.APP_DISABLED: "App disabled",
    Cause.TENANT_MISMATCH: "Wrong tenant",
    Cause.SECRET_LIMIT_REACHED: "Secret limit reached",
    Cause.SECRET_EXPIRING_SOON: "Secret expiring soon",
    Cause.APP_ID_MASKED: "App id masked",
    Cause.NO_APP_ID: "No app id",
    Cause.UNKNOWN_CODE: "Unknown code",
    Cause.PERMISSION_MISSING: "Permission missing",
}
FOUND_IN_WORDS = {
    FoundIn.TENANT: "registered in this tenant",
    FoundIn.DELETED: "deleted",
    FoundIn.OTHER_TENANT: "registered in another tenant",
    FoundIn.NOWHERE: "not in this tenant",
}
# A file without service principals or deleted apps (`az ad app list --all`) speaks only for itself.
EXPORT_FOUND_IN_WORDS = {**FOUND_IN_WORDS, FoundIn.TENANT: "in this export", FoundIn.NOWHERE: "not in this export"}


def found_in_words(diagnosis: Diagnosis, found_in: FoundIn) -> str:
    complete = diagnosis.graph.coverage.complete_directory
    return (FOUND_IN_WORDS if complete else EXPORT_FOUND_IN_WORDS)[found_in]


def answer_view(diagnosis: Diagnosis) -> AnswerView:
    if diagnosis.asked_for_help:
        return help_view()
    if diagnosis.command is not None:
        return command_view(diagnosis.command)
    if diagnosis.rotation is not None:
        from cards.rotation_view import rotation_view  # it builds on this module's view

        return rotation_view(diagnosis.rotation)
    if not diagnosis.input.recognised:
        return _nothing()
    primary = diagnosis.primary
    kind = _kind(diagnosis)
    codes = tuple(_code_line(c) for c in diagnosis.errors[:MAX_CODES])
    title, tone, evidence, fix = _headline(diagnosis, primary, kind)
    rows, more = _credentials(diagnosis)
    others = tuple(_note(f) for f in diagnosis.findings if f is not primary or primary.summary != title)
    return AnswerView(
        kind=kind,
        title=clip(title, MAX_TITLE),
        tone=tone,
        subject=_subject(diagnosis),
        cause=primary.cause.value if primary else None,
        evidence=tuple(clip(e) for e in evidence[:MAX_EVIDENCE]),
        fix=tuple(clip(f) for f in fix[:MAX_FIX_STEPS]),
        # The primary finding is the headline, unless the headline had to explain the code instead.
        others=others[:MAX_OTHER_FINDINGS],
        credentials=rows,
        more_credentials=more,
        credentials_title=_credentials_title(diagnosis),
        codes=codes + _unknown_codes(diagnosis, len(codes)),
        footer=_footer(diagnosis, kind),
        buttons=_buttons(diagnosis),
        rechecked=rechecked_line(diagnosis),
        changes=change_lines(diagnosis),
        sections=_rotation_offer(diagnosis),
        left_out=LeftOut(
            evidence=max(len(evidence) - MAX_EVIDENCE, 0),
            fix=max(len(fix) - MAX_FIX_STEPS, 0),
            others=max(len(others) - MAX_OTHER_FINDINGS, 0),
            codes=max(len(diagnosis.input.codes) - MAX_CODES, 0),
        ),
    )


def clip(text: str, limit: int = MAX_TEXT) -> str:
    return shorten(text, limit)


def shrink(view: AnswerView) -> AnswerView | None:
    """The same answer, smaller, for a platform whose size limit the view passes; None when nothing
    more can go. Halves every list down to a few items, counting what it leaves out, then shortens
    long lines."""
    evidence, fix, others = _half(view.evidence, 2), _half(view.fix, 3), _half(view.others, 1)
    credentials, codes = _half(view.credentials, 3), _half(view.codes, 1)
    left = view.left_out
    if len(evidence) + len(fix) + len(others) + len(credentials) + len(codes) < _shown(view):
        return replace(
            view,
            evidence=evidence,
            fix=fix,
            others=others,
            credentials=credentials,
            more_credentials=view.more_credentials + len(view.credentials) - len(credentials),
            codes=codes,
            left_out=LeftOut(
                evidence=left.evidence + len(view.evidence) - len(evidence),
                fix=left.fix + len(view.fix) - len(fix),
                others=left.others + len(view.others) - len(others),
                codes=left.codes + len(view.codes) - len(codes),
            ),
        )
    lines = (view.title, view.subject, *view.evidence, *view.fix, *(n.text for n in view.others))
    if all(len(line) <= SHORT_TEXT for line in lines):
        return None
    return replace(
        view,
        title=clip(view.title, SHORT_TEXT),
        subject=clip(view.subject, SHORT_TEXT),
        evidence=tuple(clip(e, SHORT_TEXT) for e in view.evidence),
        fix=tuple(clip(f, SHORT_TEXT) for f in view.fix),
        others=tuple(replace(n, text=clip(n.text, SHORT_TEXT)) for n in view.others),
        credentials=tuple(replace(r, name=clip(r.name, 40)) for r in view.credentials),
    )


def _shown(view: AnswerView) -> int:
    return len(view.evidence) + len(view.fix) + len(view.others) + len(view.credentials) + len(view.codes)


def _half(items: tuple[_T, ...], floor: int) -> tuple[_T, ...]:
    return items[: max(len(items) // 2, floor)]


def help_view() -> AnswerView:
    """The welcome: what the bot does, what to paste, what it never does with secrets, where to find it."""
    return _fixed(Kind.HELP, HELP_TITLE, HELP_SUBJECT, HELP_SECTIONS, HELP_FOOTER)


COMMAND_SUBJECT = "Expiry warnings in this channel"
COMMAND_FOOTER = "Say help to see everything secretbot does."


def command_view(reply: CommandReply) -> AnswerView:
    """A chat command's answer, laid out like the welcome: a title and headed lines of our wording."""
    sections = tuple(Section(heading, lines) for heading, lines in reply.sections)
    view = _fixed(Kind.COMMAND, clip(reply.title, MAX_TITLE), COMMAND_SUBJECT, sections, COMMAND_FOOTER)
    return view if reply.understood else replace(view, tone=Tone.WARN)


def _nothing() -> AnswerView:
    """A real paste with nothing recognisable in it: say so, say what is read, show one example."""
    sections = (Section("What I read", (NOTHING_TEXT,)), Section("For example", (EXAMPLE_PASTE,), examples=True))
    footer = "Say help to see everything secretbot does."
    return _fixed(
        Kind.NOTHING, NOTHING_TITLE, "I read AADSTS errors, the logs around them, and app ids", sections, footer
    )


def _fixed(kind: Kind, title: str, subject: str, sections: tuple[Section, ...], footer: str) -> AnswerView:
    return AnswerView(
        kind=kind,
        title=title,
        tone=Tone.NEUTRAL,
        subject=subject,
        cause=None,
        evidence=(),
        fix=(),
        others=(),
        credentials=(),
        more_credentials=0,
        credentials_title="",
        codes=(),
        footer=footer,
        sections=sections,
    )


def _kind(diagnosis: Diagnosis) -> Kind:
    if diagnosis.notes and diagnosis.found_in is None and diagnosis.graph.mode is not GraphMode.NONE:
        return Kind.GRAPH_UNAVAILABLE
    if diagnosis.graph.missing_permissions:
        return Kind.PARTIAL
    if diagnosis.graph.mode is GraphMode.NONE or diagnosis.found_in is None:
        return Kind.PARSE_ONLY
    return Kind.DIAGNOSIS


def _headline(
    diagnosis: Diagnosis, primary: Finding | None, kind: Kind
) -> tuple[str, Tone, tuple[str, ...], tuple[str, ...]]:
    if leading_finding(diagnosis) is not None and primary is not None:
        return primary.summary, _SEVERITY_TONE[primary.severity], primary.evidence, primary.fix
    if diagnosis.errors:  # no finding of weight: explain the code itself
        info = diagnosis.errors[0]
        return info.summary, Tone.BAD, (), info.fix
    if kind is Kind.GRAPH_UNAVAILABLE:
        return "Microsoft Graph could not be asked about this app.", Tone.WARN, diagnosis.notes, ()
    if kind is Kind.PARSE_ONLY:
        return "Graph access is not configured, so this app's credentials were not checked.", Tone.NEUTRAL, (), ()
    return "Nothing looks wrong with this app's credentials.", Tone.GOOD, (), ()


def cause_name(cause: Cause) -> str:
    return CAUSE_NAMES.get(cause) or cause.value.replace("_", " ").capitalize()


def leading_finding(diagnosis: Diagnosis) -> Finding | None:
    """The finding an answer leads with; None when the error code explains more than any finding
    (only notes such as "no app id" were found), so the answer leads with the code's meaning and fix."""
    primary = diagnosis.primary
    if primary is not None and (primary.severity is not Severity.INFO or not diagnosis.errors):
        return primary
    return None


def _subject(diagnosis: Diagnosis) -> str:
    parts = [_code_list(diagnosis.input.codes)] if diagnosis.input.codes else []
    app = diagnosis.app
    if app is not None and app.display_name:
        parts.append(f"{clip(app.display_name, MAX_NAME)} ({app.app_id})")
    elif diagnosis.input.app_id:
        parts.append(f"app {diagnosis.input.app_id}")
    if diagnosis.found_in is not None:
        parts.append(found_in_words(diagnosis, diagnosis.found_in))
    return " · ".join(parts) or "Entra ID error"


def _code_list(codes: tuple[int, ...]) -> str:
    named = ", ".join(f"AADSTS{c}" for c in codes[:MAX_CODES])
    rest = len(codes) - MAX_CODES
    return f"{named} {and_more(rest, 'code')}" if rest > 0 else named


def _note(finding: Finding) -> Note:
    label = cause_name(finding.cause)
    text = finding.summary
    if finding.cause is Cause.PERMISSION_MISSING and finding.evidence:
        text = f"{text} {finding.evidence[0]}"
    return Note(_SEVERITY_TONE[finding.severity], label, clip(text))


def _code_line(info: CodeInfo) -> CodeLine:
    return CodeLine(info.code, info.name, info.summary, info.lookup_url)


def _unknown_codes(diagnosis: Diagnosis, shown: int) -> tuple[CodeLine, ...]:
    known = {c.code for c in diagnosis.errors}
    unknown = [c for c in diagnosis.input.codes if c not in known][: max(MAX_CODES - shown, 0)]
    return tuple(
        CodeLine(c, "Unknown code", "Not in our catalog yet; Microsoft's page may know it.", LOOKUP_URL.format(code=c))
        for c in unknown
    )


def _credentials(diagnosis: Diagnosis) -> tuple[tuple[CredentialRow, ...], int]:
    app = diagnosis.app
    if app is None:
        return (), 0
    ref = diagnosis.reference_time
    # Expired and soon-to-expire first: those are the rows a person needs on a small screen.
    ordered = sorted(app.credentials, key=lambda c: (c.state_at(ref) is CredentialState.ACTIVE, c.end or ref))
    rows = tuple(_row(c, ref) for c in ordered[:MAX_CREDENTIAL_ROWS])
    return rows, max(len(ordered) - MAX_CREDENTIAL_ROWS, 0)


def _row(credential: Credential, ref: datetime) -> CredentialRow:
    state = credential.state_at(ref)
    days = credential.days_left(ref)
    tone = _STATE_TONE[state]
    if state is CredentialState.ACTIVE and days is not None and days <= 30:
        tone = Tone.WARN
    return CredentialRow(
        kind=credential.kind.value,
        name=clip(credential.display_name or "(no name)", 80),
        hint=credential.hint or "-",
        start=_day(credential.start),
        end=_day(credential.end),
        state=state.value.replace("_", " "),
        days_left=days,
        tone=tone,
    )


def _credentials_title(diagnosis: Diagnosis) -> str:
    return f"Credentials on {diagnosis.reference_time.strftime('%Y-%m-%d %H:%M')} UTC"


def _day(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d") if moment else "-"


def _buttons(diagnosis: Diagnosis) -> tuple[Button, ...]:
    """Only buttons whose feature works here: re-checking needs an app id and Graph.

    The button carries the id of the question kept server side; without one (the state store was
    down) the bare app id, which re-checks the app alone."""
    offer = diagnosis.rotation_offer
    rotate = (
        (Button(Verb.ROTATION_REQUEST.value, offer.app_id, "Request rotation"),) if offer and not offer.why_not else ()
    )
    if not diagnosis.recheckable or diagnosis.input.app_id is None:
        return rotate
    return (Button(Verb.RECHECK.value, diagnosis.question_id or diagnosis.input.app_id, "Check again"), *rotate)


def _rotation_offer(diagnosis: Diagnosis) -> tuple[Section, ...]:
    """Where a rotation would help but cannot be requested here: why not, and what would enable it."""
    offer = diagnosis.rotation_offer
    return (Section("Rotation from chat", (clip(offer.why_not),)),) if offer and offer.why_not else ()


def rechecked_line(diagnosis: Diagnosis) -> str | None:
    recheck = diagnosis.recheck
    if recheck is None:
        return None
    text = f"Re-checked {_minute(recheck.checked_at)}"
    if recheck.first_answered_at is not None:
        text += f" (first answered {_minute(recheck.first_answered_at)})"
    return text + "."


def change_lines(diagnosis: Diagnosis) -> tuple[str, ...]:
    recheck = diagnosis.recheck
    if recheck is None:
        return ()
    lines = [clip(f"{c.what} {c.meaning}") for c in recheck.changes[:MAX_EVIDENCE]]
    if recheck.first_answered_at is not None and not recheck.changes and diagnosis.found_in is not None:
        lines.append("Nothing changed in Graph since the first answer.")
    if recheck.note:
        lines.append(recheck.note)
    return tuple(lines)


def _minute(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _footer(diagnosis: Diagnosis, kind: Kind) -> str:
    graph = diagnosis.graph
    if kind is Kind.PARSE_ONLY and graph.mode is GraphMode.NONE:
        return "Checked the error text only: Graph access is not configured."
    if kind is Kind.GRAPH_UNAVAILABLE:
        return "Checked the error text only: " + " ".join(diagnosis.notes)
    requests = "1 request" if graph.round_trips == 1 else f"{graph.round_trips} requests"
    text = f"Checked with Microsoft Graph ({graph.mode.value}, {requests})."
    if graph.missing_permissions:
        text += f" Missing permission: {', '.join(graph.missing_permissions)}."
    return text
