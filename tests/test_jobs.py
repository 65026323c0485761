"""The job queue under the answers: keys make one job, a killed worker's answer is answered by another
(once), replicas and retries make one answer, schedules fire once per tick, and no secret reaches Redis.

Workers run as real processes (`python -m bot worker`) where a test kills one; elsewhere in this
process, on a real redis-server and on the embedded fakeredis.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest
import redis.asyncio as redis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from saq import Status

from bot.app import SERVICES, Role, create_app
from bot.jobs.queue import JobQueue
from bot.jobs.worker import JobWorker, RunningJob, Schedule
from bot.state import keys, open_redis
from tests.fake_slack import FakeSlack
from tests.redis_server import redis_server
from tests.test_slack import SAMPLE, SEED, SEED_HEADLINE, SIGNING_SECRET, event, eventually, post_json, settings

ROOT = Path(__file__).resolve().parent.parent
LEAKED_PASTE = SAMPLE["secret_value_pasted"].text
SECRET = next(word for word in LEAKED_PASTE.split() if "Q~" in word)


@contextmanager
def worker_process(redis_url: str, fake: FakeSlack, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`secretbot worker` in its own process, as a deployment runs it."""
    env = os.environ | {
        "REDIS_URL": redis_url,
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake.url("/api/"),
        "SECRETBOT_SNAPSHOT": "sample",
        "SECRETBOT_LOG_LEVEL": "info",
    }
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "worker", "--concurrency", "4"], cwd=ROOT, env=env, stderr=sink, stdout=sink
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


@asynccontextmanager
async def running(app: web.Application) -> AsyncIterator[web.Application]:
    """An app without a listener (a worker alone), started and stopped like the server does."""
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        yield app
    finally:
        await runner.cleanup()


async def wait_for_log(log: Path, text: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while text not in (logged := await asyncio.to_thread(log.read_text, errors="replace")):
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} never logged:\n{logged[-2000:]}")
        await asyncio.sleep(0.1)


# --- a worker killed in the middle of an answer ----------------------------------------------------


async def test_a_worker_killed_mid_answer_is_replaced_and_the_answer_is_posted_once(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    fake_slack.hold("chat.update")  # the first worker's card never reaches Slack: it is killed first
    log = tmp_path / "workers.log"
    with redis_server() as server:
        web_tier = create_app(settings(fake_slack, redis_url=server.url), role=Role.WEB)
        async with TestClient(TestServer(web_tier)) as client:
            with worker_process(server.url, fake_slack, log) as first:
                await wait_for_log(log, "worker running")
                assert await post_json(client, event("message", SEED, event_id="EvKilled")) == 200
                await eventually(lambda: bool(fake_slack.called("chat.update")), 30)  # mid-answer, held
                with worker_process(server.url, fake_slack, log) as second:
                    first.send_signal(signal.SIGKILL)
                    first.wait()
                    # The sweep gives the job up once its heartbeat stops (keys.JOB_HEARTBEAT), then
                    # the second worker runs it again.
                    await eventually(lambda: bool(fake_slack.delivered("chat.update")), 60)
                    await asyncio.sleep(1.0)  # room for a duplicate, if there were one
                    assert second.poll() is None
                    fake_slack.drop()  # the dead worker's call was never acted on
    [placeholder] = fake_slack.called("chat.postMessage")  # posted once: the retry remembered it
    [answer] = fake_slack.delivered("chat.update")
    assert len(fake_slack.called("chat.update")) == 2  # the dead worker's, never answered, and this one
    assert answer["ts"] == "1700000000.000001" and placeholder["thread_ts"] == "1699999999.000100"
    assert SEED_HEADLINE in answer["text"]


async def test_sigterm_lets_a_running_answer_finish(fake_slack: FakeSlack, tmp_path: Path) -> None:
    fake_slack.hold("chat.update")
    log = tmp_path / "worker.log"
    with redis_server() as server:
        web_tier = create_app(settings(fake_slack, redis_url=server.url), role=Role.WEB)
        async with TestClient(TestServer(web_tier)) as client:
            with worker_process(server.url, fake_slack, log) as worker:
                await wait_for_log(log, "worker running")
                assert os.getpriority(os.PRIO_PROCESS, worker.pid) == os.getpriority(os.PRIO_PROCESS, 0) + 10
                await post_json(client, event("message", SEED, event_id="EvTerm"))
                await eventually(lambda: bool(fake_slack.called("chat.update")), 30)
                worker.send_signal(signal.SIGTERM)
                await wait_for_log(log, "worker stopping")
                fake_slack.release()  # Slack answers while the worker is shutting down
                code = await asyncio.to_thread(worker.wait, 30)
    assert code == 0
    assert len(fake_slack.delivered("chat.update")) == 1


# --- replicas and retries --------------------------------------------------------------------------


async def test_two_web_replicas_and_two_workers_answer_one_event_once(fake_slack: FakeSlack) -> None:
    with redis_server() as server:
        shared = settings(fake_slack, redis_url=server.url)
        async with (
            TestClient(TestServer(create_app(shared, role=Role.WEB))) as one,
            TestClient(TestServer(create_app(shared, role=Role.WEB))) as two,
            running(create_app(shared, role=Role.WORKER)),
            running(create_app(shared, role=Role.WORKER)),
        ):
            body = event("message", SEED, event_id="EvReplicas")
            # Slack delivers, times out, and retries on whichever replica its balancer picks.
            statuses = await asyncio.gather(post_json(one, body), post_json(two, body, retry=1))
            assert statuses == [200, 200]
            await eventually(lambda: bool(fake_slack.called("chat.update")))
            assert await post_json(one, body, retry=2) == 200  # a late retry, after the answer
            await asyncio.sleep(1.0)
    assert len(fake_slack.called("chat.postMessage")) == 1
    assert len(fake_slack.called("chat.update")) == 1


# --- the queue itself, on the embedded fakeredis and a real redis-server ---------------------------


@pytest.fixture(params=["embedded", "redis-server"])
def redis_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "embedded":
        yield None
        return
    with redis_server() as server:
        yield server.url


async def test_a_key_makes_one_job_while_it_waits_or_runs(redis_url: str | None) -> None:
    ran: list[int] = []
    gate = asyncio.Event()

    async def work(_job: RunningJob, *, n: int) -> None:
        ran.append(n)
        await gate.wait()

    async with open_redis(redis_url) as connections:
        queue = JobQueue.on(connections)
        assert await queue.enqueue("work", key="k", n=1) is True
        assert await queue.enqueue("work", key="k", n=2) is False  # queued: the same key is one job
        worker = JobWorker(queue, {"work": work}, concurrency=2)
        task = asyncio.create_task(worker.run())
        await eventually(lambda: ran == [1])
        assert await queue.enqueue("work", key="k", n=3) is False  # running: still one job
        gate.set()
        await until_complete(queue, "k")
        assert await queue.enqueue("work", key="k", n=4) is True  # done: a new question is a new job
        await eventually(lambda: ran == [1, 4])
        await worker.stop()
        await task
        await queue.close()


async def test_a_worker_beside_the_web_tier_takes_fewer_jobs_while_the_loop_runs_late(redis_url: str | None) -> None:
    running: list[int] = []
    most_at_once = 0

    async def work(_job: RunningJob, *, n: int) -> None:
        nonlocal most_at_once
        running.append(n)
        most_at_once = max(most_at_once, len(running))
        await asyncio.sleep(0.3)
        running.remove(n)

    async def hog() -> None:  # the web tier, busy: every loop trip takes 20 ms
        while True:
            time.sleep(0.02)  # noqa: ASYNC251 (blocking the loop is the point: a busy web tier)
            await asyncio.sleep(0)

    async with open_redis(redis_url) as connections:
        queue = JobQueue.on(connections)
        for n in range(12):
            assert await queue.enqueue("work", key=f"paced-{n}", n=n)
        busy = asyncio.create_task(hog())
        worker = JobWorker(queue, {"work": work}, concurrency=8, beside_web=True)
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(2.0)
        busy.cancel()
        assert 1 <= most_at_once <= 2  # without the pace all 8 slots would have taken a job at once
        for n in range(12):
            await until_complete(queue, f"paced-{n}")  # the queue drains once the loop keeps time again
        await worker.stop()
        await task
        await queue.close()


async def until_complete(queue: JobQueue, key: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while (job := await queue.saq.job(key)) is None or job.status != Status.COMPLETE:
        if time.monotonic() > deadline:
            raise AssertionError(f"job {key} did not complete")
        await asyncio.sleep(0.05)


async def test_a_failing_job_is_tried_a_bounded_number_of_times(redis_url: str | None) -> None:
    attempts: list[bool] = []

    async def broken(job: RunningJob) -> None:
        attempts.append(job.is_last_attempt)
        raise RuntimeError("always")

    async with open_redis(redis_url) as connections:
        queue = JobQueue.on(connections)
        worker = JobWorker(queue, {"broken": broken})
        task = asyncio.create_task(worker.run())
        await queue.enqueue("broken", key="b")
        await eventually(lambda: len(attempts) == keys.JOB_ATTEMPTS)
        await asyncio.sleep(0.5)
        await worker.stop()
        await task
        await queue.close()
    assert attempts == [False] * (keys.JOB_ATTEMPTS - 1) + [True]


async def test_a_schedule_fires_once_per_tick_across_three_workers(redis_url: str | None) -> None:
    ticks: list[float] = []

    async def tick(_job: RunningJob) -> None:
        ticks.append(time.time())

    async with open_redis(redis_url) as connections:
        queues = [JobQueue.on(connections) for _ in range(3)]
        workers = [JobWorker(q, {}, schedules=[Schedule("tick", "* * * * * *", tick)]) for q in queues]
        tasks = [asyncio.create_task(w.run()) for w in workers]
        await asyncio.sleep(4.5)
        for worker in workers:
            await worker.stop()
        await asyncio.gather(*tasks)
        for queue in queues:
            await queue.close()
    seconds = [int(t) for t in ticks]
    assert len(seconds) >= 2  # (a tick is queued once the previous one is done, so some may be skipped)
    assert len(seconds) == len(set(seconds))  # every tick ran once, not once per worker


# --- a pasted secret never reaches Redis -----------------------------------------------------------


async def every_value(client: redis.Redis) -> list[bytes]:
    """Every key and every value in the database, whatever the type."""
    found: list[bytes] = []
    async for key in client.scan_iter(count=500):
        found.append(key)
        kind = (await client.type(key)).decode()
        if kind == "string":
            found.append(await client.get(key) or b"")
        elif kind == "hash":
            found.extend(b for pair in (await client.hgetall(key)).items() for b in pair)
        elif kind == "list":
            found.extend(await client.lrange(key, 0, -1))
        elif kind == "set":
            found.extend(await client.smembers(key))
        elif kind == "zset":
            found.extend(await client.zrange(key, 0, -1))
    return found


async def test_a_pasted_secret_is_nowhere_in_redis_after_the_answer(
    fake_slack: FakeSlack, redis_url: str | None
) -> None:
    async with TestClient(TestServer(create_app(settings(fake_slack, redis_url=redis_url)))) as client:
        await post_json(client, event("message", LEAKED_PASTE, event_id="EvLeak"))
        await eventually(lambda: bool(fake_slack.called("chat.update")))
        await asyncio.sleep(0.3)  # the job's record is written when it finishes
        values = await every_value(client.app[SERVICES].jobs.saq.redis)
    assert any(b"answer:slack:EvLeak" in value for value in values)  # the job is there to look at
    assert not any(SECRET.encode() in value or SECRET[6:].encode() in value for value in values)
