"""Teams: an answer as an Adaptive Card 1.5 (the attachment's `content`).

Text that came from outside (app names, secret names, pasted fragments, even our summaries that
quote them) goes into `TextRun`s, which Teams never reads as markdown, so it stays text.
"""

from __future__ import annotations

import json
from typing import Any

from bot.domain import Diagnosis
from cards.limits import TEAMS_CARD_BYTES
from cards.view import AnswerView, CredentialRow, Tone, answer_view, shrink
from cards.welcome import Section
from cards.words import and_more

Json = dict[str, Any]

CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
_COLOR = {Tone.BAD: "attention", Tone.WARN: "warning", Tone.GOOD: "good", Tone.NEUTRAL: "default"}
_STYLE = {Tone.BAD: "attention", Tone.WARN: "warning", Tone.GOOD: "good", Tone.NEUTRAL: "emphasis"}


def render_adaptive(diagnosis: Diagnosis) -> Json:
    return adaptive_card(answer_view(diagnosis))


def attachment(card: Json) -> Json:
    """The card wrapped as a Bot Framework attachment, as Teams receives it."""
    return {"contentType": CONTENT_TYPE, "content": card}


def adaptive_card(view: AnswerView) -> Json:
    """The card within Teams' size limit: a card that passes it is drawn again from a smaller view."""
    card = _card(view)
    while card_bytes(card) > TEAMS_CARD_BYTES and (smaller := shrink(view)) is not None:
        view = smaller
        card = _card(view)
    return card


def card_bytes(card: Json) -> int:
    """The size Teams counts: the attachment as JSON in UTF-16."""
    return len(json.dumps(attachment(card), ensure_ascii=False).encode("utf-16-le"))


def _card(view: AnswerView) -> Json:
    left = view.left_out
    body: list[Json] = [_banner(view)]
    if view.rechecked:
        body.append(rich_block([text_run(view.rechecked, size="Small", is_subtle=True)], spacing="Small"))
    body += _list("What changed", [text_run(line) for line in view.changes], bullet="•")
    body += _list("What we found", [text_run(e) for e in view.evidence], bullet="•")
    body += _more(left.evidence, "piece of evidence", "pieces of evidence")
    body += _list("How to fix it", [text_run(step) for step in view.fix], numbered=True)
    body += _more(left.fix, "step")
    for section in view.sections:
        body += _fixed_section(section)
    body += _others(view)
    body += _more(left.others, "finding")
    body += _credentials(view)
    body += _codes(view)
    body += _more(left.codes, "code")
    body.append(rich_block([text_run(view.footer, size="Small", is_subtle=True)], spacing="Medium"))
    card: Json = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.5",
        "msteams": {"width": "Full"},
        "body": body,
    }
    actions = [_execute(b.title, b.verb, b.id) for b in view.buttons]
    actions += [_open_url(f"Look up AADSTS{c.code}", c.url) for c in view.codes[:2]]
    if actions:
        card["actions"] = actions
    return card


def _banner(view: AnswerView) -> Json:
    return {
        "type": "Container",
        "style": _STYLE[view.tone],
        "bleed": True,
        "items": [
            rich_block([text_run(view.subject, size="Small", is_subtle=True)]),
            rich_block([text_run(view.title, size="Large", weight="Bolder", color=_COLOR[view.tone])], spacing="Small"),
        ],
    }


def _list(heading: str, runs: list[Json], *, bullet: str = "", numbered: bool = False) -> list[Json]:
    if not runs:
        return []
    items: list[Json] = [text_block(heading, weight="Bolder", spacing="Medium")]
    for number, run in enumerate(runs, 1):
        mark = f"{number}. " if numbered else f"{bullet} "
        items.append(rich_block([text_run(mark, weight="Bolder"), run], spacing="Small"))
    return items


def _fixed_section(section: Section) -> list[Json]:
    items: list[Json] = [text_block(section.heading, weight="Bolder", spacing="Medium")]
    for line in section.lines:
        run = text_run(line, font_type="Monospace") if section.examples else text_run(line)
        items.append(rich_block([run], spacing="Small"))
    return items


def _others(view: AnswerView) -> list[Json]:
    if not view.others:
        return []
    items: list[Json] = [text_block("Also worth knowing", weight="Bolder", spacing="Medium")]
    for note in view.others:
        label = text_run(f"{note.label}: ", weight="Bolder", color=_COLOR[note.tone])
        items.append(rich_block([label, text_run(note.text)], spacing="Small"))
    return items


def _credentials(view: AnswerView) -> list[Json]:
    if not view.credentials:
        return []
    header = _table_row(["Credential", "Ends", "State"], header=True)
    rows = [header] + [_credential_row(row) for row in view.credentials]
    items: list[Json] = [
        text_block(view.credentials_title, weight="Bolder", spacing="Medium"),
        {
            "type": "Table",
            # Three columns fit a phone; the hint goes under the name instead of a column of its own.
            "columns": [{"width": 4}, {"width": 2}, {"width": 2}],
            "rows": rows,
            "showGridLines": False,
            "spacing": "Small",
        },
    ]
    if view.more_credentials:
        items += _more(view.more_credentials, "credential")
    return items


def _more(count: int, noun: str, plural: str | None = None) -> list[Json]:
    """The line that says how many items of a list are not shown."""
    return [text_block(f"… {and_more(count, noun, plural)}", is_subtle=True, spacing="Small")] if count else []


def _credential_row(row: CredentialRow) -> Json:
    name = [rich_block([text_run(row.name), text_run(f" {row.kind}", size="Small", is_subtle=True)])]
    if row.kind == "secret":
        hint = [text_run("starts with ", size="Small", is_subtle=True), text_run(row.hint, font_type="Monospace")]
        name.append(rich_block(hint, spacing="None"))
    state = [rich_block([text_run(_state(row), color=_COLOR[row.tone], weight="Bolder")])]
    return {"type": "TableRow", "cells": [_cell(name), _cell([rich_block([text_run(row.end)])]), _cell(state)]}


def _state(row: CredentialRow) -> str:
    if row.days_left is None:
        return row.state
    if row.days_left < 0:
        return f"{row.state} {-row.days_left} d ago"
    return f"{row.state}, {row.days_left} d left"


def _table_row(titles: list[str], *, header: bool = False) -> Json:
    cells = [_cell([text_block(title, weight="Bolder" if header else None, size="Small")]) for title in titles]
    return {"type": "TableRow", "cells": cells}


def _codes(view: AnswerView) -> list[Json]:
    if not view.codes:
        return []
    items: list[Json] = [text_block("The error code", weight="Bolder", spacing="Medium")]
    for line in view.codes:
        runs = [
            text_run(f"AADSTS{line.code} ", weight="Bolder"),
            text_run(f"{line.name}: ", is_subtle=True),
            text_run(line.summary),
        ]
        items.append(rich_block(runs, spacing="Small"))
    return items


def _cell(items: list[Json]) -> Json:
    return {"type": "TableCell", "items": items}


def rich_block(inlines: list[Json], *, spacing: str | None = None) -> Json:
    block: Json = {"type": "RichTextBlock", "inlines": inlines}
    if spacing:
        block["spacing"] = spacing
    return block


def text_run(text: str, **style: str | bool | None) -> Json:
    run: Json = {"type": "TextRun", "text": text}
    run.update({_camel(k): v for k, v in style.items() if v is not None})
    return run


def text_block(text: str, **style: str | bool | None) -> Json:
    """Our own wording, or names already reduced to plain characters: TextBlock text is read as markdown."""
    block: Json = {"type": "TextBlock", "text": text, "wrap": True}
    block.update({_camel(k): v for k, v in style.items() if v is not None})
    return block


def _execute(title: str, verb: str, id_: str) -> Json:
    """A Universal Action: Teams sends an adaptiveCard/action invoke with this verb and data."""
    return {"type": "Action.Execute", "title": title, "verb": verb, "data": {"id": id_}}


def _open_url(title: str, url: str) -> Json:
    # Secondary: Teams puts it in the "…" menu, so the main button keeps its full width on a phone.
    return {"type": "Action.OpenUrl", "title": title, "url": url, "mode": "secondary"}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


__all__ = ["CONTENT_TYPE", "adaptive_card", "attachment", "render_adaptive"]
