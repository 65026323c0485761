"""Check again: keep the question behind an answer, ask it again against Graph now, say what changed.

The first answer's cause is about what the client sent at the time of the error. Graph cannot see
the client, so a re-check keeps that cause unless Graph shows its evidence gone for good: the app
restored, enabled or registered here (a fix made in the directory alone), or a different cause that
now explains the error (a secret added where none was valid). Removing the expired secret that a
client still sends, for example, fixes nothing: that cause stays, and the card says what the removal
means.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from bot.domain import (
    Cause,
    Change,
    Credential,
    CredentialKind,
    Diagnosis,
    Finding,
    FirstAnswer,
    FoundIn,
    Notice,
    NoticeReason,
    Question,
    Recheck,
    Severity,
    StateUnavailable,
)
from handlers.diagnose import diagnose, diagnose_parsed
from handlers.inbound import Deps, InboundAction
from handlers.parse.extract import GUID_RE
from handlers.rules import PROPAGATION_WINDOW, describe, when

log = logging.getLogger(__name__)

ID_BYTES = 16  # secrets.token_urlsafe(16): 22 characters, never GUID-shaped, not guessable
MAX_ID = 64  # longer button values are not ours: answered without asking the store
TOO_OLD = (
    "This answer is too old to check again (answers are kept for 7 days), or it was never kept. "
    "Paste the error again for a fresh answer."
)
UNREACHABLE = (
    "The question behind this answer cannot be loaded right now (the bot's state store is not answering). "
    "Try again in a minute, or paste the error again."
)
NOT_KEPT = (
    "This card's original question was not kept, so only the app itself was checked, as it is now. "
    "Paste the error again to check the error itself."
)
CAUSE_KEPT = (
    "Graph no longer shows what made this the cause, but nothing in Graph proves the client changed: "
    "the cause stands until the failing call succeeds."
)
NO_GRAPH = "Graph could not be asked, so the first answer's cause stands."

# Causes whose fix is made in the directory alone: once Graph shows it made, the cause is gone.
DIRECTORY_CAUSES = frozenset({Cause.APP_DELETED, Cause.APP_DISABLED, Cause.APP_NOT_FOUND, Cause.APP_IN_OTHER_TENANT})
# Causes about the moment of the error, which Graph now cannot re-judge (a secret minutes old then).
MOMENT_CAUSES = frozenset({Cause.SECRET_RECENTLY_ADDED})
_GRAPH_ANSWERED = frozenset({FoundIn.TENANT, FoundIn.DELETED})


def question_of(diagnosis: Diagnosis, answered_at: datetime) -> Question:
    app = diagnosis.app
    credentials = app.credentials if app is not None and diagnosis.found_in in _GRAPH_ANSWERED else ()
    return Question(diagnosis.input, FirstAnswer(answered_at, diagnosis.primary, diagnosis.found_in, credentials))


async def remember(diagnosis: Diagnosis, deps: Deps) -> Diagnosis:
    """Keep the question when the card offers Check again; the button then carries its new id.

    Without the store the answer still goes out, and its button carries the bare app id (as old
    cards did): a press then checks the app alone and says so.
    """
    if not diagnosis.recheckable:
        return diagnosis
    import secrets  # here: it loads hmac and OpenSSL (~4 ms), and the CLI's answers store no question

    question_id = secrets.token_urlsafe(ID_BYTES)
    try:
        await deps.state.save_question(question_id, question_of(diagnosis, deps.now()))
    except StateUnavailable as error:
        log.warning("state store unavailable (%s): question not kept, Check again will see the app only", error.reason)
        return diagnosis
    return replace(diagnosis, question_id=question_id)


async def recheck(action: InboundAction, deps: Deps) -> Diagnosis | Notice:
    """The stored question asked again, Graph as it is now; a Notice when there is nothing to ask."""
    now = deps.now()
    if GUID_RE.fullmatch(action.id.lower()):  # a card from before questions were kept, or kept without a store
        diagnosis = await diagnose(action.id, directory=deps.directory, now=now)
        return replace(diagnosis, recheck=Recheck(now, None, note=NOT_KEPT))
    if not action.id or len(action.id) > MAX_ID:
        return Notice(NoticeReason.EXPIRED, TOO_OLD)
    try:
        question = await deps.state.question(action.id)
    except StateUnavailable as error:
        log.warning("state store unavailable (%s): question not loaded", error.reason)
        return Notice(NoticeReason.UNAVAILABLE, UNREACHABLE)
    if question is None:
        return Notice(NoticeReason.EXPIRED, TOO_OLD)
    fresh = await diagnose_parsed(question.input, directory=deps.directory, now=now, ref=now)
    return replace(compare(question.first, fresh, now), question_id=action.id)


def compare(first: FirstAnswer, fresh: Diagnosis, now: datetime) -> Diagnosis:
    """The fresh answer, with the first answer's cause where it still stands and what changed since."""
    # "Added minutes before the error" judged against now would be wrong; new secrets are changes instead.
    current = tuple(f for f in fresh.findings if f.cause not in MOMENT_CAUSES)
    answered = fresh.found_in is not None
    findings, kept = _decide(first.finding, current, answered)
    changes = _app_changes(first, fresh) + _credential_changes(first, fresh, now)
    note = CAUSE_KEPT if kept and answered else NO_GRAPH if kept else None
    return replace(fresh, findings=findings, recheck=Recheck(now, first.answered_at, changes, kept, note))


def _decide(first: Finding | None, current: tuple[Finding, ...], answered: bool) -> tuple[tuple[Finding, ...], bool]:
    if first is None or first.severity is not Severity.ERROR or any(f.cause is first.cause for f in current):
        return current, False
    other_cause = any(f.severity is Severity.ERROR for f in current) and first.cause not in MOMENT_CAUSES
    if answered and (first.cause in DIRECTORY_CAUSES or other_cause):
        return current, False
    return (first, *current), True


# What it means when Graph finds the app somewhere else than at the first answer (then, now).
_RESTORED = Change("The app was restored from deleted items.", "Its secrets came back with it: retry the failing call.")
_REGISTERED = Change("The app is now registered in this tenant.", "Retry the failing call.")
_MOVES = {
    (FoundIn.DELETED, FoundIn.TENANT): _RESTORED,
    (FoundIn.NOWHERE, FoundIn.TENANT): _REGISTERED,
    (FoundIn.OTHER_TENANT, FoundIn.TENANT): _REGISTERED,
    (FoundIn.TENANT, FoundIn.DELETED): Change(
        "The app was deleted since the first answer.", "Nothing can sign in with it until it is restored."
    ),
    (FoundIn.TENANT, FoundIn.NOWHERE): Change(
        "The app is no longer in this tenant.", "Nothing can sign in with it here."
    ),
}
_ENABLED = Change("The app is enabled again.", "Retry the failing call.")


def _app_changes(first: FirstAnswer, fresh: Diagnosis) -> tuple[Change, ...]:
    move = _MOVES.get((first.found_in, fresh.found_in)) if first.found_in and fresh.found_in else None
    changes = [move] if move else []
    disabled_now = any(_is_error(f, Cause.APP_DISABLED) for f in fresh.findings)
    if _is_error(first.finding, Cause.APP_DISABLED) and fresh.found_in is FoundIn.TENANT and not disabled_now:
        changes.append(_ENABLED)
    return tuple(changes)


def _is_error(finding: Finding | None, cause: Cause) -> bool:
    return finding is not None and finding.cause is cause and finding.severity is Severity.ERROR


def _credential_changes(first: FirstAnswer, fresh: Diagnosis, now: datetime) -> tuple[Change, ...]:
    if first.found_in not in _GRAPH_ANSWERED or fresh.found_in not in _GRAPH_ANSWERED or fresh.app is None:
        return ()  # one of the two answers did not see the app's credentials: nothing to compare
    before = {c.key_id: c for c in first.credentials}
    after = {c.key_id: c for c in fresh.app.credentials}
    added = sorted((c for key, c in after.items() if key not in before), key=_start)
    removed = sorted((c for key, c in before.items() if key not in after), key=_start)
    return tuple(_added(c, now) for c in added) + tuple(_removed(c) for c in removed)


def _added(credential: Credential, now: datetime) -> Change:
    what = f"Added at {when(credential.start)}: {describe(credential)}."
    if credential.kind is CredentialKind.CERTIFICATE:
        return Change(what, "If the client is meant to use it, configure the client with this certificate.")
    meaning = "The client must be updated to use it: put its value where the client reads its secret, then restart it."
    start = credential.start
    if start is not None and timedelta(0) <= now - start < PROPAGATION_WINDOW:
        meaning += " Entra ID can take a few minutes to accept a new secret."
    return Change(what, meaning)


def _removed(credential: Credential) -> Change:
    what = f"Removed: {describe(credential)}."
    if credential.kind is CredentialKind.CERTIFICATE:
        return Change(what, "Anything that still signs in with it now fails.")
    return Change(
        what,
        "Removing it does not update the client: one still sending it now fails with AADSTS7000215 "
        "(an invalid secret) instead.",
    )


def _start(credential: Credential) -> str:
    return credential.start.isoformat() if credential.start else ""  # Graph's times are all UTC
