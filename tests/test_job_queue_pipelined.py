"""Enqueues made together share one Redis pipeline (bot.jobs.pipelined): each still gets its own
answer, a job key still makes one job, the job is stored as SAQ stores it, and a lost script or a
Redis outage is handled as with SAQ's one call per job. On a real redis-server and the embedded store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from bot.domain import StateUnavailable
from bot.jobs.queue import JobQueue
from bot.jobs.worker import JobWorker, RunningJob
from bot.state import open_redis
from tests.redis_server import redis_server


@asynccontextmanager
async def queue_on(where: str) -> AsyncIterator[JobQueue]:
    if where == "embedded":
        async with open_redis(None) as connections:
            queue = JobQueue.on(connections)
            yield queue
            await queue.close()
        return
    with redis_server() as server:
        async with open_redis(server.url) as connections:
            queue = JobQueue.on(connections)
            yield queue
            await queue.close()


STORES = ["redis-server", "embedded"]


@pytest.mark.parametrize("where", STORES)
async def test_jobs_queued_at_once_each_get_their_answer_and_a_repeated_key_makes_one_job(where: str) -> None:
    async with queue_on(where) as queue:
        assert await queue.enqueue("noop", key="first")  # SAQ's own call: it makes the script
        keys = [f"k{i}" for i in range(40)] + ["twice"] * 5
        answers = await asyncio.gather(*(queue.enqueue("noop", key=key, n=i) for i, key in enumerate(keys)))
        assert answers[:40] == [True] * 40
        assert sorted(answers[40:]) == [False] * 4 + [True]
        assert await queue.depth() == 42
        assert not await queue.enqueue("noop", key="k7")  # still queued: no second job


@pytest.mark.parametrize("where", STORES)
async def test_a_job_queued_in_a_batch_is_stored_as_saq_stores_one(where: str) -> None:
    async with queue_on(where) as queue:
        redis = queue.saq.redis
        assert await queue.enqueue("noop", key="alone", note="x")
        together = await asyncio.gather(*(queue.enqueue("noop", key=f"t{i}", note="x") for i in range(3)))
        assert together == [True] * 3
        alone = await _stored(redis, queue, "alone")
        for i in range(3):
            assert await _stored(redis, queue, f"t{i}") == alone
        queued = [_text(job_id) for job_id in await redis.lrange(queue.saq._queued, 0, -1)]
        assert [queue.saq.job_id(key) for key in ("alone", "t0", "t1", "t2")] == queued


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def _stored(redis: Any, queue: JobQueue, key: str) -> dict[str, Any]:
    """The job's record without what differs between two jobs (key, id, times), and its queue entry."""
    job_id = queue.saq.job_id(key)
    record = json.loads(await redis.get(job_id))
    for varying in ("key", "queued"):
        record.pop(varying, None)
    return {"record": record, "incomplete": await redis.zscore(queue.saq._incomplete, job_id)}


async def test_jobs_queued_together_after_redis_lost_its_scripts_are_still_queued() -> None:
    async with queue_on("redis-server") as queue:
        assert await queue.enqueue("noop", key="before")
        await queue.saq.redis.script_flush()
        answers = await asyncio.gather(*(queue.enqueue("noop", key=f"after{i}") for i in range(5)))
        assert answers == [True] * 5
        assert await queue.depth() == 6


async def test_jobs_queued_together_while_redis_is_down_each_raise_state_unavailable() -> None:
    with redis_server() as server:
        async with open_redis(server.url) as connections:
            queue = JobQueue.on(connections)
            assert await queue.enqueue("noop", key="before")
            server.stop()
            outcomes = await asyncio.gather(
                *(queue.enqueue("noop", key=f"k{i}") for i in range(5)), return_exceptions=True
            )
            assert [type(outcome) for outcome in outcomes] == [StateUnavailable] * 5
            await queue.close()


async def test_a_worker_runs_every_job_of_a_batch_once() -> None:
    ran: list[int] = []
    done = asyncio.Event()

    async def record(_job: RunningJob, n: int) -> None:
        ran.append(n)
        if len(ran) == 30:
            done.set()

    async with queue_on("redis-server") as queue:
        assert await queue.enqueue("record", key="first", n=-1)
        assert all(await asyncio.gather(*(queue.enqueue("record", key=f"k{n}", n=n) for n in range(29))))
        worker = JobWorker(queue, {"record": record}, concurrency=8)
        running = asyncio.create_task(worker.run())
        try:
            await asyncio.wait_for(done.wait(), 20)
            await asyncio.sleep(0.3)  # a job run twice would show up here
        finally:
            await worker.stop()
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
        assert sorted(ran) == list(range(-1, 29))
