"""A worker that shares its event loop with the web tier runs only as many jobs as the loop can carry
while it keeps time.

Slack redelivers an event it has not seen acked within 3 s, and a Teams invoke waits for its answer;
an answer to a paste can start a moment later without anyone noticing. When both run on one loop and
the process is short of CPU, each ack waits behind every ready callback of the answers in progress,
so acks degrade first. `LoopPace` watches how late a timer fires (every callback ready before it runs
first) and sets how many jobs may run at once the way TCP sets its window: one at first, halved when
the loop runs late, one more for every period on time, never above the worker's concurrency. Jobs not
taken yet stay in the queue, where a worker of another process can take them.
"""

from __future__ import annotations

import asyncio
import contextlib

# A timer firing later than this means requests are queueing behind jobs. An ack takes a handful of
# trips through the loop (accept, read, verify, enqueue, respond): this keeps it within tens of ms.
# At 200 Slack events/s on one process, 2 ms gave an ack p99 of 43-45 ms where 5 ms gave 47-69 ms
# (docs/benchmarks.md); answers' throughput did not move measurably.
LATE_SECONDS = 0.002
# How often the loop is looked at: often enough to react within a few acks, rare enough to cost
# nothing measurable (a hundred timers a second).
PERIOD_SECONDS = 0.01


class LoopPace:
    def __init__(self, most: int) -> None:
        self.most = most
        self.allowed = 1  # a slow start: the loop proves it keeps time before more jobs run at once
        self.running = 0
        self._changed = asyncio.Event()
        self._watch: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._watch = asyncio.create_task(self._watch_loop(), name="loop-pace")

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch

    async def take(self) -> None:
        """Wait until one more of the worker's slots may look for a job, and count it."""
        while self.running >= self.allowed:
            self._changed.clear()
            await self._changed.wait()
        self.running += 1

    def give_back(self) -> None:
        """That slot's job (or its wait for one) is over."""
        self.running -= 1
        self._changed.set()

    async def _watch_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + PERIOD_SECONDS
            await asyncio.sleep(PERIOD_SECONDS)
            if loop.time() - due > LATE_SECONDS:
                self.allowed = max(1, self.allowed // 2)
            elif self.allowed < self.most:
                self.allowed += 1
                self._changed.set()
