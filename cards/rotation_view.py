"""A rotation request's card as one channel-neutral view: who asked, for which app and why, the secret
it replaces, the new secret's lifetime and where its value goes, then each step as it happened, with
the buttons the current state allows. Drawn by the same renderers as every answer (Block Kit,
Adaptive Card, text). Never a value: the record holds none."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from bot.domain import Verb
from bot.rotation_types import Rotation, RotationState
from cards.view import MAX_TEXT, MAX_TITLE, AnswerView, Button, Kind, Tone, _fixed, clip
from cards.welcome import Section

FOOTER = "Secret values are never shown in chat: the new one goes only to Key Vault."
MAX_STEPS = 12

_TITLES = {
    RotationState.REQUESTED: ("Rotation requested", Tone.WARN),
    RotationState.APPROVED: ("Rotation approved", Tone.NEUTRAL),
    RotationState.ADDED: ("Rotating: new secret added", Tone.NEUTRAL),
    RotationState.STORED: ("Rotating: new secret stored in Key Vault", Tone.NEUTRAL),
    RotationState.PROVEN: ("Rotating: new secret proven", Tone.NEUTRAL),
    RotationState.DONE: ("Rotation done", Tone.GOOD),
    RotationState.RETIRING: ("Retiring the old secret", Tone.NEUTRAL),
    RotationState.RETIRED: ("Rotation done, old secret retired", Tone.GOOD),
    RotationState.REJECTED: ("Rotation rejected", Tone.NEUTRAL),
    RotationState.EXPIRED: ("Rotation request expired", Tone.NEUTRAL),
    RotationState.FAILED: ("Rotation failed", Tone.BAD),
}
_STEP_WORDS = {
    RotationState.REQUESTED: "requested",
    RotationState.APPROVED: "approved",
    RotationState.ADDED: "secret added",
    RotationState.STORED: "stored in Key Vault",
    RotationState.PROVEN: "token proven",
    RotationState.DONE: "done",
    RotationState.RETIRING: "retire approved",
    RotationState.RETIRED: "old secret removed",
    RotationState.REJECTED: "rejected",
    RotationState.EXPIRED: "expired",
    RotationState.FAILED: "failed",
}


def rotation_view(rotation: Rotation) -> AnswerView:
    title, tone = _TITLES[rotation.state]
    subject = f"{rotation.app_name} · app {rotation.app_id} · request {rotation.id}"
    sections = [Section("Request", _request_lines(rotation)), Section("Steps", _steps(rotation))]
    if rotation.problem and rotation.state in (RotationState.FAILED, RotationState.REJECTED):
        sections.append(
            Section("What went wrong" if rotation.state is RotationState.FAILED else "Why", (clip(rotation.problem),))
        )
    sections.append(Section("Next", (_next(rotation),)))
    view = _fixed(Kind.ROTATION, clip(f"{title}: {rotation.app_name}", MAX_TITLE), subject, tuple(sections), FOOTER)
    return _with(view, tone, _buttons(rotation))


def _with(view: AnswerView, tone: Tone, buttons: tuple[Button, ...]) -> AnswerView:
    return replace(view, tone=tone, buttons=buttons)


def _request_lines(rotation: Rotation) -> tuple[str, ...]:
    replaces = (
        f"Replaces the secret {rotation.replaces_hint or ''}… (secret id {rotation.replaces})"
        if rotation.replaces
        else "Replaces no secret (the app has none yet)"
    )
    return (
        clip(f"Requested by {rotation.requester.shown} on {_minute(rotation.requested_at)}"),
        clip(f"Reason: {rotation.reason}", MAX_TEXT),
        clip(replaces),
        f"New secret's lifetime: {rotation.lifetime_days} days, or less where the tenant's policy says so",
        clip(f"The value goes to: {rotation.vault_location}, secret {rotation.vault_name}"),
    )


def _steps(rotation: Rotation) -> tuple[str, ...]:
    lines = []
    for entry in rotation.history[-MAX_STEPS:]:
        words = _STEP_WORDS[entry.state]
        if entry.state is RotationState.ADDED and "new_key_id" in entry.ids:
            words = f"secret added (hint {rotation.new_hint or '?'}…, ends {_day(rotation.new_end)})"
        elif entry.state is RotationState.STORED:
            words = f"stored in Key Vault {rotation.vault_name} version {entry.ids.get('vault_version', '?')}"
        elif entry.state in (RotationState.APPROVED, RotationState.REJECTED, RotationState.RETIRING):
            words = f"{words} by {entry.by}"
            if entry.state is RotationState.RETIRING and entry.detail:
                words += f": {entry.detail}"  # the evidence that allowed it
        elif entry.state is RotationState.FAILED:
            words = "failed"
        elif entry.state is RotationState.EXPIRED:
            words = f"expired, nobody approved within {_approval_window(rotation)}"
        lines.append(clip(f"{_minute(entry.at)} · {words}"))
    return tuple(lines)


def _next(rotation: Rotation) -> str:
    state = rotation.state
    if state is RotationState.REQUESTED:
        who, until = rotation.requester.shown, _minute(rotation.expires_at)
        return f"An approver other than {who} approves or rejects it before {until}."
    if state is RotationState.DONE:
        if rotation.replaces is None:
            return "Point the app's clients at the Key Vault secret."
        return (
            "Point the app's clients at the Key Vault secret. Once they stop using the old one (or after the "
            "grace period), an approver retires it."
        )
    if state is RotationState.FAILED:
        return "The old secret still works. Fix what went wrong, then ask again."
    if state is RotationState.EXPIRED:
        return f"Expired, nobody approved within {_approval_window(rotation)}; request again. Nothing was changed."
    if state is RotationState.REJECTED:
        return "Nothing was changed. Ask again when it is time."
    if state is RotationState.RETIRED:
        return "Nothing left to do."
    return "The bot is working on it; this card follows each step."


def _buttons(rotation: Rotation) -> tuple[Button, ...]:
    if rotation.state is RotationState.REQUESTED:
        return (
            Button(Verb.ROTATION_APPROVE.value, rotation.id, "Approve"),
            Button(Verb.ROTATION_REJECT.value, rotation.id, "Reject"),
        )
    if rotation.state is RotationState.DONE and rotation.replaces:
        return (Button(Verb.ROTATION_RETIRE.value, rotation.id, "Retire old secret"),)
    return ()


def _approval_window(rotation: Rotation) -> str:
    """The approval TTL the request had, in hours ("24 h") or minutes when shorter."""
    seconds = (rotation.expires_at - rotation.requested_at).total_seconds()
    return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{max(1, round(seconds / 60))} min"


def _minute(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _day(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d}" if moment else "?"
