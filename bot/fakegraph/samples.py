"""Pasted errors written against the sample tenant: one per diagnosis cause, for tests and the demo."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class SampleError:
    cause: str  # the cause this paste demonstrates
    title: str
    text: str


@cache
def sample_errors() -> tuple[SampleError, ...]:
    data = json.loads(resources.files(__package__).joinpath("sample_errors.json").read_text("utf-8"))
    return tuple(SampleError(s["cause"], s["title"], s["text"]) for s in data["samples"])


def sample_reference_time() -> datetime:
    """The moment the samples were written for; pastes without a timestamp are judged at it."""
    data = json.loads(resources.files(__package__).joinpath("sample_errors.json").read_text("utf-8"))
    return datetime.fromisoformat(data["reference_time"].replace("Z", "+00:00"))
