"""Criterion 4 for SAQ: enqueueing the same job key while the job is queued, while it runs, and
after it finished.

    REDIS_URL=redis://127.0.0.1:6411/0 python saq_idempotent.py
"""

import asyncio
import os

import redis.asyncio as aioredis
from saq import Worker
from saq.queue.redis import RedisQueue

URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6411/0")
RUNS = "eval:runs"


async def click(ctx: dict, n: int) -> None:
    await ctx["job"].queue.redis.rpush(RUNS, n)
    await asyncio.sleep(1.0)


async def main() -> None:
    redis = aioredis.from_url(URL)
    await redis.flushdb()
    queue = RedisQueue(redis, name="idem")

    first = await queue.enqueue("click", key="msg-1:check", n=1)
    second = await queue.enqueue("click", key="msg-1:check", n=2)
    print("while queued: first enqueue ->", first is not None, "| second ->", second)

    worker = Worker(queue, functions=[click], concurrency=4)
    task = asyncio.create_task(worker.start())
    await asyncio.sleep(0.5)  # the job is running now
    third = await queue.enqueue("click", key="msg-1:check", n=3)
    print("while running: enqueue ->", third, "| status:", (await queue.job("msg-1:check")).status.value)

    burst = await asyncio.gather(*(queue.enqueue("click", key="msg-2:check", n=100 + i) for i in range(50)))
    print("50 concurrent enqueues of one key ->", sum(j is not None for j in burst), "job(s)")

    await asyncio.sleep(2.0)
    print(
        "after it finished: enqueue ->",
        (await queue.enqueue("click", key="msg-1:check", n=4)) is not None,
        "(a finished key is free again; the job record is kept for its ttl, 600 s by default)",
    )
    await asyncio.sleep(1.5)
    print("runs recorded:", [int(r) for r in await redis.lrange(RUNS, 0, -1)])
    await worker.stop()
    task.cancel()
    await redis.aclose()


asyncio.run(main())
