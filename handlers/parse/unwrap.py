"""Undo the wrappers that chat clients, terminals and log formats put around an error text.

Each step is a single linear pass and runs only when its marks are present, so plain text costs
almost nothing. The result is plain text with real newlines and no markup.
"""

from __future__ import annotations

import html
import re
from urllib.parse import unquote_plus

# Terminal colour and cursor codes (CSI, as CI runners and Terraform print them) and terminal titles
# and links (OSC): they sit inside words and ids ("Trace ID: \x1b[33m<id>").
_TERMINAL_CODE = re.compile(r"\x1b(?:\[[0-?]{0,32}[ -/]{0,8}[@-~]|\][^\x07\x1b\n]{0,2048}(?:\x07|\x1b\\))")
# One search for the tags (a literal first character keeps it fast), one for the entity. In lower-cased
# text when it is ASCII (cheap to lower-case); otherwise in any case of their ASCII letters, which
# finds what lower-casing would, without lower-casing a long non-ASCII text.
_HTML_TAG_MARK = re.compile(r"<(?:/|br|p[> ]|div|at>|span)")
_HTML_TAG_MARK_ANY_CASE = re.compile(_HTML_TAG_MARK.pattern, re.I | re.A)
_NBSP_ANY_CASE = re.compile("&nbsp;", re.I | re.A)
_AT_MENTION = re.compile(r"<at\b[^<>]{0,300}>.{0,300}?</at>", re.I | re.S)
_HTML_BREAK = re.compile(r"<br\s*/?>|</(?:p|div|li|tr|pre|h[1-6])>", re.I)
_HTML_TAG = re.compile(r"</?[a-z][^<>]{0,500}>", re.I)

# Slack mrkdwn: <https://x|label>, <mailto:a@b|a@b>, <@U123>, <#C123|general>, <!here>.
_SLACK_ANGLE = re.compile(r"<((?:https?://|mailto:|[@#!])[^<>|\s]{0,2000})(?:\|([^<>]{0,2000}))?>")
_SLACK_ENTITY = re.compile(r"&(?:lt|gt|amp);")
_NUMERIC_ENTITY = re.compile(r"&#(?:(\d{1,7})|[xX]([0-9a-fA-F]{1,6}));")

# "> " at the start of quoted lines (mail, Slack and Markdown quotes) would split wrapped sentences.
# Anchored on the newline before the line (a literal), which is much faster than `^` with MULTILINE.
_QUOTE_MARK = re.compile(r"\n[ \t]{0,8}(?:>[ \t]?){1,8}")
# Backslash escapes of JSON (also doubly escaped: \\n, \\\"), and \uXXXX.
_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_ESCAPES = {"\\r\\n": "\n", "\\n": "\n", "\\r": "\n", "\\t": "\t", '\\"': '"', "\\'": "'", "\\/": "/"}
# Every escape in one pass, \uXXXX too: no escape's result is a backslash or a hex digit, so none can
# make or unmake another, and one pass finds what a pass per kind would.
_ESCAPE = re.compile(r"\\(?:r\\n|[nrt\"'/]|u([0-9a-fA-F]{4}))")
_FEW_ESCAPES = 20_000  # above this many backslashes, one str.replace per kind beats a call per escape
# A whitespace-delimited token with an `=` in it: form-encoded when it also has + or %XX.
_FORM_RUN = re.compile(r"(?<!\S)[^\s=]*+=\S*+")
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
# A GUID that a terminal wrapped at its width: "...-3333-44\n4455556666".
# Anchored on the newline (a literal), and only where the line ends in at least four hex digits or
# dashes (the part of a GUID before the break is that long when the part after it fits 32) and the
# next one starts with what can end a GUID: a CI log's lines start with a timestamp ("2026-11-20T"),
# which ends no GUID, and calling Python for each of them cost more than the rest of `unwrap`.
_H = "[0-9a-fA-F]"
_WRAPPED_HEX = re.compile(
    rf"\n(?<=[0-9a-fA-F-]{{4}}\n)[ \t]{{0,8}}({_H}{{1,12}}|{_H}{{0,4}}(?:-{_H}{{4}}){{0,3}}-{_H}{{12}})(?![0-9a-fA-F-])"
)
_HEX_CHARS = "0123456789abcdefABCDEF-"
# Characters that show as nothing: chat clients and word processors put them inside long tokens
# (a zero-width space where a line may break), which would hide a secret or an id from the patterns.
_INVISIBLE_CHARS = "\u00ad\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff"
_INVISIBLE = re.compile(f"[{_INVISIBLE_CHARS}]")
# Two-character marks, looked for with the regex engine: its search for a literal is about three
# times faster than `in` for a needle this short.
_CRLF = re.compile("\r\n")
_QUOTE_AT_LINE_START = re.compile("\n>")
_DOUBLE_BACKSLASH = re.compile(r"\\\\")
_GUID_FULL = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")


def unwrap(text: str) -> str:
    """Plain text from a paste in any of the formats people paste."""
    # Looking for one character is many times cheaper than for two or a pattern (most of all in text
    # that is not ASCII), so the cheap checks go first.
    if "\r" in text and _CRLF.search(text):
        text = text.replace("\r\n", "\n")
    if _has_html_marks(text):
        text = _from_html(text)
    elif "&" in text or "<" in text:  # Slack escapes &, < and > and wraps links in <...>
        text = _from_slack(text)
    if ">" in text and (text.startswith(">") or _QUOTE_AT_LINE_START.search(text)):
        text = _QUOTE_MARK.sub("\n", "\n" + text)[1:]
    if "`" in text or ("~" in text and "~~~" in text):
        text = text.replace("```", "\n").replace("~~~", "\n").replace("`", " ")
    if "\\" in text:
        text = _unescape(text)
    if "%" in text and _PERCENT.search(text):
        text = _form_decode_lines(text)
    # After decoding, which can produce them (&#8203;, \u200b, %E2%80%8B).
    if not text.isascii() and any(mark in text for mark in _INVISIBLE_CHARS):
        text = _INVISIBLE.sub("", text)
    if "\n" in text and "-" in text:
        text = _WRAPPED_HEX.sub(_join_wrapped_guid, text)
    return text.replace("\xa0", " ")


def _has_html_marks(text: str) -> bool:
    if text.isascii():
        lowered = text.lower()
        return _HTML_TAG_MARK.search(lowered) is not None or "&nbsp;" in lowered
    return _HTML_TAG_MARK_ANY_CASE.search(text) is not None or ("&" in text and _NBSP_ANY_CASE.search(text) is not None)


def without_terminal_codes(text: str) -> str:
    """The text as a terminal shows it, without its colour codes. No secret's shape holds an escape
    character, and a terminal wraps lines at their visible width, so secrets are looked for in this
    text: looking in the coloured one and again in this one would read a CI log twice."""
    return _TERMINAL_CODE.sub("", text) if "\x1b" in text else text


def _from_html(text: str) -> str:
    text = _AT_MENTION.sub(" ", text)
    text = _HTML_BREAK.sub("\n", text)
    text = _HTML_TAG.sub("", text)
    return html.unescape(text)


def _from_slack(text: str) -> str:
    text = _SLACK_ANGLE.sub(_slack_link, text)
    if "&" not in text:
        return text
    text = _SLACK_ENTITY.sub(lambda m: {"&lt;": "<", "&gt;": ">", "&amp;": "&"}[m.group(0)], text)
    # Text copied from a web page into Slack can still carry numeric entities (&#39; for ').
    return _NUMERIC_ENTITY.sub(_numeric_entity, text) if "&#" in text else text


def _numeric_entity(match: re.Match[str]) -> str:
    number = int(match.group(1)) if match.group(1) else int(match.group(2), 16)
    return chr(number) if 0 < number < 0x110000 else match.group(0)


def _slack_link(match: re.Match[str]) -> str:
    target, label = match.group(1), match.group(2)
    if target[0] in "@#!":
        return label or " "
    if target.startswith("mailto:"):
        return label or target[7:]
    if not label or label == target or target.endswith(label):
        return target
    return f"{label} {target}"


def _unescape(text: str) -> str:
    """Undo JSON string escapes, however many times the JSON was nested in another string."""
    while _DOUBLE_BACKSLASH.search(text):
        text = text.replace("\\\\", "\\")
    if text.count("\\") < _FEW_ESCAPES:  # one pass, a Python call per escape
        return _ESCAPE.sub(_unescape_one, text)
    for escaped, plain in _ESCAPES.items():  # one pass per kind of escape, each all in C
        text = text.replace(escaped, plain)
    return _UNICODE_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text) if "\\u" in text else text


def _unescape_one(match: re.Match[str]) -> str:
    return _ESCAPES[match.group(0)] if match.group(1) is None else chr(int(match.group(1), 16))


def _form_decode_lines(text: str) -> str:
    # A run never crosses a line, and few lines hold one: the pattern runs only on those.
    lines = text.split("\n")
    for number, line in enumerate(lines):
        if "=" in line and ("+" in line or "%" in line):
            lines[number] = _FORM_RUN.sub(_form_decode, line)
    return "\n".join(lines)


def _form_decode(match: re.Match[str]) -> str:
    run = match.group(0)
    if "+" not in run and not _PERCENT.search(run):
        return run
    return unquote_plus(run).replace("&", "\n")


def _join_wrapped_guid(match: re.Match[str]) -> str:
    tail, start = match.group(1), match.start()
    # A GUID has a dash in its last 13 characters: in the part after the break, or just before it.
    if "-" not in tail and "-" not in match.string[max(start - 13, 0) : start]:
        return match.group(0)
    before = match.string[max(start - 36, 0) : start]
    head = before[len(before.rstrip(_HEX_CHARS)) :]
    if len(head) > 35 or len(head) + len(tail) != 36:
        return match.group(0)
    if _GUID_FULL.match(head + tail):
        return tail  # the head stays where it is; only the line break goes
    return match.group(0)
