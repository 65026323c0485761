"""Teams: a warning digest as an Adaptive Card 1.5 (the attachment's `content`).

Outside text (app and credential names) goes into `TextRun`s, which Teams never reads as markdown.
Owners are mentioned by their Entra object id: `<at>Name</at>` in a TextBlock plus an entity under
`msteams.entities`; since a TextBlock is markdown, names there are reduced to plain characters.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from bot.expiry import Digest
from cards.adaptive import card_bytes, rich_block, text_block, text_run
from cards.digest_view import (
    DigestLine,
    DigestView,
    capital,
    digest_view,
    more_line,
    ownerless_line,
    requested_line,
)
from cards.limits import TEAMS_CARD_BYTES
from cards.view import Tone
from cards.words import plural

Json = dict[str, Any]
_COLOR = {Tone.BAD: "attention", Tone.WARN: "warning", Tone.GOOD: "good", Tone.NEUTRAL: "default"}
_STYLE = {Tone.BAD: "attention", Tone.WARN: "warning", Tone.GOOD: "good", Tone.NEUTRAL: "emphasis"}
BUTTONS_PER_ROW = 2
BELOW = "see the request message below"
_MARKDOWN = re.compile(r"[^\w .,'@-]|_")  # what could format, link or break out of an <at> tag


def render_digest_adaptive(digest: Digest) -> Json:
    return digest_adaptive(digest_view(digest))


def digest_adaptive(view: DigestView) -> Json:
    """Within Teams' 28 KB: rows that do not fit are dropped from the end and counted in "and N more"."""
    lines = list(view.lines)
    card = _card(view, lines, view.more)
    while card_bytes(card) > TEAMS_CARD_BYTES and len(lines) > 1:
        lines.pop()
        card = _card(view, lines, view.more + len(view.lines) - len(lines))
    return card


def _card(view: DigestView, lines: list[DigestLine], more: int) -> Json:
    entities: list[Json] = []
    body: list[Json] = [_banner(view), text_block(view.summary, spacing="Small")]
    for line in lines:
        body.append(_row(line, entities))
    if (rest := more_line(replace(view, more=more))) is not None:
        body.append(text_block(rest, is_subtle=True, spacing="Medium"))
    if (ownerless := ownerless_line(view)) is not None:
        body.append(text_block(ownerless, color="attention", spacing="Small"))
    for status in view.status:
        body.append(rich_block([text_run(status, weight="Bolder")], spacing="Small"))
    for request in view.requests:  # the request is the message the bot sent after this card
        body.append(rich_block([text_run(requested_line(request, BELOW))], spacing="Small"))
    # Five buttons in one row are cut to "Acknowl…", and three on a phone: rows of two.
    for start in range(0, len(view.buttons), BUTTONS_PER_ROW):
        row = view.buttons[start : start + BUTTONS_PER_ROW]
        actions = [{"type": "Action.Execute", "title": b.title, "verb": b.verb, "data": {"id": b.id}} for b in row]
        body.append({"type": "ActionSet", "actions": actions, "spacing": "Medium" if start == 0 else "Small"})
    body.append(rich_block([text_run(view.footer, size="Small", is_subtle=True)], spacing="Medium"))
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.5",
        "msteams": {"width": "Full", **({"entities": entities} if entities else {})},
        "body": body,
    }


def _banner(view: DigestView) -> Json:
    return {
        "type": "Container",
        "style": _STYLE[view.tone],
        "bleed": True,
        "items": [
            rich_block([text_run(view.subject, size="Small", is_subtle=True)]),
            rich_block([text_run(view.title, size="Large", weight="Bolder", color=_COLOR[view.tone])], spacing="Small"),
        ],
    }


def _row(line: DigestLine, entities: list[Json]) -> Json:
    items = [
        rich_block(
            [
                text_run(line.app, weight="Bolder", color=_COLOR[line.tone]),
                text_run(f" {line.subject} · ends {line.ends}", size="Small", is_subtle=True),
            ]
        ),
        rich_block([text_run(f"{capital(line.problem)}. ", weight="Bolder"), text_run(line.todo)], spacing="None"),
        _owners(line, entities),
    ]
    return {"type": "Container", "separator": True, "spacing": "Medium", "items": items}


def _owners(line: DigestLine, entities: list[Json]) -> Json:
    if not line.owners:
        return text_block("No owner: nobody is accountable for this app.", color="attention", spacing="None")
    names = []
    for owner in line.owners:
        name = _MARKDOWN.sub("", owner.label).strip() or "owner"
        if owner.object_id:
            tag = f"<at>{name}</at>"
            entity = {"type": "mention", "text": tag, "mentioned": {"id": owner.object_id, "name": name}}
            if entity not in entities:
                entities.append(entity)
            names.append(tag)
        else:
            names.append(name)
    if line.more_owners:
        names.append(f"and {plural(line.more_owners, 'more owner')}")
    return text_block("Owners: " + ", ".join(names), size="Small", spacing="None")
