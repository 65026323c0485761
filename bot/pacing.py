"""Per-channel pacing: Slack allows about one message per second per channel (reference: platform
limits), so posts and updates to one channel wait their turn while other channels go ahead."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

PER_CHANNEL_SECONDS = 1.0


class ChannelPacer:
    def __init__(
        self,
        interval: float = PER_CHANNEL_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._sleep = sleep
        self._next: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def wait(self, channel: str) -> None:
        """Return when `channel` may take its next message (and count that message as sent)."""
        async with self._locks.setdefault(channel, asyncio.Lock()):
            now = self._clock()
            due = self._next.get(channel, now)
            if due > now:
                await self._sleep(due - now)
            self._next[channel] = max(now, due) + self._interval
