"""The job queue on the embedded fakeredis: an idle worker waits for work instead of asking for it in a
loop (fakeredis answers BLMOVE on an empty list at once), and jobs still run in the order queued."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from saq import Status

from bot.jobs.queue import JobQueue
from bot.jobs.worker import JobWorker, RunningJob
from bot.state import open_redis

WAIT = 0.5  # seconds a dequeue on an empty queue may wait


async def test_a_dequeue_on_an_empty_embedded_queue_waits_for_its_timeout() -> None:
    async with open_redis(None) as connections:
        queue = JobQueue.on(connections)
        started = time.monotonic()
        assert await queue.saq.dequeue(timeout=WAIT) is None
        assert time.monotonic() - started >= 0.8 * WAIT  # answered at once, a worker would spin
        await queue.close()


async def test_a_job_queued_while_a_dequeue_waits_is_taken_by_it() -> None:
    async with open_redis(None) as connections:
        queue = JobQueue.on(connections)
        waiting = asyncio.create_task(queue.saq.dequeue(timeout=5))
        await asyncio.sleep(0.05)
        assert await queue.enqueue("noop", key="k1")
        job = await asyncio.wait_for(waiting, 5)
        assert job is not None and job.key == "k1"
        assert await queue.depth() == 0
        await queue.close()


async def test_jobs_are_taken_in_the_order_they_were_queued() -> None:
    async with open_redis(None) as connections:
        queue = JobQueue.on(connections)
        for key in ("first", "second", "third"):
            assert await queue.enqueue("noop", key=key)
        taken = [await queue.saq.dequeue(timeout=1) for _ in range(3)]
        assert [job.key for job in taken if job is not None] == ["first", "second", "third"]
        await queue.close()


async def test_an_idle_embedded_worker_runs_a_job_queued_later_and_finishes_it() -> None:
    ran: list[dict[str, Any]] = []
    done = asyncio.Event()

    async def record(_job: RunningJob, **payload: Any) -> None:
        ran.append(payload)
        done.set()

    async with open_redis(None) as connections:
        queue = JobQueue.on(connections)
        worker = JobWorker(queue, {"record": record}, concurrency=4)
        running = asyncio.create_task(worker.run())
        await asyncio.sleep(0.2)  # every slot waiting on the empty queue
        assert await queue.enqueue("record", key="later", n=1)
        await asyncio.wait_for(done.wait(), 5)
        for _ in range(50):  # the record is marked complete just after the function returns
            job = await queue.saq.job("later")
            if job is not None and job.status is Status.COMPLETE:
                break
            await asyncio.sleep(0.02)
        await worker.stop()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await queue.close()
    assert ran == [{"n": 1}]
    assert job is not None and job.status is Status.COMPLETE
