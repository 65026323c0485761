"""redis-py 8 gives every connection a 5 s socket timeout (redis-py 7: none). SAQ's default
dequeue_timeout=0 blocks BLMOVE forever, so an idle worker's BLMOVE fails client-side every 5 s; a
job the server moves at that moment lands in the active list with nobody running it, until a sweep
(60 s by default) finds it. This counts such late starts, with SAQ's default and with a server-side
dequeue timeout shorter than the socket timeout.

    REDIS_URL=redis://127.0.0.1:6411/0 python saq_socket_timeout.py [seconds]
"""

import asyncio
import os
import subprocess
import sys
import time

import redis
import redis.asyncio as aioredis
from saq import Worker
from saq.queue.redis import RedisQueue

URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6411/0")


async def stamp(ctx: dict, sent: float) -> None:
    await ctx["job"].queue.redis.rpush("eval:lag", time.time() - sent)


async def run_worker(dequeue_timeout: float) -> None:
    queue = RedisQueue(aioredis.from_url(URL), name="sock")
    await queue.connect()
    await Worker(queue, functions=[stamp], concurrency=10, dequeue_timeout=dequeue_timeout).start()


async def trial(seconds: int, dequeue_timeout: float) -> None:
    redis_client = aioredis.from_url(URL)
    await redis_client.flushdb()
    cmd = [sys.executable, __file__, "--worker", str(dequeue_timeout)]
    workers = [subprocess.Popen(cmd, stderr=subprocess.DEVNULL) for _ in range(3)]
    await asyncio.sleep(2)
    queue = RedisQueue(redis_client, name="sock")
    n, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:  # a slow trickle: most BLMOVEs sit idle until they time out
        await queue.enqueue("stamp", sent=time.time())
        n += 1
        await asyncio.sleep(0.5)
    await asyncio.sleep(70)  # past one default sweep (60 s), which re-runs the stranded ones
    for w in workers:
        w.terminate()
        w.wait()
    lags = [float(x) for x in await redis_client.lrange("eval:lag", 0, -1)]
    late = sorted(lag for lag in lags if lag > 1.0)
    print(
        f"redis-py {redis.__version__}, dequeue_timeout={dequeue_timeout}: {n} jobs, started {len(lags)}, "
        f"started more than 1 s late: {len(late)} {[round(x) for x in late]} s"
    )
    await redis_client.aclose()


async def main(seconds: int) -> None:
    await trial(seconds, 0.0)  # SAQ's default
    await trial(seconds, 2.0)  # server-side timeout below redis-py 8's 5 s socket timeout


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        asyncio.run(run_worker(float(sys.argv[2])))
    else:
        asyncio.run(main(int(sys.argv[1]) if sys.argv[1:] else 60))
