"""Per-channel pacing: Slack allows about one message per second per channel (reference: platform
limits), so posts and updates to one channel wait their turn while other channels go ahead."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

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

    @asynccontextmanager
    async def turn(self, channel: str) -> AsyncIterator[None]:
        """Hold `channel` while one message is sent; the next waits until a full interval after this
        one was answered (measured from the answer, so network delays cannot squeeze two together)."""
        async with self._locks.setdefault(channel, asyncio.Lock()):
            wait = self._next.get(channel, 0.0) - self._clock()
            if wait > 0:
                await self._sleep(wait)
            try:
                yield
            finally:
                self._next[channel] = self._clock() + self._interval
