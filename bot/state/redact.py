"""Messages about Redis that are safe to log or show: no passwords, short."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# `scheme://user:password@host` anywhere in a text; the password is replaced, the rest kept.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/\s]*):[^/\s]*@", re.IGNORECASE)
# `password=...` as in URL query strings and connection keyword dumps.
_PASSWORD_PARAM = re.compile(r"(?i)(password['\"]?\s*[=:]\s*['\"]?)[^&'\",\s)]+")
_MAX_MESSAGE = 200


def mask_url(url: str) -> str:
    """The URL with its password replaced by `***` (`redis://:***@host:6379/0`); query passwords too."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    masked = url
    if parts.password:
        userinfo, _, host = parts.netloc.rpartition("@")
        masked = masked.replace(parts.netloc, f"{userinfo.partition(':')[0]}:***@{host}", 1)
    return _PASSWORD_PARAM.sub(r"\1***", masked)


def error_types(exc: BaseException, depth: int = 3) -> str:
    """The exception's type and what caused it, by type name only: `ConnectionError from TimeoutError`.

    Says why Redis failed (a full pool, a refused or timed-out connection) without any message, which
    may hold a host, a key or a password.
    """
    names: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(names) < depth:
        names.append(type(current).__name__)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return " from ".join(names)


def redact(exc: BaseException) -> str:
    """`ErrorClass: message` with any URL credentials masked and the length capped."""
    message = _URL_CREDENTIALS.sub(r"\g<scheme>\g<user>:***@", str(exc))
    message = _PASSWORD_PARAM.sub(r"\1***", message).strip()
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"
