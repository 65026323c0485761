"""Criterion 5 for SAQ: a CronJob firing every second across three worker processes; counts the
runs per tick.

    REDIS_URL=redis://127.0.0.1:6411/0 python saq_cron.py [seconds]
"""

import asyncio
import collections
import json
import logging
import os
import subprocess
import sys

import redis.asyncio as aioredis
from saq import CronJob, Worker
from saq.queue.redis import RedisQueue

URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6411/0")


async def housekeeping(ctx: dict) -> None:
    job = ctx["job"]
    await job.queue.redis.rpush("eval:ticks", json.dumps({"tick": job.scheduled, "pid": os.getpid()}))


async def run_worker() -> None:
    queue = RedisQueue(aioredis.from_url(URL), name="cron")
    await queue.connect()
    # six fields: croniter reads the last one as seconds
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {os.getpid()} %(message)s")
    await Worker(queue, functions=[], cron_jobs=[CronJob(housekeeping, cron="* * * * * *")]).start()


async def main(seconds: int) -> None:
    redis = aioredis.from_url(URL)
    await redis.flushdb()
    log = open(os.environ.get("EVAL_LOG", os.devnull), "w")
    workers = [subprocess.Popen([sys.executable, __file__, "--worker"], stderr=log) for _ in range(3)]
    await asyncio.sleep(seconds)
    for w in workers:
        w.terminate()
        w.wait()
    runs = [json.loads(r) for r in await redis.lrange("eval:ticks", 0, -1)]
    per_tick = collections.Counter(r["tick"] for r in runs)
    ticks = sorted(per_tick)
    missing = [t for t in range(ticks[0], ticks[-1] + 1) if t not in per_tick] if ticks else []
    by_pid = collections.Counter(r["pid"] for r in runs)
    print(
        f"3 workers, {seconds} s, cron every second: {len(runs)} runs over {len(ticks)} ticks; "
        f"ticks run more than once: {sum(c > 1 for c in per_tick.values())}; ticks missed: {len(missing)}; "
        f"runs per worker process: {sorted(by_pid.values())}"
    )
    await redis.aclose()


if __name__ == "__main__":
    asyncio.run(run_worker() if sys.argv[1:] == ["--worker"] else main(int(sys.argv[1]) if sys.argv[1:] else 60))
