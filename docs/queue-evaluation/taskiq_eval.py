"""taskiq 0.13 + taskiq-redis 1.2 (RedisStreamBroker, acknowledged streams) against the same criteria.

REDIS_URL=redis://127.0.0.1:6411/0 python taskiq_eval.py compat|latency|kill|idempotent|cron
"""

import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
import time

import fakeredis
import redis.asyncio as aioredis
from taskiq import Context, TaskiqDepends, TaskiqScheduler
from taskiq.api import run_receiver_task, run_scheduler_task
from taskiq.schedule_sources import LabelScheduleSource
from taskiq_redis import RedisStreamBroker

URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6411/0")
IDLE_MS = int(os.environ.get("EVAL_IDLE_MS", "5000"))
broker = RedisStreamBroker(
    URL, queue_name="eval", idle_timeout=IDLE_MS, xread_block=1000, unacknowledged_lock_timeout=5
)
record = aioredis.from_url(URL)


@broker.task(task_name="answer")
async def answer(hold: float, sent: float = 0.0, context: Context = TaskiqDepends()) -> None:
    await record.rpush(
        "eval:starts",
        json.dumps(
            {
                "pid": os.getpid(),
                "t": time.time(),
                "lag": time.time() - sent,
                "id": context.message.task_id,
                "hold": hold,
            }
        ),
    )
    await asyncio.sleep(hold)


@broker.task(task_name="housekeeping", schedule=[{"interval": 2}])
async def housekeeping() -> None:
    await record.rpush("eval:ticks", json.dumps({"pid": os.getpid(), "t": time.time()}))


def spawn(role: str, n: int) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen([sys.executable, __file__, role], stderr=open(os.environ.get("EVAL_LOG", os.devnull), "a"))
        for _ in range(n)
    ]


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
        p.wait()


async def starts() -> list[dict]:
    return [json.loads(s) for s in await record.lrange("eval:starts", 0, -1)]


async def compat() -> None:
    # 1: the receiver is a task in our own loop, beside the code that enqueues
    await record.flushdb()
    await broker.startup()
    receiver = asyncio.create_task(run_receiver_task(broker))
    await answer.kiq(hold=0.0, sent=time.time())
    while not await starts():
        await asyncio.sleep(0.01)
    cpu = time.process_time()
    await asyncio.sleep(1.0)
    print(
        f"in-loop receiver on redis-server, redis-py 8: ran; "
        f"CPU while idle 1 s: {(time.process_time() - cpu) * 1000:.0f} ms"
    )
    receiver.cancel()
    await broker.shutdown()
    # 2: fakeredis through the connection pool's connection_class (no URL-free constructor)
    server = fakeredis.FakeServer()
    fake = RedisStreamBroker(
        URL,
        queue_name="eval",
        connection_class=fakeredis.FakeAsyncRedis().connection_pool.connection_class,
        server=server,
    )
    ran: list[float] = []

    @fake.task
    async def ping() -> None:
        ran.append(time.time())

    try:
        await fake.startup()
        receiver = asyncio.create_task(run_receiver_task(fake))
        await ping.kiq()
        await asyncio.sleep(0.5)
        cpu = time.process_time()
        await asyncio.sleep(1.0)
        print(
            f"fakeredis via connection_class: ran={len(ran)}; "
            f"CPU while idle 1 s: {(time.process_time() - cpu) * 1000:.0f} ms"
        )
        receiver.cancel()
    except Exception as exc:
        print("fakeredis via connection_class: FAILS with", type(exc).__name__, str(exc)[:120])


def pct(values: list[float], p: float) -> float:
    return sorted(values)[min(len(values) - 1, int(p * len(values)))] * 1000


async def latency() -> None:
    await record.flushdb()
    await broker.startup()
    await answer.kiq(hold=0.0)
    walls, cpu0 = [], time.process_time()
    for _ in range(1000):
        t = time.perf_counter()
        await answer.kiq(hold=0.0, sent=time.time())
        walls.append(time.perf_counter() - t)
    cpu = (time.process_time() - cpu0) / 1000 * 1000
    print(
        f"kiq x1000 (no worker): p50 {pct(walls, 0.5):.2f} ms, p99 {pct(walls, 0.99):.2f} ms wall; "
        f"{cpu:.2f} ms CPU each"
    )
    await record.flushdb()
    await broker.shutdown()
    workers = spawn("--worker", 1)
    await asyncio.sleep(3)
    await broker.startup()
    for _ in range(200):
        await answer.kiq(hold=0.0, sent=time.time())
        await asyncio.sleep(0.01)
    while len(await starts()) < 200:
        await asyncio.sleep(0.1)
    lags = [s["lag"] for s in await starts()]
    print(
        f"kiq -> start (worker in another process, 200 jobs at 100/s): "
        f"p50 {pct(lags, 0.5):.2f} ms, p99 {pct(lags, 0.99):.2f} ms"
    )
    stop(workers)


async def kill() -> None:
    for trickle in (False, True):
        await record.flushdb()
        workers = {p.pid: p for p in spawn("--worker", 6)}
        await asyncio.sleep(3)
        await broker.startup()
        await answer.kiq(hold=3.0)
        seen, killed_at, kills, recoveries = 0, None, 0, []
        end = time.monotonic() + 40
        while time.monotonic() < end:
            if trickle:
                await answer.kiq(
                    hold=0.0, sent=time.time()
                )  # other traffic: the reclaim runs only after a read that returned messages
            for s in (await starts())[seen:]:
                seen += 1
                if s["pid"] not in workers or s["hold"] != 3.0:
                    continue
                if killed_at is not None:
                    recoveries.append(round(s["t"] - killed_at, 1))
                    killed_at = None
                if kills < 4:
                    workers.pop(s["pid"]).send_signal(signal.SIGKILL)
                    killed_at, kills = time.time(), kills + 1
            await asyncio.sleep(0.5)
        long_runs = sum(1 for s in await starts() if s["hold"] == 3.0)
        print(
            f"idle_timeout={IDLE_MS} ms, other traffic={trickle}: killed on every start (4 kills); "
            f"starts of the killed job={long_runs}, recovery after each kill={recoveries} s; "
            f"still pending={(await record.xpending('eval', 'taskiq'))['pending']}"
        )
        stop(list(workers.values()))
        await broker.shutdown()


async def idempotent() -> None:
    await record.flushdb()
    await broker.startup()
    for _ in range(3):
        await answer.kicker().with_task_id("msg-1:check").kiq(hold=0.0)
    workers = spawn("--worker", 1)
    await asyncio.sleep(3)
    print(
        f"3 kiq with task_id 'msg-1:check' while queued: "
        f"stream length {await record.xlen('eval')}, runs {len(await starts())}"
    )
    stop(workers)


async def cron() -> None:
    await record.flushdb()
    procs = spawn("--worker", 1) + spawn("--scheduler", 3)
    await asyncio.sleep(21)
    stop(procs)
    ticks = [json.loads(s) for s in await record.lrange("eval:ticks", 0, -1)]
    per_2s = collections.Counter(round(t["t"] / 2) for t in ticks)
    print(
        f"3 scheduler processes, interval 2 s, 21 s: {len(ticks)} runs; "
        f"runs per tick: {sorted(collections.Counter(per_2s.values()).items())}"
    )


async def worker() -> None:
    await broker.startup()
    await run_receiver_task(broker)


async def scheduler() -> None:
    await run_scheduler_task(TaskiqScheduler(broker, [LabelScheduleSource(broker)]), run_startup=True)


if __name__ == "__main__":
    modes = {
        "compat": compat,
        "latency": latency,
        "kill": kill,
        "idempotent": idempotent,
        "cron": cron,
        "--worker": worker,
        "--scheduler": scheduler,
    }
    asyncio.run(modes[sys.argv[1]]())
