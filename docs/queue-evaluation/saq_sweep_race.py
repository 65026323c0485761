"""SAQ issue #277, "task swept during execution": a worker moves a job to the active list (BLMOVE)
one round trip before it marks it ACTIVE; a sweep that reads the job in between takes it for
abandoned. This counts how often that happens and what follows.

    REDIS_URL=redis://127.0.0.1:6411/0 python saq_sweep_race.py startup [trials] [--fake-only]
    REDIS_URL=redis://127.0.0.1:6411/0 python saq_sweep_race.py steady [seconds] [sweep_s] [queue classes]

startup: a job enqueued before the worker starts (a restart with a backlog); the worker's first
sweep runs at once, beside its first dequeues. Stock RedisQueue vs the first sweep held back.
steady: two worker processes sweeping every second while short jobs flow at ~100/s.
"""

import asyncio
import collections
import contextlib
import os
import subprocess
import sys
import time

import fakeredis
import redis.asyncio as aioredis
from saq import Worker
from saq.job import Status
from saq.queue.redis import RedisQueue

from saq_compat import EmbeddedQueue

URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6411/0")
RUNS = "eval:runs"


class FirstSweepLaterQueue(RedisQueue):
    """Skips the sweeps of its first seconds: at start, every job it dequeues is still QUEUED for
    one round trip, and the worker's first sweep runs in that very moment."""

    SWEEP_GRACE_S = 2.0
    _sweep_from: float | None = None

    def sweep_now(self) -> bool:
        """False for SWEEP_GRACE_S after the first call (the worker's first sweep comes at start)."""
        if self._sweep_from is None:
            self._sweep_from = time.monotonic() + self.SWEEP_GRACE_S
        return time.monotonic() >= self._sweep_from

    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        if not self.sweep_now():
            return []
        return await super().sweep(lock, abort)


class CarefulSweepQueue(FirstSweepLaterQueue):
    """SAQ's sweep, except that a job found still QUEUED in the active list is read again after a
    moment: its worker moved it there (BLMOVE) and marks it ACTIVE one round trip later."""

    RECHECK_S = 0.5
    # one atomic read of the active list and its jobs, as SAQ's own sweep script does
    READ_ACTIVE = """
        local r = {}
        for i, v in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do r[i] = {v, redis.call('GET', v)} end
        return r
    """

    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        if not self.sweep_now() or not await self.redis.set(self._sweep, 1, nx=True, ex=lock):
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
                with contextlib.suppress(asyncio.TimeoutError):
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
    await job.queue.redis.rpush(RUNS, f"{job.key}:{job.attempts}")
    await asyncio.sleep(hold)


async def startup_trial(queue_cls: type[RedisQueue], hold: float, retries: int, fake: bool) -> tuple[int, str, str]:
    if fake:
        redis = fakeredis.FakeAsyncRedis()
        queue_cls = type("Embedded" + queue_cls.__name__, (EmbeddedQueue, queue_cls), {})
    else:
        redis = aioredis.from_url(URL)
        await redis.flushdb()  # also drops the sweep lock, as after a quiet minute
        await redis.script_flush()  # a fresh redis-server: the first EVALSHA misses
    # the web tier enqueues on its own client; the worker starts on a fresh one
    await RedisQueue(redis, name="race").enqueue("work", key="j", hold=hold, retries=retries, timeout=30)
    if not fake:
        redis = aioredis.from_url(URL)
    queue = queue_cls(redis, name="race")
    await queue.connect()
    worker = Worker(queue, functions=[work], concurrency=2)
    task = asyncio.create_task(worker.start())
    await asyncio.sleep(hold + 6.5)  # the sweep waits up to 5 s for a swept job to end
    job = await queue.job("j")
    runs = await redis.lrange(RUNS, 0, -1)
    if not fake:
        await redis.flushdb()
    await worker.stop()
    task.cancel()
    await redis.aclose()
    return len(runs), job.status.value if job else "gone", (job.error or "") if job else ""


async def startup(trials: int) -> None:
    for fake in (False, True) if "--fake-only" not in sys.argv else (True,):
        for queue_cls in (RedisQueue, FirstSweepLaterQueue):
            for hold, retries in ((0.2, 1), (0.2, 3), (2.0, 1), (2.0, 3)):
                outcomes: collections.Counter[str] = collections.Counter()
                for _ in range(trials):
                    try:
                        runs, status, error = await asyncio.wait_for(
                            startup_trial(queue_cls, hold, retries, fake), hold + 20
                        )
                    except TimeoutError:
                        outcomes["trial hung"] += 1
                        continue
                    outcomes[f"runs={runs} {status}{' (' + error + ')' if error else ''}"] += 1
                where = "fakeredis + EmbeddedQueue" if fake else "redis-server"
                print(f"{where}, {queue_cls.__name__}, job {hold} s, retries={retries}: {dict(outcomes)}")


async def steady(seconds: int, sweep_s: int, queue_name: str) -> None:
    redis = aioredis.from_url(URL)
    await redis.flushdb()
    workers = [
        subprocess.Popen([sys.executable, __file__, "--worker", str(sweep_s), queue_name], stderr=subprocess.DEVNULL)
        for _ in range(2)
    ]
    await asyncio.sleep(3)
    queue = RedisQueue(redis, name="race")
    n = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await queue.enqueue("work", key=f"s{n}", hold=0.02, retries=3, timeout=30)
        n += 1
        await asyncio.sleep(0.01)
    await asyncio.sleep(8)
    for w in workers:
        w.terminate()
        w.wait()
    per_key = collections.Counter(r.decode().rsplit(":", 1)[0] for r in await redis.lrange(RUNS, 0, -1))
    print(
        f"steady, {queue_name}, 2 workers sweeping every {sweep_s} s, {n} jobs over {seconds} s: "
        f"run once {sum(c == 1 for c in per_key.values())}, "
        f"run twice or more {sum(c > 1 for c in per_key.values())}, never run {n - len(per_key)}"
    )
    await redis.aclose()


async def run_worker(sweep_s: int, queue_name: str) -> None:
    queue = QUEUES[queue_name](aioredis.from_url(URL), name="race")
    await queue.connect()
    await Worker(queue, functions=[work], concurrency=10, timers={"sweep": sweep_s}).start()


QUEUES = {cls.__name__: cls for cls in (RedisQueue, FirstSweepLaterQueue, CarefulSweepQueue)}


if __name__ == "__main__":
    mode = sys.argv[1] if sys.argv[1:] else "startup"
    if mode == "--worker":
        asyncio.run(run_worker(int(sys.argv[2]), sys.argv[3]))
    elif mode == "steady":
        seconds, sweep_s = (int(a) for a in (sys.argv[2:4] + ["60", "1"][len(sys.argv[2:4]) :]))
        for name in sys.argv[4:] or ["RedisQueue", "CarefulSweepQueue"]:
            asyncio.run(steady(seconds, sweep_s, name))
    else:
        asyncio.run(startup(int(sys.argv[2]) if sys.argv[2:3] and sys.argv[2].isdigit() else 4))
