"""The platforms' limits on a message, in one place, and the ways the renderers keep to them.

Numbers are from /work/shared/reference (cards.md §1.3 and §4.1, platforms.md §3.7). Long lists are
summarised in our words ("and 240 more codes"); a text that is still too long is shortened at a word
boundary with "…", never cut mid-word without a mark.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

# Slack Block Kit
SLACK_BLOCKS = 50  # blocks in one message
SLACK_TEXT = 3000  # one text object, and a section's text
SLACK_FIELD_TEXT = 2000  # one section field
SLACK_FIELDS = 10  # fields in one section
SLACK_HEADER = 150  # a header's plain_text
SLACK_BUTTON_TEXT = 75
SLACK_CONTEXT_ELEMENTS = 10
SLACK_MESSAGE_TEXT = 40_000  # the top-level `text`
# Slack refused a message at about 13.2K characters of block text (msg_blocks_too_long, bolt-js #2509),
# below every documented limit; staying under 12K keeps a margin.
SLACK_BLOCK_TEXT_TOTAL = 12_000

# Microsoft Teams: 28 KB for webhooks and Workflows (bots get 100 KB), counted in UTF-16.
TEAMS_CARD_BYTES = 28 * 1024

_ELLIPSIS = "…"


def shorten(text: str, limit: int) -> str:
    """`text` within `limit` characters: cut at the last space that keeps most of it, marked with "…".

    >>> shorten("the client still sends an old secret", 20)
    'the client still…'
    """
    if len(text) <= limit:
        return text
    head = text[: max(limit, 1) - 1]
    space = head.rfind(" ")
    if space >= limit // 2:  # a word boundary near the end; a 5000-letter "word" is cut where it must be
        head = head[:space]
    return head.rstrip() + _ELLIPSIS


def fit_lines(lines: Sequence[str], limit: int, more: Callable[[int], str], *, left_out: int = 0) -> str:
    """Join `lines` with newlines within `limit` characters. Lines that do not fit, plus `left_out`
    items already dropped upstream, are summarised by `more(count)` as the last line; a single line
    too long on its own is shortened.

    >>> fit_lines(["a", "b", "c"], 4, lambda n: f"+{n}")
    'a\\n+2'
    """
    kept = list(lines)
    text = "\n".join([*kept, more(left_out)] if left_out else kept)
    while len(text) > limit and len(kept) > 1:
        kept.pop()
        text = "\n".join([*kept, more(left_out + len(lines) - len(kept))])
    if len(text) <= limit:
        return text
    if len(kept) == len(lines) and not left_out:  # one line, too long on its own
        return shorten(text, limit)
    tail = more(left_out + len(lines) - len(kept))
    return shorten(kept[0], limit - len(tail) - 1) + "\n" + tail
