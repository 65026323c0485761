"""Pasted errors written against the sample tenant: one per diagnosis cause, for tests and the demo."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

# Beside this module; not through importlib.resources, whose import is ~8 ms of the CLI's start-up.
SAMPLES_FILE = Path(__file__).with_name("sample_errors.json")


@dataclass(frozen=True)
class SampleError:
    cause: str  # the cause this paste demonstrates
    title: str
    text: str


@cache
def sample_errors() -> tuple[SampleError, ...]:
    data = json.loads(SAMPLES_FILE.read_text("utf-8"))
    return tuple(SampleError(s["cause"], s["title"], s["text"]) for s in data["samples"])


def sample_reference_time() -> datetime:
    """The moment the samples were written for; pastes without a timestamp are judged at it."""
    data = json.loads(SAMPLES_FILE.read_text("utf-8"))
    return datetime.fromisoformat(data["reference_time"].replace("Z", "+00:00"))
