"""Slack: an answer as a Block Kit message, `{"text": fallback, "blocks": [...]}`.

Outside text (app and secret names, pasted fragments, summaries that quote them) is sent as
`plain_text`, which Slack never parses for mentions, links or formatting; our own wording is
`mrkdwn` with &, < and > escaped, so nothing can become `<!channel>` or a link.
"""

from __future__ import annotations

from typing import Any

from bot.domain import Diagnosis
from cards.view import AnswerView, Button, CredentialRow, Tone, answer_view, clip

Json = dict[str, Any]

MAX_SECTION_TEXT = 3000
MAX_HEADER = 150
_EMOJI = {
    Tone.BAD: ":red_circle:",
    Tone.WARN: ":large_orange_circle:",
    Tone.GOOD: ":large_green_circle:",
    Tone.NEUTRAL: ":information_source:",
}
_STATE = {Tone.BAD: "✖", Tone.WARN: "⚠", Tone.GOOD: "✔", Tone.NEUTRAL: "•"}


def render_blockkit(diagnosis: Diagnosis) -> Json:
    return blockkit_message(answer_view(diagnosis))


def blockkit_message(view: AnswerView) -> Json:
    heading = f"{_EMOJI[view.tone]} {view.title}"
    blocks: list[Json] = [{"type": "header", "text": _plain(clip(heading, MAX_HEADER), emoji=True)}]
    if len(heading) > MAX_HEADER:  # the header was cut: show the whole title under it
        blocks.append(_section(_plain(view.title)))
    blocks.append({"type": "context", "elements": [_plain(view.subject)]})
    if view.rechecked:
        blocks.append({"type": "context", "elements": [_plain(view.rechecked)]})
    blocks += _list("What changed", [f"• {line}" for line in view.changes])
    blocks += _list("What we found", [f"• {e}" for e in view.evidence])
    blocks += _list("How to fix it", [f"{n}. {step}" for n, step in enumerate(view.fix, 1)])
    if view.example:
        blocks.append(_section(_plain(view.example)))
    blocks += _others(view)
    blocks += _credentials(view)
    blocks += _codes(view)
    if view.buttons:
        blocks.append({"type": "actions", "elements": [_button(b) for b in view.buttons]})
    blocks.append({"type": "context", "elements": [_mrkdwn(escape(view.footer))]})
    return {"text": fallback_text(view), "blocks": blocks}


def fallback_text(view: AnswerView) -> str:
    """The notification and screen-reader text. Slack reads it as mrkdwn, so it is escaped."""
    return escape(f"{view.title} ({view.subject})")


def escape(text: str) -> str:
    """Slack's three control characters; everything else is shown as typed."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _list(heading: str, lines: list[str]) -> list[Json]:
    if not lines:
        return []
    return [_section(_mrkdwn(f"*{heading}*")), _section(_plain(_fit(lines)))]


def _others(view: AnswerView) -> list[Json]:
    if not view.others:
        return []
    lines = [f"{_STATE[n.tone]} {n.label}: {n.text}" for n in view.others]
    return [_section(_mrkdwn("*Also worth knowing*")), _section(_plain(_fit(lines)))]


def _credentials(view: AnswerView) -> list[Json]:
    if not view.credentials:
        return []
    fields = [_plain(_credential_field(row)) for row in view.credentials]
    blocks: list[Json] = [_section(_mrkdwn(f"*{escape(view.credentials_title)}*"))]
    # A section holds at most 10 fields; the view already keeps at most 10 rows.
    blocks.append({"type": "section", "fields": fields[:10]})
    if view.more_credentials:
        blocks.append({"type": "context", "elements": [_plain(f"… and {view.more_credentials} more")]})
    return blocks


def _credential_field(row: CredentialRow) -> str:
    days = "" if row.days_left is None or row.days_left < 0 else f", {row.days_left} days left"
    return f"{_STATE[row.tone]} {row.name} ({row.kind})\nstarts with {row.hint} · ends {row.end}\n{row.state}{days}"[
        :2000
    ]


def _codes(view: AnswerView) -> list[Json]:
    if not view.codes:
        return []
    lines = [f"*<{c.url}|AADSTS{c.code}>* {escape(c.name)}: {escape(c.summary)}" for c in view.codes]
    return [_section(_mrkdwn(_fit(lines)))]


def _fit(lines: list[str]) -> str:
    """Join lines, dropping the last ones (with a note) if the section would pass Slack's limit."""
    text = "\n".join(lines)
    while len(text) > MAX_SECTION_TEXT and len(lines) > 1:
        lines = lines[:-1]
        text = "\n".join(lines) + "\n…"
    return text[:MAX_SECTION_TEXT]


def _button(button: Button) -> Json:
    """action_id is the verb and value the id, so the Slack adapter dispatches like Teams does."""
    return {"type": "button", "text": _plain(button.title), "action_id": button.verb, "value": button.id}


def _section(text: Json) -> Json:
    return {"type": "section", "text": text}


def _plain(text: str, *, emoji: bool = False) -> Json:
    return {"type": "plain_text", "text": text or " ", "emoji": emoji}


def _mrkdwn(text: str) -> Json:
    return {"type": "mrkdwn", "text": text}
