"""The job queue: SAQ on the bot's Redis (why SAQ: docs/decisions.md).

The web tier enqueues; workers (`bot.jobs.worker`) run. A job's key makes enqueueing idempotent: the
same key while that job is queued or running enqueues nothing, so a Slack retry, a double click or
two replicas receiving one delivery make one job.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

from redis.exceptions import RedisError
from saq import Job, Status
from saq.queue.redis import RedisQueue
from saq.utils import now

from bot.domain import StateUnavailable
from bot.jobs.pipelined import PipelinedQueue
from bot.state import RedisConnections, keys
from bot.state.redact import error_types, redact

log = logging.getLogger(__name__)


# A job seen in the active list while its record still says QUEUED is given up by the sweep only
# when it was already seen so at least this long before: see `SweepSafeQueue`.
TAKEN_GRACE_SECONDS = 3.0
_FORGET_SIGHTINGS_SECONDS = 600.0
_SWEEPING: ContextVar[bool] = ContextVar("sweeping", default=False)


class SweepSafeQueue(PipelinedQueue):
    """SAQ's Redis queue, without its double runs.

    A worker takes a job by moving it to the active list and only then marks its record ACTIVE. SAQ's
    sweep gives up any job in the active list whose record is not ACTIVE, so a sweep that runs
    between those two steps aborts a job that has just started and queues it again (reported
    upstream as saq#277): at a steady rate of answers that is a duplicate answer every few sweeps.
    Here such a job is judged like a running one on its first sighting, and given up only when it
    still sits there unmarked on a later sweep: its worker died in between.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sightings: dict[str, float] = {}  # job key -> when a sweep first saw it taken, unmarked

    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        moment = time.monotonic()
        self._sightings = {k: t for k, t in self._sightings.items() if moment - t < _FORGET_SIGHTINGS_SECONDS}
        token = _SWEEPING.set(True)
        try:
            return await super().sweep(lock, abort)
        finally:
            _SWEEPING.reset(token)

    async def notify(self, job: Job) -> None:
        # SAQ publishes every change of a job for callers that wait on it (Queue.apply, Job.refresh
        # with until_complete). Nothing here waits that way, so the publish would be a round trip per
        # update that nobody hears: three per answer.
        return None

    def deserialize(
        self, payload: dict[str, Any] | str | bytes | None, status: Status | str | None = None
    ) -> Job | None:
        job = super().deserialize(payload, status)
        if job is not None and _SWEEPING.get() and job.status is Status.QUEUED:
            first = self._sightings.setdefault(job.key, time.monotonic())
            if time.monotonic() - first < TAKEN_GRACE_SECONDS:
                job.status, job.touched = Status.ACTIVE, now()  # just taken: alive until a later sweep
                job.started = job.started or job.touched
        return job


class EmbeddedRedisQueue(SweepSafeQueue):
    """The queue on the embedded fakeredis, which answers SAQ's BLMOVE on an empty list at once instead
    of waiting (fakeredis 2.41): every idle worker slot would send it again in a loop, hundreds of times
    a second, taking CPU from the acks on the same event loop. Its BLPOP waits, so a worker takes a job
    in two steps. (This also spares SAQ's INFO call for the server version, which fakeredis lacks.)"""

    async def dequeue(self, timeout: float = 0.0, poll_interval: float = 0.0) -> Job | None:  # noqa: ASYNC109
        # Taking the job and adding it to the active list are not one atomic step here; that matters only
        # between processes, and the embedded store has one.
        popped = await self.redis.blpop([self._queued], timeout)
        if popped is None:
            return None
        job_id = popped[1]
        await self.redis.rpush(self._active, job_id)
        return await self._get_job_by_id(job_id)


class _Patience:
    """A worker's view of the queue: while Redis does not answer, the worker's loops (waiting for
    work, schedules, the sweep, its own status) wait for it with one warning per outage, instead of
    a traceback per loop per second. Jobs stay in Redis; nothing is lost."""

    _down: bool = False

    def _unreachable(self, error: BaseException) -> None:
        if not self._down:
            self._down = True
            log.warning("job queue unreachable (%s): the worker waits for Redis", error_types(error))

    def _reachable(self) -> None:
        if self._down:
            self._down = False
            log.info("job queue reachable again")


def _patient(base: type[SweepSafeQueue]) -> type[SweepSafeQueue]:
    class PatientQueue(_Patience, base):  # type: ignore[valid-type,misc]
        async def dequeue(self, timeout: float = 0.0, poll_interval: float = 0.0) -> Job | None:  # noqa: ASYNC109 (SAQ's)
            try:
                job: Job | None = await super().dequeue(timeout, poll_interval)
            except (RedisError, OSError) as error:
                self._unreachable(error)
                await asyncio.sleep(max(timeout, 1.0))
                return None
            self._reachable()
            return job

        async def schedule(self, lock: int = 1) -> list[str]:
            try:
                return list(await super().schedule(lock))
            except (RedisError, OSError) as error:
                self._unreachable(error)
                return []

        async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
            try:
                return list(await super().sweep(lock, abort))
            except (RedisError, OSError) as error:
                self._unreachable(error)
                return []

        async def enqueue(self, job_or_func: Any, **kwargs: Any) -> Job | None:  # the schedules' own ticks
            try:
                job: Job | None = await super().enqueue(job_or_func, **kwargs)
                return job
            except (RedisError, OSError) as error:
                self._unreachable(error)
                return None

        async def worker_info(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return await super().worker_info(*args, **kwargs)
            except (RedisError, OSError) as error:
                self._unreachable(error)
                return None

    return PatientQueue


class JobQueue:
    def __init__(self, saq: SweepSafeQueue, *, shared: bool) -> None:
        self.saq = saq
        self.shared = shared  # False on the embedded fakeredis: only this process's worker can run jobs

    @classmethod
    def on(cls, connections: RedisConnections) -> JobQueue:
        kind = SweepSafeQueue if connections.shared else EmbeddedRedisQueue
        return cls(kind(connections.queue, name=keys.QUEUE_NAME), shared=connections.shared)

    def for_worker(self) -> SweepSafeQueue:
        """The same queue for a worker's loops, which wait out a Redis outage quietly."""
        return _patient(type(self.saq))(self.saq.redis, name=self.saq.name)

    async def enqueue(
        self,
        function: str,
        *,
        key: str,
        delay: float = 0.0,
        run_limit: timedelta = keys.JOB_TIMEOUT,
        **payload: Any,
    ) -> bool:
        """Queue `function(**payload)` under `key`, to start `delay` seconds from now (at the earliest):
        True when queued, False when a job with that key is already queued or running. Raises
        StateUnavailable when Redis does not answer. A run longer than `run_limit` is cancelled and tried again.

        `payload` must be plain JSON and hold no secret value (it is stored in Redis)."""
        job = Job(
            function=function,
            kwargs=payload,
            key=key,
            retries=keys.JOB_ATTEMPTS,
            heartbeat=int(keys.JOB_HEARTBEAT.total_seconds()),
            timeout=int(run_limit.total_seconds()),
            ttl=int(keys.JOB_RECORD_TTL.total_seconds()),
            scheduled=math.ceil(time.time() + delay) if delay > 0 else 0,  # SAQ counts whole seconds
        )
        try:
            return await self.saq.enqueue(job) is not None
        except (RedisError, OSError) as error:
            raise StateUnavailable(f"job queue unavailable: {redact(error)}", error_types(error)) from None

    async def depth(self) -> int | None:
        """Jobs waiting to start, or None when Redis does not answer."""
        try:
            return int(await self.saq.count("queued"))
        except (RedisError, OSError):
            return None

    async def ping(self) -> bool:
        try:
            return bool(await self.saq.redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        await close_listener(self.saq)


async def close_listener(queue: RedisQueue) -> None:
    """The Redis client belongs to bot.state's open_redis; only the queue's pub/sub listener is ours."""
    try:
        await queue._pubsub.close()
    except (RedisError, OSError) as error:  # a Redis that is gone has nothing left to unsubscribe
        log.debug("queue listener not closed cleanly error=%s", type(error).__name__)
