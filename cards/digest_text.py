"""A warning digest as plain text: the terminal and console view, every row in full."""

from __future__ import annotations

from bot.expiry import Digest
from cards.digest_view import DigestLine, capital, digest_view, ownerless_line, requested_line
from cards.words import plural

_MARK = {"bad": "✖", "warn": "⚠", "good": "✔", "neutral": "•"}


def render_digest_text(digest: Digest) -> str:
    view = digest_view(digest, max_rows=len(digest.rows))
    parts = [f"{view.title}\n{view.subject}\n{view.summary}"]
    parts += [_row(line) for line in view.lines]
    if (ownerless := ownerless_line(view)) is not None:
        parts.append(ownerless)
    parts += list(view.status)
    parts += [requested_line(request, "see the request card") for request in view.requests]
    if view.buttons:
        parts.append("Buttons on the card: " + ", ".join(b.title for b in view.buttons) + ".")
    return "\n\n".join(parts) + "\n"


def _row(line: DigestLine) -> str:
    owners = ", ".join(o.label for o in line.owners)
    if line.more_owners:
        owners += f", and {plural(line.more_owners, 'more owner')}"
    who = f"Owners: {owners}" if line.owners else "No owner: nobody is accountable for this app."
    return (
        f"{_MARK[line.tone.value]} {line.app} ({line.app_id}), {line.subject}, ends {line.ends}\n"
        f"  {capital(line.problem)}. {line.todo}\n  {who}"
    )
