"""SAQ on a real redis-server: enqueue latency (p50/p99 of 1,000 enqueues, wall and CPU) and
enqueue -> start latency with the worker in another process.

    REDIS_URL=redis://127.0.0.1:6411/0 python saq_latency.py
"""

import asyncio
import os
import subprocess
import sys
import time

import redis.asyncio as aioredis
from saq import Worker
from saq.queue.redis import RedisQueue

URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6411/0")
N = 1000


async def stamp(ctx: dict, sent: float) -> None:
    await ctx["job"].queue.redis.rpush("eval:lag", time.time() - sent)


def pct(values: list[float], p: float) -> float:
    return sorted(values)[min(len(values) - 1, int(p * len(values)))] * 1000


async def main() -> None:
    redis = aioredis.from_url(URL)
    await redis.flushdb()
    queue = RedisQueue(redis, name="lat")
    await queue.enqueue("stamp", sent=time.time())  # warm the script cache and the pool
    await redis.flushdb()

    walls, cpu0 = [], time.process_time()
    for _ in range(N):
        t = time.perf_counter()
        await queue.enqueue("stamp", sent=time.time())
        walls.append(time.perf_counter() - t)
    cpu = (time.process_time() - cpu0) / N * 1000
    print(
        f"enqueue x{N} (no worker): p50 {pct(walls, 0.5):.2f} ms, p99 {pct(walls, 0.99):.2f} ms wall; "
        f"{cpu:.2f} ms CPU each"
    )

    await redis.flushdb()
    worker = subprocess.Popen([sys.executable, __file__, "--worker"], stderr=subprocess.DEVNULL)
    await asyncio.sleep(2.0)
    for _ in range(200):
        await queue.enqueue("stamp", sent=time.time())
        await asyncio.sleep(0.01)
    while await redis.llen("eval:lag") < 200:
        await asyncio.sleep(0.1)
    lags = [float(x) for x in await redis.lrange("eval:lag", 0, -1)]
    print(
        f"enqueue -> start (worker in another process, 200 jobs at 100/s): p50 {pct(lags, 0.5):.2f} ms, "
        f"p99 {pct(lags, 0.99):.2f} ms"
    )
    worker.terminate()
    worker.wait()
    await redis.aclose()


async def run_worker() -> None:
    queue = RedisQueue(aioredis.from_url(URL), name="lat")
    await queue.connect()
    await Worker(queue, functions=[stamp], concurrency=10).start()


if __name__ == "__main__":
    asyncio.run(run_worker() if sys.argv[1:] == ["--worker"] else main())
