"""Injected failures: "answer requests whose path matches this regex with that status"."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from bot.fakegraph.errors import GraphError, standard_error


@dataclass
class Fault:
    """One injected failure. `hits` counts the requests it has answered so far."""

    pattern: re.Pattern[str]  # searched in the full path, e.g. "/beta/auditLogs/signIns"
    status: int
    times: int | None = None  # None: every matching request
    retry_after: float | None = None
    method: str | None = None  # None: any method
    retry_after_as_date: bool = False  # send Retry-After as an HTTP date instead of seconds
    # Writes only: True carries the write out before answering with the error (a write whose answer
    # was lost: the caller must read before writing again); `delay` seconds pass before the answer
    # (longer than the caller's timeout: it sees no answer at all).
    applied: bool = False
    delay: float = 0.0
    hits: int = 0

    @property
    def active(self) -> bool:
        return self.times is None or self.hits < self.times

    def matches(self, method: str, path: str) -> bool:
        if not self.active or (self.method is not None and self.method != method.upper()):
            return False
        return self.pattern.search(path) is not None

    def error(self) -> GraphError:
        headers = {}
        if self.retry_after is not None and self.retry_after_as_date:
            # HTTP's other form, e.g. "Sun, 06 Dec 2026 20:30:05 GMT" (RFC 9110 §10.2.3).
            when = datetime.now(UTC) + timedelta(seconds=math.ceil(self.retry_after))
            headers["Retry-After"] = format_datetime(when, usegmt=True)
        elif self.retry_after is not None:
            # HTTP's Retry-After is whole seconds, and kiota's RetryHandler only parses integers.
            headers["Retry-After"] = str(math.ceil(self.retry_after))
        return standard_error(self.status, headers)


def make_fault(
    path_pattern: str,
    status: int,
    *,
    times: int | None,
    retry_after: float | None,
    method: str | None,
    retry_after_as_date: bool = False,
    applied: bool = False,
    delay: float = 0.0,
) -> Fault:
    if not 400 <= status <= 599:
        raise ValueError(f"a fault status must be 4xx or 5xx, not {status}")
    if times is not None and times < 1:
        raise ValueError(f"times must be at least 1 (or None for always), not {times}")
    if retry_after is not None and retry_after < 0:
        raise ValueError(f"retry_after must not be negative, not {retry_after}")
    if delay < 0:
        raise ValueError(f"delay must not be negative, not {delay}")
    return Fault(
        re.compile(path_pattern),
        status,
        times,
        retry_after,
        method.upper() if method else None,
        retry_after_as_date,
        applied,
        delay,
    )
