"""Find client-secret values in a paste and cut them out before anything else reads the text.

Four shapes, from most to least certain:
- the modern Entra format, three characters, a digit, `Q~`, then 31-34 more (`abc8Q~...`);
- any long opaque value given to a secret-ish key (`client_secret=`, `-p`, `AZURE_CLIENT_SECRET=`);
- HTTP Basic credentials (`Authorization: Basic base64(client_id:secret)`);
- the legacy 32-, 34- and 44-character formats, which look like many other tokens, so only "possible".
A GUID given to a secret key is not a secret: it is the secret's ID used by mistake, reported apart.
A value a terminal broke over two lines is found too. Finding gives spans, and the text is rebuilt
around them once, so the cost stays linear however many distinct values a paste holds.
"""

from __future__ import annotations

import binascii
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import accumulate
from typing import NamedTuple

REDACTED = "[redacted-secret]"

_CLASSES = tuple(
    (name, re.compile(chars).search)
    for name, chars in (("lower", "[a-z]"), ("upper", "[A-Z]"), ("digit", "[0-9]"), ("symbol", "[^A-Za-z0-9]"))
)

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
_VALUE = r"""["'`<]?([^\s"'`<>,;&()\[\]{}|]{16,64}+)(?![^\s"'`<>,;&()\[\]{}|])"""
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
# `xxxx`, `xxx-…` are placeholders; a generated value may start with three x (one in 46656 do).
_PLACEHOLDER = re.compile(r"(?:\$|%|\*|x{4}|x{3}[-_.]|<|\{|your|my-?secret|secret|redacted|\[)", re.IGNORECASE)
_FILE_LIKE = re.compile(r"^(?:/|\./|~/|[a-z]:\\)|\.(?:pem|pfx|crt|cer|p12|key|json|txt)$", re.IGNORECASE)

# Legacy secrets only count where the paste talks about secrets at all: their shapes are common.
_SECRET_CONTEXT = ("secret", "password", "credential", "-p ")
# Delimiters and every kind of whitespace become a plain space, so a token of the right length is
# found from the space before it (a literal): one fast scan instead of splitting out every word.
_BREAKS = frozenset("'\"`<>(),;|" + "".join(c for c in map(chr, range(0x3001)) if c.isspace()))
_TOKEN_BREAKS_TO_SPACE = str.maketrans(dict.fromkeys(_BREAKS, " "))
# `str.translate` is fast only on ASCII text; on other text it costs a dict look-up per character. So
# the ASCII encoder turns every non-ASCII character into `?` (in C), after the text's own `?` became a
# control character (a token character like it), and then every `?` is a break too. No legacy shape
# holds a non-ASCII character, so a token found next to one that is no break (a letter, an emoji)
# was part of a longer token, and is dropped.
_NON_ASCII_BREAKS_TO_SPACE = str.maketrans(dict.fromkeys([*_BREAKS, "?"], " "))
# Only spaces are left as whitespace once the breaks are spaces.
_LEGACY_TOKEN = re.compile(r" ([^ ]{32}(?:[^ ]{2}|[^ ]{12})?)(?![^ ])")
_LEGACY32_CHARS = re.compile(r"[A-Za-z0-9.=\-:\[_@/*\]+?]{32}\Z")
_LEGACY34_CHARS = re.compile(r"[A-Za-z0-9_~.-]{34}\Z")
_LEGACY44_CHARS = re.compile(r"[A-Za-z0-9+/]{43}=\Z")  # base64 of 32 random bytes

# `Basic` then base64 (found in the lower-cased text; the value is read from the original).
_BASIC = re.compile(r"basic(?<![a-z]basic)[ \t]+([a-z0-9+/]{12,4096}+={0,2})(?![a-z0-9+/=])")
# A token where a copy of a value found elsewhere may stand: no delimiter of `_VALUE` inside.
_RUN = re.compile(r"""[^\s"'`<>,;&()\[\]{}|]{16,}+""")
_FEW_VALUES = 16
_KEY_END = re.compile(r"[=:]")
# A line break a terminal put inside a token: after a long line, between two token characters.
# Found from the newline (a literal); the line before it is checked behind it.
_WRAP = re.compile(r"\n(?<=[^\n]{39}[A-Za-z0-9_~.\-]\n)(?=[A-Za-z0-9_~.\-])")


@dataclass(frozen=True)
class Redaction:
    text: str
    certain: bool = False  # a value that is a secret beyond reasonable doubt
    possible: bool = False  # a value of a legacy shape that may be a secret
    hints: tuple[str, ...] = ()  # first three characters of each value: what Graph calls `hint`
    secret_guid: str | None = None  # a GUID passed where the secret value belongs
    legacy_checked: bool = False  # the text talked of secrets, so legacy shapes were looked for
    # `text.lower()`, when nothing was found (then `text` is exactly the text that was read) and
    # lower-casing kept every character one character (the scans read that text too).
    clean_lowered: str | None = field(default=None, repr=False, compare=False)

    @property
    def detected(self) -> bool:
        return self.certain or self.possible


class _Hit(NamedTuple):
    """Where a secret value is, as the span of text to cut."""

    start: int
    end: int
    hint: str
    certain: bool


def redact(text: str) -> Redaction:
    """Return `text` with every secret-shaped value replaced by a marker, and what was found."""
    lowered = _ascii_lower(text)
    whole = lowered if _lowers_in_place(text) else None
    return _redact(text, _Scan(text, lowered), _talks_of_secrets(lowered), _wrapped_hits(text, lowered), whole)


def redact_decoded(decoded: str, earlier: Redaction) -> Redaction:
    """`redact` for a decoded form of `earlier.text`, looking only at the lines decoding changed.

    Every pattern here stays within one line, and a line that `earlier` scanned and that still
    has no marker had nothing in it. So only new lines (and lines around a marker, which may now
    join it into a longer token) can hold something new.
    """
    changed = _redact_changed_part(decoded, earlier)
    if changed is not None:
        return changed
    lowered = _ascii_lower(decoded)
    whole = lowered if _lowers_in_place(decoded) else None
    legacy = _talks_of_secrets(lowered)
    wrapped = _wrapped_hits(decoded, lowered)
    # Comparing lines only pays for the slow legacy scan, and on ASCII text only when lines are long:
    # per line it costs about what scanning 64 characters does. Other text costs several times more
    # to scan (wide characters, the legacy scan's mapping), so there comparing always pays.
    short_lines = decoded.isascii() and decoded.count("\n") * 64 > len(decoded)
    if not legacy or short_lines or not earlier.legacy_checked:
        return _redact(decoded, _Scan(decoded, lowered), legacy, wrapped, whole)
    scanned = set(earlier.text.split("\n"))
    fresh: list[str] = []
    fresh_starts: list[int] = []
    starts: list[int] = []
    at = fresh_at = 0
    for line in decoded.split("\n"):
        if line not in scanned or REDACTED in line:
            fresh.append(line)
            fresh_starts.append(fresh_at)
            starts.append(at)
            fresh_at += len(line) + 1
        at += len(line) + 1
    joined = "\n".join(fresh)
    return _redact(decoded, _Scan(joined, _ascii_lower(joined), fresh_starts, starts), legacy, wrapped, whole)


def _redact_changed_part(decoded: str, earlier: Redaction) -> Redaction | None:
    """`redact_decoded` reading only the part of the text that decoding changed, when `earlier`
    found nothing (None when it did, or when that part is most of the text).

    Then `earlier.text` is the text `earlier` read, and every line and every line that a terminal's
    line breaks join that is the same here had nothing in it. Decoding usually changes a few lines
    of a long log (an escaped JSON body), so the part read is: from the first to the last changed
    character, widened to whole joined lines, plus one joined line before and after (whether a line
    break joins two lines depends on both, and a changed line may have been joined to its neighbour).
    """
    before, lowered_before = earlier.text, earlier.clean_lowered
    if lowered_before is None:
        return None
    head = _common_prefix(before, decoded)
    tail = _common_suffix(before, decoded, min(len(before), len(decoded)) - head)
    start = _joined_line_start(decoded, decoded.rfind("\n", 0, head) + 1)
    if start > 0:
        start = _joined_line_start(decoded, decoded.rfind("\n", 0, start - 1) + 1)
    end = _joined_line_end(decoded, len(decoded) - tail)
    if end < len(decoded):
        end = _joined_line_end(decoded, end + 1)
    if (end - start) * 2 > len(decoded):
        return None
    part = decoded[start:end]
    lowered = _ascii_lower(part)
    # No word of `_SECRET_CONTEXT` holds a newline, and the part is whole lines: none spans its edges.
    after = end + len(before) - len(decoded)
    legacy = _talks_of_secrets(lowered) or any(
        lowered_before.find(word, 0, start) >= 0 or lowered_before.find(word, after) >= 0 for word in _SECRET_CONTEXT
    )
    if legacy and not earlier.legacy_checked:
        return None  # legacy shapes were never looked for in the unchanged lines
    wrapped = [hit._replace(start=hit.start + start, end=hit.end + start) for hit in _wrapped_hits(part, lowered)]
    # Lower-casing looks at no character past a newline, so the whole text lower-cased is made of parts.
    whole = f"{lowered_before[:start]}{lowered}{lowered_before[after:]}" if _lowers_in_place(part) else None
    return _redact(decoded, _Scan(part, lowered, [0], [start]), legacy, wrapped, whole)


def _joined_line_start(text: str, at: int) -> int:
    """The start of the line that a terminal's line breaks join and that holds the line at `at`."""
    while at > 0 and _WRAP.match(text, at - 1):
        at = text.rfind("\n", 0, at - 1) + 1
    return at


def _joined_line_end(text: str, at: int) -> int:
    """The end (its newline, or the end of the text) of the joined line that holds position `at`."""
    end = text.find("\n", at)
    while end >= 0 and _WRAP.match(text, end):
        end = text.find("\n", end + 1)
    return len(text) if end < 0 else end


_BLOCK = 1 << 15  # characters compared at a time when looking for the first difference


def _common_prefix(a: str, b: str) -> int:
    """How many characters `a` and `b` share at their start: compared in C a block at a time, then
    by halves within the block that differs."""
    limit, at = min(len(a), len(b)), 0
    while at < limit:
        block = b[at : min(at + _BLOCK, limit)]
        if not a.startswith(block, at):
            low, high = at, at + len(block)  # a[:low] == b[:low]; a[low:high] != b[low:high]
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if a.startswith(b[low:middle], low) else (low, middle)
            return low
        at += len(block)
    return limit


def _common_suffix(a: str, b: str, limit: int) -> int:
    """How many characters (at most `limit`) `a` and `b` share at their end, as `_common_prefix`."""
    done = 0
    while done < limit:
        size = min(_BLOCK, limit - done)
        if not a.endswith(b[len(b) - done - size : len(b) - done], 0, len(a) - done):
            low, high = done, done + size  # the last `low` agree; the last `high` do not
            while high - low > 1:
                middle = (low + high) // 2
                agree = a.endswith(b[len(b) - middle : len(b) - low], 0, len(a) - low)
                low, high = (middle, high) if agree else (low, middle)
            return low
        done += size
    return limit


@dataclass(frozen=True)
class _Scan:
    """The text the patterns read: all of the text, or some of its lines (then `lines` and `starts`
    say where each line read begins in what is read and in the whole text)."""

    text: str
    lowered: str
    lines: list[int] | None = None
    starts: list[int] | None = None

    def position(self, at: int) -> int:
        if self.lines is None or self.starts is None:
            return at
        line = bisect_right(self.lines, at) - 1
        return at - self.lines[line] + self.starts[line]


def _redact(text: str, scan: _Scan, legacy_shapes: bool, wrapped: list[_Hit], lowered: str | None = None) -> Redaction:
    """Cut from `text` every secret-shaped value found in `scan` (all or some lines of `text`) and
    the `wrapped` ones; `lowered` is `text.lower()` if known, kept when nothing was found."""
    modern = _modern_hits(scan.text)
    keyed, secret_guid = _keyed_hits(scan.text, scan.lowered)
    basic = _basic_hits(scan.text, scan.lowered)
    legacy = _legacy_hits(scan.text) if legacy_shapes else []
    hits = modern + keyed + basic + legacy
    if scan.lines is not None:  # only some lines were read: place the spans in the whole text
        hits = [h._replace(start=scan.position(h.start), end=scan.position(h.start) + h.end - h.start) for h in hits]
    hits += wrapped
    spans = [(hit.start, hit.end) for hit in hits]
    spans += _copies(text, {scan.text[hit.start : hit.end] for hit in keyed + basic})
    certain = any(hit.certain for hit in hits)
    return Redaction(
        text=_cut(text, spans),
        certain=certain,
        possible=bool(hits) and not certain,
        hints=tuple(dict.fromkeys(hit.hint for hit in hits)),
        secret_guid=secret_guid,
        legacy_checked=legacy_shapes,
        clean_lowered=None if spans else lowered,
    )


def _cut(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` with each span (overlapping ones merged) replaced by one marker: a single pass."""
    pieces: list[str] = []
    done = 0
    for start, end in sorted(spans):
        if end <= done:
            continue
        if start < done:  # overlaps the span just cut: extend it
            done = end
            continue
        pieces += (text[done:start], REDACTED)
        done = end
    pieces.append(text[done:])
    return "".join(pieces)


def _copies(text: str, values: set[str]) -> list[tuple[int, int]]:
    """Spans of other copies of the values found after a key or in Basic credentials, which are
    secrets wherever else they appear, where no pattern would know them.

    A few values are looked for anywhere, each by one scan in C. Past that, one scan per value
    would make the cost quadratic, so copies are looked for as whole tokens instead (`"…"`, `=…`,
    `:…`, `….`): one pass over the text whatever the number of values.
    """
    spans = []
    if len(values) <= _FEW_VALUES:
        for value in values:
            at = text.find(value)
            while at >= 0:
                spans.append((at, at + len(value)))
                at = text.find(value, at + len(value))
        return spans
    for run in _RUN.finditer(text):
        token, start = run.group(), run.start()
        whole = token if token in values else token.rstrip(".")  # a sentence may end with it
        if whole in values:
            spans.append((start, start + len(whole)))
            continue
        first = _KEY_END.search(token)
        last = max(token.rfind("="), token.rfind(":")) + 1
        for after in (first.end() if first else 0, last):  # after a key
            if after and token[after:] in values:
                spans.append((start + after, start + len(token)))
                break
    return spans


def _talks_of_secrets(lowered: str) -> bool:
    return any(word in lowered for word in _SECRET_CONTEXT)


def _lowers_in_place(text: str) -> bool:
    """Whether `text.lower()` keeps every character one character: all do but U+0130 (`İ`)."""
    return "\u0130" not in text


def _ascii_lower(text: str) -> str:
    """Lower-case without changing the length, so match positions map back to `text`."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def _keyed_hits(text: str, lowered: str) -> tuple[list[_Hit], str | None]:
    hits, secret_guid = [], None
    matches = sorted((m for pattern in _KEYED for m in pattern.finditer(lowered)), key=lambda m: m.start())
    for match in matches:
        value = text[match.start(1) : match.end(1)]
        if _GUID_RE.match(value):
            secret_guid = secret_guid or value.lower()
        elif _looks_like_keyed_secret(value):
            hits.append(_Hit(match.start(1), match.end(1), value[:3], certain=True))
    return hits, secret_guid


def _basic_hits(text: str, lowered: str) -> list[_Hit]:
    """HTTP Basic credentials (`Authorization: Basic base64(client_id:secret)`): the hint is the secret's."""
    hits: list[_Hit] = []
    decoded: dict[str, str | None] = {}  # a log repeats the same header: decode each value once
    for match in _BASIC.finditer(lowered):
        value = text[match.start(1) : match.end(1)]
        secret = decoded[value] if value in decoded else decoded.setdefault(value, _basic_secret(value))
        if secret:
            hits.append(_Hit(match.start(1), match.end(1), secret[:3], certain=True))
    return hits


def _basic_secret(value: str) -> str | None:
    try:
        decoded = binascii.a2b_base64(value, strict_mode=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):  # also a character that only lower-cases to base64 (K, Kelvin)
        return None
    user, colon, secret = decoded.partition(":")
    return secret if colon and user and secret and decoded.isprintable() else None


def _legacy_hits(text: str) -> list[_Hit]:
    # Only the regex engine touches every word; Python sees the few of length 32, 34 or 44. Every
    # break becomes one space, so positions in the translated text are positions in `text`.
    if text.isascii():
        tokens = " " + text.translate(_TOKEN_BREAKS_TO_SPACE)
    else:
        ascii_text = text.replace("?", "\x01").encode("ascii", "replace").decode("ascii")
        tokens = " " + ascii_text.translate(_NON_ASCII_BREAKS_TO_SPACE)
    hits = []
    for match in _LEGACY_TOKEN.finditer(tokens):
        start, end = match.start(1) - 1, match.end(1) - 1
        token = text[start:end]
        if _looks_like_legacy_secret(token) and _whole_token(text, start, end):
            hits.append(_Hit(start, end, token[:3], certain=False))
    return hits


def _whole_token(text: str, start: int, end: int) -> bool:
    return (start == 0 or text[start - 1] in _BREAKS) and (end == len(text) or text[end] in _BREAKS)


def _modern_hits(text: str) -> list[_Hit]:
    """Secrets of the `xxx\\dQ~...` format, each with the start of the value."""
    return [
        _Hit(m.start() - 4, m.end(), text[m.start() - 4 : m.start() - 1], certain=True) for m in _MODERN.finditer(text)
    ]


def _wrapped_hits(text: str, lowered: str) -> list[_Hit]:
    """Values a terminal broke over two lines: looked for in the text with those line breaks taken out.

    Only the modern format, keyed values and Basic credentials: a legacy shape is too common to
    guess across a line break. An error code is never part of a secret, so a value that would take
    the next line's code with it is not one.
    """
    pieces = _wrapped_pieces(text)
    if not pieces:
        return []
    # No pattern crosses a newline, so only the lines a break joins are read, each joined into one.
    joined = "".join(text[start:end] for start, end in pieces)
    joined_lower = "".join(lowered[start:end] for start, end in pieces)
    at = list(accumulate((end - start for start, end in pieces), initial=0))  # where each piece is in `joined`
    hits = []
    for hit in _modern_hits(joined) + _keyed_hits(joined, joined_lower)[0] + _basic_hits(joined, joined_lower):
        first, last = bisect_right(at, hit.start) - 1, bisect_right(at, hit.end - 1) - 1
        if first == last:
            continue  # on one line: found without joining
        if "aadsts" in joined_lower[hit.start : hit.end]:
            continue
        start, end = pieces[first][0] + hit.start - at[first], pieces[last][0] + hit.end - at[last]
        hits.append(_Hit(start, end, hit.hint, hit.certain))
    return hits


def _wrapped_pieces(text: str) -> list[tuple[int, int]]:
    """The lines that a terminal's line breaks join, as (start, end) pieces of `text` between those
    breaks. The last piece of a joined line keeps its newline, so no match runs into the next one."""
    pieces: list[tuple[int, int]] = []
    for at in (m.start() for m in _WRAP.finditer(text)):
        if pieces and pieces[-1][1] == at + 1:  # the line this break ends was joined already
            pieces[-1] = (pieces[-1][0], at)
        else:
            pieces.append((text.rfind("\n", 0, at) + 1, at))
        end = text.find("\n", at + 1)
        pieces.append((at + 1, len(text) if end < 0 else end + 1))
    return pieces


def _looks_like_keyed_secret(value: str) -> bool:
    if _PLACEHOLDER.match(value) or _FILE_LIKE.search(value) or "://" in value:
        return False
    classes = _char_classes(value)
    # Generated values of one case and digits (40 lower-case letters and digits) are long.
    return len(classes) >= 3 or (len(value) >= 32 and "digit" in classes and len(classes) == 2)


def _looks_like_legacy_secret(token: str) -> bool:
    if _LEGACY44_CHARS.match(token):
        return {"lower", "upper", "digit"} <= _char_classes(token)
    if not (_LEGACY32_CHARS.match(token) or _LEGACY34_CHARS.match(token)):
        return False
    if not {"lower", "upper", "digit"} <= _char_classes(token):
        return False
    symbols = "=:[]@*+?/" if len(token) == 32 else "-~_."
    return any(c in symbols for c in token)


def _char_classes(value: str) -> set[str]:
    return {name for name, present in _CLASSES if present(value)}
