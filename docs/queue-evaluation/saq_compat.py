"""Criteria 1 and 2 for SAQ: one job runs inside our own event loop, on redis-py 8 against a real
redis-server and against fakeredis; prints what breaks without the shim and that the shim fixes it.

    REDIS_URL=redis://127.0.0.1:6411/0 python saq_compat.py
"""

import asyncio
import contextlib
import os
import sys
import time
from typing import Any

if "--without-lupa" in sys.argv:
    sys.modules["lupa"] = None  # type: ignore[assignment]  # as if lupa were not installed

import fakeredis
import redis
import redis.asyncio as aioredis
from saq import Worker
from saq.job import Job
from saq.queue.redis import RedisQueue


class VersionOnlyQueue(RedisQueue):
    """Only the INFO fix, to show the spinning dequeue."""

    async def version(self) -> tuple[int, ...]:
        return (7, 0, 0)


class EmbeddedQueue(RedisQueue):
    """SAQ's RedisQueue on fakeredis (one process).

    - fakeredis has no INFO; SAQ reads it only to choose BLMOVE (>= 6.2) over BRPOPLPUSH.
    - fakeredis's blocking pops never block (BLMOVE with any timeout returns None at once), so the
      stock dequeue spins the loop; instead move without blocking and wait for a wake-up from an
      enqueue in this process, or a short poll for jobs that schedule()/retry() moved.
    """

    POLL_S = 0.05

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wakeup = asyncio.Event()

    async def version(self) -> tuple[int, ...]:
        return (7, 0, 0)

    async def _enqueue(self, job: Job) -> Job | None:
        enqueued = await super()._enqueue(job)
        self._wakeup.set()
        return enqueued

    async def dequeue(self, timeout: float = 0.0, poll_interval: float = 0.0) -> Job | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout else None
        while deadline is None or loop.time() < deadline:
            job_id = await self.redis.lmove(self._queued, self._active, "LEFT", "RIGHT")
            if job_id is not None:
                return await self._get_job_by_id(job_id)
            self._wakeup.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.POLL_S)
        return None


async def double(ctx: dict, n: int) -> int:
    return 2 * n


async def run_one(queue: RedisQueue) -> str:
    # The worker is a task in the caller's loop, beside whatever else the loop serves.
    worker = Worker(queue, functions=[double], concurrency=2)
    task = asyncio.create_task(worker.start())
    try:
        await asyncio.sleep(0.2)  # past the worker's first sweep (see saq_sweep_race.py)
        job = await queue.enqueue("double", n=21, key="compat-1")
        assert job is not None
        await job.refresh(until_complete=5)
        cpu = time.process_time()
        await asyncio.sleep(1.0)
        idle_cpu = time.process_time() - cpu
        return f"status={job.status.value} result={job.result}; CPU while idle 1 s: {idle_cpu * 1000:.0f} ms"
    finally:
        await worker.stop()
        task.cancel()


async def main() -> None:
    print("redis-py", redis.__version__, "fakeredis", fakeredis.__version__, "python", sys.version.split()[0])
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6411/0")

    real = RedisQueue(aioredis.from_url(url), name="compat")
    await real.connect()
    print("real redis-server, stock RedisQueue:", await run_one(real))
    await real.redis.flushdb()
    await real.disconnect()

    try:
        fake = RedisQueue(fakeredis.FakeAsyncRedis(), name="compat")
        await fake.connect()
        print("fakeredis, stock RedisQueue:", await asyncio.wait_for(run_one(fake), 8))
    except Exception as exc:
        print("fakeredis, stock RedisQueue: FAILS with", type(exc).__name__, str(exc)[:100])
    try:
        print("fakeredis INFO:", await fakeredis.FakeAsyncRedis().info())
    except Exception as exc:
        print("fakeredis INFO: fails with", type(exc).__name__, str(exc)[:100])

    fake = VersionOnlyQueue(fakeredis.FakeAsyncRedis(), name="compat")
    await fake.connect()
    print("fakeredis, version() fix only:", await asyncio.wait_for(run_one(fake), 8))

    has_lupa = sys.modules.get("lupa") is not None
    fake = EmbeddedQueue(fakeredis.FakeAsyncRedis(), name="compat")
    await fake.connect()
    try:
        print(f"fakeredis, EmbeddedQueue (lupa installed: {has_lupa}):", await asyncio.wait_for(run_one(fake), 8))
    except Exception as exc:
        print(f"fakeredis, EmbeddedQueue (lupa installed: {has_lupa}): FAILS with", type(exc).__name__, str(exc)[:100])


if __name__ == "__main__":
    asyncio.run(main())
