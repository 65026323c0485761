"""The whole shim in one subclass, as the bot would carry it, and a run of it on fakeredis and on
redis-server: a backlog waiting when two workers start, then a steady flow with a sweep every second.

    REDIS_URL=redis://127.0.0.1:6411/0 python saq_shim.py [seconds]
"""

import asyncio
import collections
import contextlib
import os
import sys
import time
from typing import Any

import fakeredis
import redis.asyncio as aioredis
from saq import Worker
from saq.job import Job, Status
from saq.queue.redis import RedisQueue

URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6411/0")
RUNS = "eval:runs"


class BotQueue(RedisQueue):
    """SAQ's RedisQueue without the sweep race of saq #277, and able to run on fakeredis.

    Use with Worker(..., dequeue_timeout=2): redis-py 8 times a socket out after 5 s, and a
    BLMOVE that blocks longer can lose the job it was handed.
    """

    FIRST_SWEEP_AFTER_S = 2.0  # the worker's first sweep runs at start, beside its first dequeues
    RECHECK_S = 0.5  # a dequeued job is QUEUED in the active list for one round trip
    POLL_S = 0.05  # fakeredis only: how often to look for jobs that schedule() or retry() queued
    READ_ACTIVE = """
        local r = {}
        for i, v in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do r[i] = {v, redis.call('GET', v)} end
        return r
    """

    def __init__(self, redis: Any, *, embedded: bool = False, **kwargs: Any) -> None:
        super().__init__(redis, **kwargs)
        self._embedded = embedded  # fakeredis: no INFO, and blocking pops return at once
        self._wakeup = asyncio.Event()
        self._sweep_from: float | None = None

    async def version(self) -> tuple[int, ...]:
        return (7, 0, 0) if self._embedded else await super().version()

    async def _enqueue(self, job: Job) -> Job | None:
        enqueued = await super()._enqueue(job)
        self._wakeup.set()
        return enqueued

    async def dequeue(self, timeout: float = 0.0, poll_interval: float = 0.0) -> Job | None:
        if not self._embedded:
            return await super().dequeue(timeout, poll_interval)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout else None
        while deadline is None or loop.time() < deadline:
            job_id = await self.redis.lmove(self._queued, self._active, "LEFT", "RIGHT")
            if job_id is not None:
                return await self._get_job_by_id(job_id)
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.POLL_S)
        return None

    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        if self._sweep_from is None:
            self._sweep_from = time.monotonic() + self.FIRST_SWEEP_AFTER_S
        if time.monotonic() < self._sweep_from or not await self.redis.set(self._sweep, 1, nx=True, ex=lock):
            return []
        read = self.redis.register_script(self.READ_ACTIVE)
        id_jobs = [(i, self.deserialize(b)) for i, b in await read(keys=[self._active])]
        first_queued = {i for i, job in id_jobs if job and job.status == Status.QUEUED}
        if first_queued:
            await asyncio.sleep(self.RECHECK_S)
            id_jobs = [(i, self.deserialize(b)) for i, b in await read(keys=[self._active])]
        swept = []
        for job_id, job in id_jobs:
            if job and job.status == Status.QUEUED and job_id not in first_queued:
                continue  # dequeued during the re-read: its worker is marking it ACTIVE now
            if job is None:
                await self.redis.lrem(self._active, 0, job_id)
                await self.redis.zrem(self._incomplete, job_id)
            elif job.status != Status.ACTIVE or job.stuck:
                await self.abort(job, error=self.swept_error_message)
                with contextlib.suppress(TimeoutError):
                    await job.refresh(abort)
                if job.retryable:
                    await self.retry(job, error=self.swept_error_message)
                else:
                    await self.finish(job, Status.ABORTED, error=self.swept_error_message)
            else:
                continue
            swept.append(job_id.decode())
        return swept


async def work(ctx: dict, hold: float) -> None:
    job = ctx["job"]
    await job.queue.redis.rpush(RUNS, job.key)
    await asyncio.sleep(hold)


async def run(embedded: bool, seconds: int) -> None:
    server = fakeredis.FakeServer()

    def client() -> Any:
        return fakeredis.FakeAsyncRedis(server=server) if embedded else aioredis.from_url(URL)

    web = BotQueue(client(), name="shim", embedded=embedded)
    await web.redis.flushdb()
    for i in range(20):  # a backlog waiting when the workers start
        await web.enqueue("work", key=f"b{i}", hold=0.02, retries=3)
    workers = [
        Worker(
            BotQueue(client(), name="shim", embedded=embedded),
            functions=[work],
            concurrency=10,
            timers={"sweep": 1},
            dequeue_timeout=2,
        )
        for _ in range(1 if embedded else 2)
    ]
    for worker in workers:
        worker.SIGNALS = []  # the process's signals stay with its owner
    tasks = [asyncio.create_task(w.start()) for w in workers]
    n, end = 20, time.monotonic() + seconds
    while time.monotonic() < end:
        await web.enqueue("work", key=f"s{n}", hold=0.02, retries=3)
        n += 1
        await asyncio.sleep(0.02)
    await asyncio.sleep(3)
    cpu = time.process_time()
    await asyncio.sleep(1)
    idle_ms = (time.process_time() - cpu) * 1000
    runs = collections.Counter(r.decode() for r in await web.redis.lrange(RUNS, 0, -1))
    for worker, task in zip(workers, tasks, strict=True):
        await worker.stop()
        task.cancel()
    where = "fakeredis, one worker" if embedded else "redis-server, two workers"
    print(
        f"{where}: {n} jobs; ran once {sum(c == 1 for c in runs.values())}, twice or more "
        f"{sum(c > 1 for c in runs.values())}, never {n - len(runs)}; CPU while idle 1 s: {idle_ms:.0f} ms"
    )


if __name__ == "__main__":
    seconds = int(sys.argv[1]) if sys.argv[1:] else 30
    asyncio.run(run(True, seconds))
    asyncio.run(run(False, seconds))
