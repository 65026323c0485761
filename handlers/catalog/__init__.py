"""The AADSTS catalog: every known Entra ID error code explained in our own words.

The explanations live in `aadsts.toml` next to this module so they can be reviewed and extended
without touching code. This module only reads that file and validates it strictly, so a typo in
the data fails loudly at start-up (and in the tests) instead of producing a half-empty answer in
the middle of a diagnosis.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

import rtoml

from bot.domain import Category, CodeInfo

__all__ = ["Catalog", "load_catalog", "parse_catalog"]

DATA_FILE = "aadsts.toml"

_CATEGORIES = {category.value: category for category in Category}
_KEYS = frozenset({"code", "name", "summary", "category", "fix"})


class Catalog:
    """Read-only mapping from AADSTS code number to its explanation; iterates in code order."""

    def __init__(self, entries: Iterable[CodeInfo]) -> None:
        by_code: dict[int, CodeInfo] = {}
        for entry in entries:
            if entry.code in by_code:
                raise ValueError(f"AADSTS catalog: duplicate code {entry.code} ({entry.name})")
            by_code[entry.code] = entry
        self._by_code = dict(sorted(by_code.items()))

    def lookup(self, code: int) -> CodeInfo | None:
        return self._by_code.get(code)

    def __contains__(self, code: object) -> bool:
        return isinstance(code, int) and code in self._by_code

    def __iter__(self) -> Iterator[CodeInfo]:
        return iter(self._by_code.values())

    def __len__(self) -> int:
        return len(self._by_code)

    def __repr__(self) -> str:
        return f"Catalog({len(self)} codes)"


def parse_catalog(text: str) -> Catalog:
    """Build a catalog from the TOML text of `aadsts.toml`; ValueError names the first bad entry."""
    try:
        # rtoml, not tomllib: every start reads the whole catalog, ~1 ms here against ~8 ms.
        document = rtoml.loads(text)
    except rtoml.TomlParsingError as exc:
        raise ValueError(f"AADSTS catalog: not valid TOML: {exc}") from None
    raw_entries = document.get("code", [])
    if not isinstance(raw_entries, list):
        raise ValueError("AADSTS catalog: `code` must be an array of tables ([[code]])")
    return Catalog(_entry(number, raw) for number, raw in enumerate(raw_entries, start=1))


@cache
def load_catalog() -> Catalog:
    """Reads aadsts.toml shipped in this package, cached (functools.cache)."""
    # Beside this module; not through importlib.resources, whose import is ~8 ms of the CLI's start-up.
    text = Path(__file__).with_name(DATA_FILE).read_text(encoding="utf-8")
    return parse_catalog(text)


def _entry(number: int, raw: object) -> CodeInfo:
    if not isinstance(raw, dict):
        raise ValueError(f"AADSTS catalog entry #{number}: expected a table, got {type(raw).__name__}")
    code = raw.get("code")
    where = f"AADSTS catalog entry #{number} (code {code!r})"
    if not isinstance(code, int) or isinstance(code, bool) or code <= 0:
        raise ValueError(f"{where}: `code` must be a positive integer")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}")
    category = raw.get("category")
    if category not in _CATEGORIES:
        allowed = ", ".join(sorted(_CATEGORIES))
        raise ValueError(f"{where}: unknown category {category!r} (expected one of: {allowed})")
    return CodeInfo(
        code=code,
        name=_text(raw, "name", where),
        summary=_text(raw, "summary", where),
        category=_CATEGORIES[category],
        fix=_fix(raw.get("fix", []), where),
    )


def _text(raw: dict[str, object], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: `{key}` must be a non-empty string")
    if "\n" in value:
        raise ValueError(f"{where}: `{key}` must be a single line")
    return value.strip()


def _fix(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(step, str) and step.strip() for step in value):
        raise ValueError(f"{where}: `fix` must be a list of non-empty strings")
    return tuple(step.strip() for step in value)
