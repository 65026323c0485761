"""Criterion 3 for SAQ: SIGKILL the worker process running a job; measure how long until another
worker process starts it again, and check that the retry count bounds the re-runs.

    REDIS_URL=redis://127.0.0.1:6411/0 python saq_kill.py [heartbeat_s sweep_s ...]

The job touches its heartbeat itself (job.update() every second, as SAQ requires) while it holds
for a few seconds, standing in for an answer waiting on Graph or on Slack's chat.update.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import redis.asyncio as aioredis
from saq import Worker
from saq.queue.redis import RedisQueue

URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6411/0")
STARTS = "eval:starts"


async def answer(ctx: dict, hold: float) -> str:
    job = ctx["job"]
    redis = job.queue.redis
    await redis.rpush(STARTS, json.dumps({"pid": os.getpid(), "attempt": job.attempts, "t": time.time()}))
    end = time.monotonic() + hold
    while time.monotonic() < end:
        await job.update()  # the heartbeat: SAQ sweeps an ACTIVE job whose `touched` is older than `heartbeat`
        await asyncio.sleep(1)
    return "answered"


async def run_worker(sweep_s: int) -> None:
    queue_cls = RedisQueue
    if os.environ.get("EVAL_QUEUE") == "careful":  # the sweep that re-reads QUEUED jobs (saq_sweep_race.py)
        from saq_sweep_race import CarefulSweepQueue as queue_cls
    queue = queue_cls(aioredis.from_url(URL), name="kill")
    await queue.connect()
    await Worker(queue, functions=[answer], concurrency=2, timers={"sweep": sweep_s}).start()


def spawn(sweep_s: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, "--worker", str(sweep_s)], stderr=subprocess.DEVNULL)


async def trial(heartbeat: int, sweep_s: int, retries: int, kills: int, hold: float = 2.0) -> None:
    redis = aioredis.from_url(URL)
    await redis.flushdb()
    workers = {p.pid: p for p in (spawn(sweep_s) for _ in range(kills + 2))}
    await asyncio.sleep(2.0)  # every worker past its first sweep
    queue = RedisQueue(redis, name="kill")
    await queue.enqueue("answer", key="answer-1", hold=hold, heartbeat=heartbeat, retries=retries, timeout=120)
    seen, killed_at, recoveries = 0, None, []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        starts = [json.loads(s) for s in await redis.lrange(STARTS, 0, -1)]
        for start in starts[seen:]:
            if killed_at is not None:
                recoveries.append(start["t"] - killed_at)
                killed_at = None
            if kills > 0:
                kills -= 1
                workers.pop(start["pid"]).send_signal(signal.SIGKILL)
                killed_at = time.time()
        seen = len(starts)
        job = await queue.job("answer-1")
        if job and job.status.value in ("complete", "failed", "aborted"):
            break
        await asyncio.sleep(0.05)
    job = await queue.job("answer-1")
    print(
        f"{os.environ.get('EVAL_QUEUE', 'stock')} queue, heartbeat={heartbeat}s sweep={sweep_s}s retries={retries}: "
        f"starts={seen} "
        f"recovery after kill={[round(r, 1) for r in recoveries]} s; final status={job and job.status.value} "
        f"error={job and job.error!r} attempts={job and job.attempts}"
    )
    for p in workers.values():
        p.terminate()
        p.wait()
    await redis.aclose()


async def main(pairs: list[tuple[int, int]]) -> None:
    for heartbeat, sweep_s in pairs:
        await trial(heartbeat, sweep_s, retries=3, kills=1)
    heartbeat, sweep_s = pairs[0]
    await trial(heartbeat, sweep_s, retries=2, kills=3)  # killed on every start: the bound must stop it


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        asyncio.run(run_worker(int(sys.argv[2])))
    else:
        args = [int(a) for a in sys.argv[1:]] or [5, 5, 5, 5, 5, 5, 5, 2, 10, 10]
        asyncio.run(main(list(zip(args[::2], args[1::2], strict=True))))
