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
# A whole value: no delimiter inside, and none of its characters right after it. Possessive, since
# giving characters back can never succeed (the next one would not be a delimiter): a run of keys
# with no delimiter after them would otherwise retry every shorter length at each key.
_VALUE = r"""["']?([^\s"'`<>,;&()\[\]{}|]{16,64}+)(?![^\s"'`<>,;&()\[\]{}|])"""
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
# Delimiters and every kind of whitespace become a plain space, so a token of the right length is
# found from the space before it (a literal): one fast scan instead of splitting out every word.
_SPACES = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
_TOKEN_BREAKS_TO_SPACE = str.maketrans(dict.fromkeys("'\"`<>(),;|" + _SPACES, " "))
_LEGACY_TOKEN = re.compile(r" (\S{32}(?:\S\S)?)(?!\S)")
_LEGACY32_CHARS = re.compile(r"[A-Za-z0-9.=\-:\[_@/*\]+?]{32}\Z")
_LEGACY34_CHARS = re.compile(r"[A-Za-z0-9_~.-]{34}\Z")


@dataclass(frozen=True)
class Redaction:
    text: str
    certain: bool = False  # a value that is a secret beyond reasonable doubt
    possible: bool = False  # a value of a legacy shape that may be a secret
    hints: tuple[str, ...] = ()  # first three characters of each value: what Graph calls `hint`
    secret_guid: str | None = None  # a GUID passed where the secret value belongs
    legacy_checked: bool = False  # the text talked of secrets, so legacy shapes were looked for

    @property
    def detected(self) -> bool:
        return self.certain or self.possible


def redact(text: str) -> Redaction:
    """Return `text` with every secret-shaped value replaced by a marker, and what was found."""
    lowered = _ascii_lower(text)
    return _redact(text, text, lowered, _talks_of_secrets(lowered))


def redact_decoded(decoded: str, earlier: Redaction) -> Redaction:
    """`redact` for a decoded form of `earlier.text`, looking only at the lines decoding changed.

    Every pattern here stays within one line, and a line that `earlier` scanned and that still
    has no marker had nothing in it: each value found is cut everywhere. So only new lines (and
    lines around a marker, which may now join it into a longer token) can hold something new.
    """
    lowered = _ascii_lower(decoded)
    legacy = _talks_of_secrets(lowered)
    # Comparing lines only pays for the slow legacy scan, and only when lines are long: per line it
    # costs about what scanning 64 characters does.
    short_lines = decoded.count("\n") * 64 > len(decoded)
    if not legacy or short_lines or not earlier.legacy_checked:
        return _redact(decoded, decoded, lowered, legacy)
    scanned = set(earlier.text.split("\n"))
    fresh = "\n".join(line for line in decoded.split("\n") if line not in scanned or REDACTED in line)
    return _redact(decoded, fresh, _ascii_lower(fresh), legacy)


def _redact(text: str, scan: str, scan_lowered: str, legacy_shapes: bool) -> Redaction:
    """Cut from `text` every secret-shaped value found in `scan` (all or part of `text`)."""
    modern = _modern_values(scan)
    keyed, secret_guid = _keyed_values(scan, scan_lowered)
    legacy = _legacy_values(scan) if legacy_shapes else []
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
        legacy_checked=legacy_shapes,
    )


def _talks_of_secrets(lowered: str) -> bool:
    return any(word in lowered for word in _SECRET_CONTEXT)


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
    # Only the regex engine touches every word; Python sees the few of length 32 or 34.
    candidates = _LEGACY_TOKEN.findall(" " + text.translate(_TOKEN_BREAKS_TO_SPACE))
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
