"""One channel-neutral view of a warning digest; the Slack, Teams and text renderers lay it out.

Decided once here: the headline, what each row's problem is in words and what to do about it, who
is mentioned, which rows are shown in full ("and N more" with the way to see them all), the status
line (acknowledged, snoozed), the rotations requested from it and which buttons the card still offers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from bot.domain import CredentialKind, ObjectType, Owner, Verb
from bot.expiry import Digest, Outcome, Problem, WarningRow, owner_address, rotation_candidate
from cards.limits import shorten
from cards.view import Button, Tone
from cards.words import and_more, plural

MAX_ROWS = 10  # rows shown in full; Slack's 50 blocks and Teams' 28 KB leave room for more, a phone does not
MAX_OWNERS = 5  # owners named on one row
MAX_NAME = 120  # characters of an app or credential name
MAX_REQUESTS = 5  # rotation requests named on a warning, the latest; older ones are counted
SEE_ALL = "Run `secretbot scan` to see every credential, or `secretbot scan --format csv` for a spreadsheet."


@dataclass(frozen=True)
class OwnerMention:
    label: str
    slack_user: str | None = None  # a Slack user id to mention, when the lookup found one
    object_id: str | None = None  # an Entra object id, which Teams mentions by


@dataclass(frozen=True)
class DigestLine:
    tone: Tone
    app: str
    subject: str  # "secret 'ci-2025' (starts with Ab1) of the app registration"
    problem: str  # "expires in 5 days, no replacement"
    todo: str  # what to do about it, one or two sentences
    ends: str
    owners: tuple[OwnerMention, ...]
    more_owners: int
    app_id: str


@dataclass(frozen=True)
class DigestView:
    title: str
    tone: Tone
    subject: str
    summary: str
    lines: tuple[DigestLine, ...]
    more: int  # rows not shown
    see_all: str | None
    status: tuple[str, ...]  # who acknowledged or snoozed, and when
    ownerless: int  # apps in the digest without an owner
    buttons: tuple[Button, ...]
    footer: str
    # A line per rotation requested from this warning, each naming its request; the renderers add where
    # the request is (`requested_line`).
    requests: tuple[str, ...] = ()


_TONE = {
    Problem.EXPIRED_ONLY: Tone.BAD,
    Problem.ROTATION_NEEDED: Tone.WARN,
    Problem.EXPIRED: Tone.BAD,
    Problem.ROTATED: Tone.NEUTRAL,
    Problem.EXPIRED_REPLACED: Tone.NEUTRAL,
    Problem.EXPIRED_UNUSED: Tone.NEUTRAL,
}
_SUMMARY = {
    Problem.EXPIRED_ONLY: ("expired with no other credential", "expired with no other credential"),
    Problem.ROTATION_NEEDED: ("needs rotation", "need rotation"),
    Problem.EXPIRED: ("expired next to a valid one", "expired next to valid ones"),
    Problem.ROTATED: ("already rotated", "already rotated"),
    Problem.EXPIRED_REPLACED: ("expired and replaced", "expired and replaced"),
    Problem.EXPIRED_UNUSED: ("expired and unused", "expired and unused"),
}


def digest_view(digest: Digest, max_rows: int = MAX_ROWS) -> DigestView:
    """The view of a digest; `max_rows` rows in full (the text report passes them all)."""
    open_rows = [row for row in digest.rows if row.outcome is None]
    slack_users = dict(digest.slack_users)
    lines = tuple(_line(row, slack_users) for row in digest.rows[:max_rows])
    more = max(len(digest.rows) - max_rows, 0)
    ownerless = len({row.credential.object_id for row in digest.rows if not row.owners})
    return DigestView(
        title=_title(digest, len(open_rows)),
        tone=_headline_tone(open_rows),
        subject=f"Credential expiry warnings · scan of {_minute(digest.scanned_at)}",
        summary=_summary(digest.rows),
        lines=lines,
        more=more,
        see_all=SEE_ALL if more else None,
        status=_status(digest),
        ownerless=ownerless,
        buttons=_buttons(digest, open_rows),
        requests=_requests(digest),
        footer=(
            "Each credential is warned once per threshold in this channel. Acknowledge: not again at these "
            "thresholds. Snooze: one reminder later."
        ),
    )


def _title(digest: Digest, open_count: int) -> str:
    if not open_count:
        return f"Resolved: {plural(len(digest.rows), 'credential')} from this warning no longer need attention"
    return f"{plural(open_count, 'credential')} {'needs' if open_count == 1 else 'need'} attention"


def _headline_tone(open_rows: list[WarningRow]) -> Tone:
    if not open_rows:
        return Tone.GOOD
    return Tone.BAD if any(_TONE[row.problem] is Tone.BAD for row in open_rows) else Tone.WARN


def _summary(rows: tuple[WarningRow, ...]) -> str:
    counts = Counter(row.problem for row in rows if row.outcome is None)
    parts = [f"{n} {_SUMMARY[p][0 if n == 1 else 1]}" for p, n in sorted(counts.items(), key=lambda i: _order(i[0]))]
    resolved = sum(1 for row in rows if row.outcome is not None)
    if resolved:
        parts.append(f"{resolved} resolved since")
    return " · ".join(parts)


def _order(problem: Problem) -> int:
    return list(_SUMMARY).index(problem)


def _line(row: WarningRow, slack_users: dict[str, str]) -> DigestLine:
    owners = tuple(_mention(owner, slack_users) for owner in row.owners[:MAX_OWNERS])
    problem, todo = _words(row)
    if row.outcome is not None:
        todo = _outcome(row)
    return DigestLine(
        tone=Tone.GOOD if row.outcome else _TONE[row.problem],
        app=shorten(row.credential.display_name or row.credential.app_id, MAX_NAME),
        subject=_subject(row),
        problem=problem,
        todo=todo,
        ends=_day(row.credential.end),
        owners=owners,
        more_owners=max(len(row.owners) - MAX_OWNERS, 0),
        app_id=row.credential.app_id,
    )


def _mention(owner: Owner, slack_users: dict[str, str]) -> OwnerMention:
    address = owner_address(owner)
    return OwnerMention(shorten(owner.label, MAX_NAME), slack_users.get(address) if address else None, owner.object_id)


def _subject(row: WarningRow) -> str:
    credential = row.credential
    kind = credential.kind.value
    name = f" '{shorten(credential.name, MAX_NAME)}'" if credential.name else ""
    hint = f" (starts with {credential.hint})" if credential.kind is CredentialKind.SECRET and credential.hint else ""
    usage = " (SAML signing)" if credential.usage == "Sign" else ""
    where = "app registration" if credential.object_type is ObjectType.APPLICATION else "enterprise app"
    return f"{kind}{name}{hint}{usage} of the {where}"


def _words(row: WarningRow) -> tuple[str, str]:
    """The problem in a few words, and what to do about it."""
    kind = row.credential.kind.value
    days = row.scanned.days_left or 0
    ago = plural(-days, "day")
    newer = f" ('{shorten(row.replaced_by_name, MAX_NAME)}')" if row.replaced_by_name else ""
    used = _last_use(row)
    if row.problem is Problem.ROTATION_NEEDED and row.credential.usage == "Sign":
        return (
            f"{_expires(days)}, no replacement",
            "Rotation needed: add a new SAML signing certificate, make it active, give the new certificate "
            "or metadata to the application, then remove this one.",
        )
    if row.problem is Problem.ROTATION_NEEDED:
        return (
            f"{_expires(days)}, no replacement",
            f"Rotation needed: add a new {kind}, move every client to it, then remove this one.",
        )
    if row.problem is Problem.ROTATED:
        return (
            f"{_expires(days)}, but a newer {kind}{newer} outlives it",
            f"Already rotated: check that every client moved to the new one ({used}), then remove this one.",
        )
    if row.problem is Problem.EXPIRED_REPLACED:
        return (
            f"expired {ago} ago; a newer {kind}{newer} replaced it",
            f"Remove it once no client sends it ({used}).",
        )
    if row.problem is Problem.EXPIRED_UNUSED:
        return (
            f"expired and unused for {plural(row.unused_days or 0, 'day')}",
            "Nothing has signed in with it since: remove it.",
        )
    if row.problem is Problem.EXPIRED_ONLY:
        return (
            f"expired {ago} ago, still the only credential",
            f"Nothing can sign in as this app: add a new {kind} and update the clients, "
            "or delete the app if nothing uses it.",
        )
    return (
        f"expired {ago} ago",
        "Other credentials of this app are still valid: remove this one once no client sends it.",
    )


def _expires(days: int) -> str:
    return "expires today" if days == 0 else f"expires in {plural(days, 'day')}"


def _last_use(row: WarningRow) -> str:
    if row.unused_days is None:
        return "its last use is not known"
    if row.unused_days <= 0:
        return "it was used today"
    return f"last used {plural(row.unused_days, 'day')} ago"


def _outcome(row: WarningRow) -> str:
    kind = row.credential.kind.value
    if row.outcome is Outcome.REMOVED:
        return "Removed since this warning: nothing left to do."
    if row.outcome is Outcome.REPLACED:
        return f"Replaced since this warning: a newer {kind} took over and this one is gone."
    return f"A newer {kind} was added since this warning: move the clients to it, then remove this one."


def _status(digest: Digest) -> tuple[str, ...]:
    lines = []
    if digest.acknowledged:
        stamp = digest.acknowledged
        lines.append(f"Acknowledged by {shorten(stamp.by, MAX_NAME)} at {_minute(stamp.at)}.")
    if digest.snoozed:
        snooze = digest.snoozed
        lines.append(
            f"Snoozed until {_minute(snooze.until)} by {shorten(snooze.stamp.by, MAX_NAME)} "
            f"(at {_minute(snooze.stamp.at)}): one reminder then."
        )
    if digest.rechecked:
        stamp = digest.rechecked
        lines.append(f"Checked again with Microsoft Graph by {shorten(stamp.by, MAX_NAME)} at {_minute(stamp.at)}.")
    if digest.rotation_note and not _rotation_offered(digest, [r for r in digest.rows if r.outcome is None]):
        lines.append(digest.rotation_note)
    return tuple(lines)


def _requests(digest: Digest) -> tuple[str, ...]:
    shown = digest.rotations[-MAX_REQUESTS:]
    earlier = len(digest.rotations) - len(shown)
    lines = [
        f"Rotation requested by {shorten(r.by, MAX_NAME)} for {shorten(r.app, MAX_NAME)}, request {r.request_id}"
        for r in shown
    ]
    if earlier:
        lines.insert(0, f"{plural(earlier, 'earlier rotation request')} from this warning")
    return tuple(lines)


def requested_line(line: str, where: str) -> str:
    """A request's line on the card, with where that platform shows the request:
    "Rotation requested by Jonas Berg for payments-api, request 3f…: see the thread." """
    return f"{line}: {where}."


def _buttons(digest: Digest, open_rows: list[WarningRow]) -> tuple[Button, ...]:
    if not open_rows:
        return ()
    buttons = [Button(Verb.EXPIRY_ACK, digest.id, "Acknowledge")] if digest.acknowledged is None else []
    buttons.append(Button(Verb.EXPIRY_RECHECK, digest.id, "Check again"))
    if digest.acknowledged is None:
        buttons += [
            Button(Verb.EXPIRY_SNOOZE_DAY, digest.id, "Snooze 1 day"),
            Button(Verb.EXPIRY_SNOOZE_WEEK, digest.id, "Snooze 7 days"),
        ]
    if _rotation_offered(digest, open_rows):
        buttons.append(Button(Verb.ROTATION_REQUEST, digest.id, "Request rotation"))
    return tuple(buttons)


def _rotation_offered(digest: Digest, open_rows: list[WarningRow]) -> bool:
    """Whether a row needs a rotation, of an app the bot was found allowed to rotate (when it was checked)."""
    rows = [row for row in open_rows if row.problem in (Problem.ROTATION_NEEDED, Problem.EXPIRED_ONLY)]
    if digest.rotatable is None:  # not checked when posted: the click checks
        return bool(rows)
    allowed = {app.lower() for app in digest.rotatable}
    return any(rotation_candidate(row) and row.scanned.credential.app_id.lower() in allowed for row in rows)


def more_line(view: DigestView) -> str | None:
    """ "and 490 more credentials. Run `secretbot scan` …", or None when every row is shown."""
    return f"… {and_more(view.more, 'credential')}. {view.see_all}" if view.more else None


def ownerless_line(view: DigestView) -> str | None:
    if not view.ownerless:
        return None
    apps = plural(view.ownerless, "app")
    verb = "has" if view.ownerless == 1 else "have"
    return f"{apps} in this warning {verb} no owner: add one in Entra ID so someone is accountable."


def capital(text: str) -> str:
    """The problem words start a sentence on a card: "Expires in 5 days, no replacement"."""
    return text[:1].upper() + text[1:]


def _day(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d") if moment else "never"


def _minute(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
