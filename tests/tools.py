"""Tests that need an outside tool (Node, Chromium, redis-server) skip without it, except in CI."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

REQUIRE_TOOLS = "SECRETBOT_REQUIRE_TOOLS"


def missing_tool(reason: str) -> NoReturn:
    """Skip here; fail instead where SECRETBOT_REQUIRE_TOOLS=1 (CI), so CI never skips silently."""
    if os.environ.get(REQUIRE_TOOLS) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_TOOLS}=1 requires it")
    pytest.skip(reason)
