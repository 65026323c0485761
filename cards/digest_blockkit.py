"""Slack: a warning digest as a Block Kit message, `{"text": fallback, "blocks": [...]}`.

Rows are mrkdwn so owners can be mentioned (`<@U…>`); every piece of outside text on them (app,
credential and owner names) is escaped first, so it can never become a mention, a link or
`<!channel>`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bot.expiry import Digest
from cards.blockkit import block_text_length, escape
from cards.digest_view import (
    DigestLine,
    DigestView,
    capital,
    digest_view,
    more_line,
    ownerless_line,
    requested_line,
)
from cards.limits import (
    SLACK_BLOCK_TEXT_TOTAL,
    SLACK_BUTTON_TEXT,
    SLACK_HEADER,
    SLACK_MESSAGE_TEXT,
    SLACK_TEXT,
    shorten,
)
from cards.view import Button, Tone
from cards.words import plural

Json = dict[str, Any]
THREAD = "see the thread"
_EMOJI = {
    Tone.BAD: ":red_circle:",
    Tone.WARN: ":large_orange_circle:",
    Tone.GOOD: ":large_green_circle:",
    Tone.NEUTRAL: ":white_circle:",
}


def render_digest_blockkit(digest: Digest) -> Json:
    return digest_blockkit(digest_view(digest))


def digest_blockkit(view: DigestView) -> Json:
    """Within Slack's limits: at most 10 rows of at most ~1,500 characters, ~20 blocks in all; should
    the rows still hold too much text, the last ones are dropped and counted in "and N more"."""
    lines = list(view.lines)
    message = _message(view, lines, view.more)
    while block_text_length(message) > SLACK_BLOCK_TEXT_TOTAL and len(lines) > 1:
        lines.pop()
        message = _message(view, lines, view.more + len(view.lines) - len(lines))
    return message


def _message(view: DigestView, lines: list[DigestLine], more: int) -> Json:
    heading = f"{_EMOJI[view.tone]} {view.title}"
    blocks: list[Json] = [
        {"type": "header", "text": _plain(shorten(heading, SLACK_HEADER), emoji=True)},
        {"type": "context", "elements": [_plain(view.subject)]},
        _section(_mrkdwn(escape(view.summary))),
    ]
    blocks += [_section(_mrkdwn(_row(line))) for line in lines]
    if (rest := more_line(replace(view, more=more))) is not None:
        blocks.append({"type": "context", "elements": [_mrkdwn(escape(rest))]})
    if (ownerless := ownerless_line(view)) is not None:
        blocks.append({"type": "context", "elements": [_mrkdwn(":warning: " + escape(ownerless))]})
    if view.status:
        blocks.append({"type": "context", "elements": [_plain(line) for line in view.status]})
    if view.requests:  # the request is posted in the warning's thread
        blocks.append({"type": "context", "elements": [_plain(requested_line(r, THREAD)) for r in view.requests]})
    if view.buttons:
        blocks.append({"type": "actions", "elements": [_button(b) for b in view.buttons]})
    blocks.append({"type": "context", "elements": [_plain(view.footer)]})
    return {"text": fallback_text(view), "blocks": blocks}


def fallback_text(view: DigestView) -> str:
    """The notification and screen-reader text (read as mrkdwn, so escaped)."""
    return escape(shorten(f"{view.title}: {view.summary}", SLACK_MESSAGE_TEXT // 2))


def _row(line: DigestLine) -> str:
    head = f"{_EMOJI[line.tone]} *{escape(line.app)}* · {escape(line.subject)} · ends {line.ends}"
    body = f"{escape(capital(line.problem))}. {escape(line.todo)}"
    text = f"{head}\n{body}\n{_owners(line)}"
    return text if len(text) <= SLACK_TEXT else shorten(text, SLACK_TEXT)


def _owners(line: DigestLine) -> str:
    if not line.owners:
        return ":warning: No owner: nobody is accountable for this app."
    names = [f"<@{o.slack_user}>" if o.slack_user else escape(o.label) for o in line.owners]
    if line.more_owners:
        names.append(f"and {plural(line.more_owners, 'more owner')}")
    return "Owners: " + ", ".join(names)


def _button(button: Button) -> Json:
    """action_id is the verb and value the digest's id, as every other button of the bot."""
    return {
        "type": "button",
        "text": _plain(shorten(button.title, SLACK_BUTTON_TEXT)),
        "action_id": button.verb,
        "value": button.id,
    }


def _section(text: Json) -> Json:
    return {"type": "section", "text": text}


def _plain(text: str, *, emoji: bool = False) -> Json:
    return {"type": "plain_text", "text": shorten(text, SLACK_TEXT) or " ", "emoji": emoji}


def _mrkdwn(text: str) -> Json:
    return {"type": "mrkdwn", "text": text}
