"""Find client-secret values in a paste and cut them out before anything else reads the text.

Three shapes, from most to least certain:
- the modern Entra format, three characters, a digit, `Q~`, then 31-34 more (`abc8Q~...`);
- any long opaque value given to a secret-ish key (`client_secret=`, `-p`, `AZURE_CLIENT_SECRET=`);
- the legacy 32- and 34-character formats, which look like many other tokens, so only "possible".
A GUID given to a secret key is not a secret: it is the secret's ID used by mistake, reported apart.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from itertools import compress

REDACTED = "[redacted-secret]"

_LOWER, _UPPER, _DIGITS = set(string.ascii_lowercase), set(string.ascii_uppercase), set(string.digits)

_C = "[A-Za-z0-9_~.-]"
# Found from the literal `Q~`; the three characters and the digit before it are checked behind it.
# Sentence punctuation may follow the value (`…xyz.`), a letter or digit may not.
_MODERN = re.compile(rf"Q~(?<=(?<!{_C}){_C}{{3}}\dQ~){_C}{{31,34}}(?=[.~-]{{0,8}}(?![A-Za-z0-9_]))")

_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_GUID_RE = re.compile(_GUID + r"\Z")

# A key that carries a secret, then an optional separator and quote, then the value. Every
# alternative starts with a literal (boundaries are checked after it), which keeps the scan fast.
# A whole value: no delimiter inside, and none of its characters right after it.
_VALUE = r"""["']?([^\s"'`<>,;&()\[\]{}|]{16,64})(?![^\s"'`<>,;&()\[\]{}|])"""
_KEYED = tuple(
    re.compile(key + _VALUE)
    for key in (
        # client_secret=, "clientSecret": , AZURE_CLIENT_SECRET=, "Secret Value": (a separator is required)
        r"secret(?:(?<![a-z]secret)|(?<=clientsecret))(?:[_ -]?value)?[\"']?[ \t]*[:=][ \t]*",
        r"password(?<![a-z]password)(?<!-password)[\"']?[ \t]*[:=][ \t]*",
        # command-line flags: -p VALUE, --password VALUE, --client-secret=VALUE
        r"-(?<![\w-]-)(?:p|-password|-secret|-client-secret)[ \t=]+",
    )
)
_PLACEHOLDER = re.compile(r"(?:\$|%|\*|x{3}|<|\{|your|my-?secret|secret|redacted|\[)", re.IGNORECASE)
_FILE_LIKE = re.compile(r"^(?:/|\./|~/|[a-z]:\\)|\.(?:pem|pfx|crt|cer|p12|key|json|txt)$", re.IGNORECASE)

# Legacy secrets only count where the paste talks about secrets at all: their shapes are common.
_SECRET_CONTEXT = ("secret", "password", "credential", "-p ")
_DELIMITERS_TO_SPACE = str.maketrans(dict.fromkeys("'\"`<>(),;|", " "))
_LEGACY_LENGTHS = frozenset({32, 34})
_LEGACY32_CHARS = re.compile(r"[A-Za-z0-9.=\-:\[_@/*\]+?]{32}\Z")
_LEGACY34_CHARS = re.compile(r"[A-Za-z0-9_~.-]{34}\Z")


@dataclass(frozen=True)
class Redaction:
    text: str
    certain: bool = False  # a value that is a secret beyond reasonable doubt
    possible: bool = False  # a value of a legacy shape that may be a secret
    hints: tuple[str, ...] = ()  # first three characters of each value: what Graph calls `hint`
    secret_guid: str | None = None  # a GUID passed where the secret value belongs

    @property
    def detected(self) -> bool:
        return self.certain or self.possible


def redact(text: str) -> Redaction:
    """Return `text` with every secret-shaped value replaced by a marker, and what was found."""
    modern = _modern_values(text)
    lowered = _ascii_lower(text)
    keyed, secret_guid = _keyed_values(text, lowered)
    legacy = _legacy_values(text) if any(word in lowered for word in _SECRET_CONTEXT) else []
    values = list(dict.fromkeys(modern + keyed + legacy))
    # Longest first, so a value that contains another is cut whole.
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return Redaction(
        text=text,
        certain=bool(modern or keyed),
        possible=bool(legacy) and not (modern or keyed),
        hints=tuple(dict.fromkeys(value[:3] for value in values)),
        secret_guid=secret_guid,
    )


def _ascii_lower(text: str) -> str:
    """Lower-case without changing the length, so match positions map back to `text`."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def _keyed_values(text: str, lowered: str) -> tuple[list[str], str | None]:
    values, secret_guid = [], None
    matches = sorted((m for pattern in _KEYED for m in pattern.finditer(lowered)), key=lambda m: m.start())
    for match in matches:
        value = text[match.start(1) : match.end(1)]
        if _GUID_RE.match(value):
            secret_guid = secret_guid or value.lower()
        elif _looks_like_keyed_secret(value):
            values.append(value)
    return values, secret_guid


def _legacy_values(text: str) -> list[str]:
    # Every word is looked at, so only C-level builtins touch them all; Python sees the few of length 32/34.
    tokens = text.translate(_DELIMITERS_TO_SPACE).split()
    candidates = compress(tokens, map(_LEGACY_LENGTHS.__contains__, map(len, tokens)))
    return [token for token in candidates if _looks_like_legacy_secret(token)]


def _modern_values(text: str) -> list[str]:
    """Secrets of the `xxx\\dQ~...` format, each with the start of the value."""
    return [text[m.start() - 4 : m.end()] for m in _MODERN.finditer(text)]


def _looks_like_keyed_secret(value: str) -> bool:
    if _PLACEHOLDER.match(value) or _FILE_LIKE.search(value) or "://" in value:
        return False
    return len(_char_classes(value)) >= 3


def _looks_like_legacy_secret(token: str) -> bool:
    if not (_LEGACY32_CHARS.match(token) or _LEGACY34_CHARS.match(token)):
        return False
    if not {"lower", "upper", "digit"} <= _char_classes(token):
        return False
    symbols = "=:[]@*+?/" if len(token) == 32 else "-~_."
    return any(c in symbols for c in token)


def _char_classes(value: str) -> set[str]:
    chars = set(value)
    classes = {
        "lower": bool(chars & _LOWER),
        "upper": bool(chars & _UPPER),
        "digit": bool(chars & _DIGITS),
        "symbol": bool(chars - _LOWER - _UPPER - _DIGITS),
    }
    return {name for name, present in classes.items() if present}
