"""Small pieces of our wording shared by every renderer: counts with real plurals."""

from __future__ import annotations


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """A count and its noun.

    >>> plural(1, "sign-in"), plural(3, "sign-in"), plural(2, "entry", "entries")
    ('1 sign-in', '3 sign-ins', '2 entries')
    """
    word = singular if count == 1 else plural_form or singular + "s"
    return f"{count} {word}"


def and_more(count: int, singular: str, plural_form: str | None = None) -> str:
    """What a list says about the items it leaves out: "and 240 more codes"."""
    return f"and {count} more {plural(count, singular, plural_form).split(' ', 1)[1]}"
