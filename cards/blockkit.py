"""Slack: an answer as a Block Kit message, `{"text": fallback, "blocks": [...]}`.

Outside text (app and secret names, pasted fragments, summaries that quote them) is sent as
`plain_text`, which Slack never parses for mentions, links or formatting; our own wording is
`mrkdwn` with &, < and > escaped, so nothing can become `<!channel>` or a link.
"""

from __future__ import annotations

from typing import Any

from bot.domain import Diagnosis
from cards.limits import (
    SLACK_BLOCK_TEXT_TOTAL,
    SLACK_BLOCKS,
    SLACK_BUTTON_TEXT,
    SLACK_FIELD_TEXT,
    SLACK_FIELDS,
    SLACK_HEADER,
    SLACK_MESSAGE_TEXT,
    SLACK_TEXT,
    fit_lines,
    shorten,
)
from cards.view import AnswerView, Button, CredentialRow, Tone, answer_view, shrink
from cards.welcome import Section
from cards.words import and_more

Json = dict[str, Any]
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
    """The message within every Slack limit: sections are fitted one by one, and a message whose
    blocks hold more text than Slack accepts is drawn again from a smaller view."""
    message = _message(view)
    while block_text_length(message) > SLACK_BLOCK_TEXT_TOTAL and (smaller := shrink(view)) is not None:
        view = smaller
        message = _message(view)
    return message


def _message(view: AnswerView) -> Json:
    heading = f"{_EMOJI[view.tone]} {view.title}"
    blocks: list[Json] = [{"type": "header", "text": _plain(shorten(heading, SLACK_HEADER), emoji=True)}]
    if len(heading) > SLACK_HEADER:  # the header was cut: show the whole title under it
        blocks.append(_section(_plain(view.title)))
    blocks.append({"type": "context", "elements": [_plain(view.subject)]})
    if view.rechecked:
        blocks.append({"type": "context", "elements": [_plain(view.rechecked)]})
    blocks += _list("What changed", [f"• {line}" for line in view.changes], 0, "change")
    left = view.left_out
    blocks += _list(
        "What we found", [f"• {e}" for e in view.evidence], left.evidence, "piece of evidence", "pieces of evidence"
    )
    steps = [f"{n}. {step}" for n, step in enumerate(view.fix, 1)]
    blocks += _list("How to fix it", steps, left.fix, "step")
    for section in view.sections:
        blocks += _fixed_section(section)
    blocks += _others(view)
    blocks += _credentials(view)
    blocks += _codes(view)
    if view.buttons:
        blocks.append({"type": "actions", "elements": [_button(b) for b in view.buttons]})
    blocks.append({"type": "context", "elements": [_mrkdwn(_escaped(view.footer, SLACK_TEXT))]})
    if len(blocks) > SLACK_BLOCKS:  # not reached by today's layout; kept so a new section cannot break it
        blocks = [*blocks[: SLACK_BLOCKS - 1], blocks[-1]]
    return {"text": fallback_text(view), "blocks": blocks}


def fallback_text(view: AnswerView) -> str:
    """The notification and screen-reader text. Slack reads it as mrkdwn, so it is escaped."""
    return _escaped(f"{view.title} ({view.subject})", SLACK_MESSAGE_TEXT)


def escape(text: str) -> str:
    """Slack's three control characters; everything else is shown as typed."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escaped(text: str, limit: int) -> str:
    """Escaped, then within `limit`: shortened before escaping, so no entity is cut in half."""
    escaped = escape(text)
    while len(escaped) > limit:  # each round keeps the share of the text that escaping leaves room for
        text = shorten(text, len(text) * limit // len(escaped) - 1)
        escaped = escape(text)
    return escaped


def _list(heading: str, lines: list[str], left_out: int, noun: str, plural: str | None = None) -> list[Json]:
    if not lines:
        return []
    text = fit_lines(lines, SLACK_TEXT, lambda n: and_more(n, noun, plural), left_out=left_out)
    return [_section(_mrkdwn(f"*{heading}*")), _section(_plain(text))]


def _fixed_section(section: Section) -> list[Json]:
    """Our own wording, so mrkdwn: examples as code blocks, escaped, which Slack shows as typed."""
    heading = _section(_mrkdwn(f"*{escape(section.heading)}*"))
    if section.examples:
        return [heading, *(_section(_mrkdwn(f"```{escape(line)}```")) for line in section.lines)]
    return [heading, _section(_mrkdwn(escape("\n".join(section.lines))))]


def _others(view: AnswerView) -> list[Json]:
    lines = [f"{_STATE[n.tone]} {n.label}: {n.text}" for n in view.others]
    return _list("Also worth knowing", lines, view.left_out.others, "finding")


def _credentials(view: AnswerView) -> list[Json]:
    if not view.credentials:
        return []
    fields = [_plain(shorten(_credential_field(row), SLACK_FIELD_TEXT)) for row in view.credentials]
    blocks: list[Json] = [_section(_mrkdwn(f"*{escape(view.credentials_title)}*"))]
    # The view keeps at most 10 rows, as many as a section's fields.
    blocks.append({"type": "section", "fields": fields[:SLACK_FIELDS]})
    more = view.more_credentials + len(fields[SLACK_FIELDS:])
    if more:
        blocks.append({"type": "context", "elements": [_plain(f"… {and_more(more, 'credential')}")]})
    return blocks


def _credential_field(row: CredentialRow) -> str:
    days = "" if row.days_left is None or row.days_left < 0 else f", {row.days_left} days left"
    return f"{_STATE[row.tone]} {row.name} ({row.kind})\nstarts with {row.hint} · ends {row.end}\n{row.state}{days}"


def _codes(view: AnswerView) -> list[Json]:
    if not view.codes:
        return []
    # Each line is short and ours (the catalog's words), so only whole lines are ever dropped.
    lines = [f"*<{c.url}|AADSTS{c.code}>* {escape(c.name)}: {escape(c.summary)}" for c in view.codes]
    return [
        _section(_mrkdwn(fit_lines(lines, SLACK_TEXT, lambda n: and_more(n, "code"), left_out=view.left_out.codes)))
    ]


def block_text_length(message: Json) -> int:
    """Characters of text in the message's blocks, as Slack adds them up for msg_blocks_too_long."""
    return sum(len(node["text"]) for node in _text_objects(message["blocks"]))


def _text_objects(node: Any) -> list[Json]:
    if isinstance(node, list):
        return [found for item in node for found in _text_objects(item)]
    if not isinstance(node, dict):
        return []
    own = [node] if node.get("type") in ("plain_text", "mrkdwn") else []
    return own + [found for value in node.values() for found in _text_objects(value)]


def _button(button: Button) -> Json:
    """action_id is the verb and value the id, so the Slack adapter dispatches like Teams does."""
    title = _plain(shorten(button.title, SLACK_BUTTON_TEXT))
    return {"type": "button", "text": title, "action_id": button.verb, "value": button.id}


def _section(text: Json) -> Json:
    return {"type": "section", "text": text}


def _plain(text: str, *, emoji: bool = False) -> Json:
    return {"type": "plain_text", "text": shorten(text, SLACK_TEXT) or " ", "emoji": emoji}


def _mrkdwn(text: str) -> Json:
    return {"type": "mrkdwn", "text": text}
