"""Enqueues that arrive together go to Redis together.

In a burst every Slack event is acked only once its job is queued, and SAQ queues each job with its
own call to Redis: a connection from the pool, a write, a read, a retry wrapper. That was a fifth of
the web tier's CPU per ack; the same scripts sent 100 to a pipeline cost a sixth as much each
(docs/benchmarks.md). So the enqueues made during one turn of the event loop are sent as one
pipeline at the end of it. A lone enqueue is a pipeline of one: one round trip, as before.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.exceptions import NoScriptError
from saq import Job
from saq.queue.redis import RedisQueue

# One enqueue as SAQ's script takes it (saq 0.26's `_enqueue`): its keys, then its arguments.
_Call = tuple[tuple[str, ...], tuple[Any, ...]]


class PipelinedQueue(RedisQueue):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._waiting: list[tuple[_Call, asyncio.Future[bool]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def _enqueue(self, job: Job) -> Job | None:
        if self._enqueue_script is None:  # SAQ makes its enqueue script on its first enqueue
            return await super()._enqueue(job)
        call = (self._incomplete, job.id, self._queued, job.abort_id), (self.serialize(job), job.scheduled)
        loop = asyncio.get_running_loop()
        queued: asyncio.Future[bool] = loop.create_future()
        self._waiting.append((call, queued))
        if len(self._waiting) == 1:
            loop.call_soon(self._send_soon)
        return job if await queued else None

    def _send_soon(self) -> None:
        batch, self._waiting = self._waiting, []
        task = asyncio.create_task(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[_Call, asyncio.Future[bool]]]) -> None:
        try:
            async with self._op_sem:
                answers = await self._run([call for call, _ in batch])
                lost = [i for i, answer in enumerate(answers) if isinstance(answer, NoScriptError)]
                if lost:  # Redis lost its scripts (a restart, SCRIPT FLUSH): load SAQ's again, send those again
                    await self.redis.script_load(self._script().script)
                    for i, answer in zip(lost, await self._run([batch[i][0] for i in lost]), strict=True):
                        answers[i] = answer
        except Exception as error:  # Redis down, a timeout: each caller raises it, as with SAQ's own call
            for _, queued in batch:
                if not queued.done():
                    queued.set_exception(error)
            return
        except BaseException:  # cancelled (shutdown): so are the callers
            for _, queued in batch:
                queued.cancel()
            raise
        for (_, queued), answer in zip(batch, answers, strict=True):
            if queued.done():  # its caller gave up waiting
                continue
            if isinstance(answer, Exception):
                queued.set_exception(answer)
            else:
                queued.set_result(bool(answer))

    async def _run(self, calls: list[_Call]) -> list[Any]:
        sha = self._script().sha
        async with self.redis.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(sha, len(keys), *keys, *args)
            return list(await pipe.execute(raise_on_error=False))

    def _script(self) -> Any:
        assert self._enqueue_script is not None  # batches start only after SAQ made it
        return self._enqueue_script
