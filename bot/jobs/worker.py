"""Workers: run the queue's jobs, inside the web process or alone (`secretbot worker`).

A running job touches its record every few seconds; when its worker is killed the touches stop, a
sweep on another worker gives the job up and it runs again (up to keys.JOB_ATTEMPTS). So every job
function must be safe to run again: it checks where it stands (e.g. the placeholder it already
posted, kept with `RunningJob.remember`) before acting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from saq import CronJob, Job, Status, Worker
from saq.types import PartialTimersDict

from bot.jobs.loop_lag import LoopPace
from bot.jobs.queue import JobQueue, close_listener
from bot.metrics import Metrics
from bot.state import keys

log = logging.getLogger(__name__)

# On SIGTERM running jobs get this long to finish; the rest are cancelled and handed back to the
# queue for another worker (Kubernetes kills a pod 30 s after SIGTERM by default).
SHUTDOWN_GRACE_SECONDS = 25
# A worker waits this long for work per call, so it notices a stop request quickly.
DEQUEUE_WAIT_SECONDS = 1.0


class RunningJob:
    """What a job function sees of its job: whether another attempt follows a failure, and notes
    that survive a crash. This base runs a job once, in this process, with notes in memory: how the
    web tier answers when the queue's Redis is down, so that nothing is lost."""

    def __init__(self) -> None:
        self._notes: dict[str, Any] = {}

    @property
    def is_last_attempt(self) -> bool:
        return True

    def note(self, name: str) -> Any:
        return self._notes.get(name)

    async def remember(self, name: str, value: Any) -> None:
        self._notes[name] = value


class _QueuedJob(RunningJob):
    def __init__(self, job: Job) -> None:
        super().__init__()
        self._job = job

    @property
    def is_last_attempt(self) -> bool:
        return self._job.attempts >= self._job.retries

    def note(self, name: str) -> Any:
        return (self._job.meta or {}).get(name)

    async def remember(self, name: str, value: Any) -> None:
        """Keep `value` (plain JSON, no secret) in the job's record, for a run after a crash."""
        self._job.meta[name] = value
        # With a status given, SAQ writes the record without reading it back first: one round trip.
        await self._job.update(status=Status.ACTIVE)


JobFunction = Callable[..., Awaitable[None]]  # called as function(RunningJob, **payload)


@dataclass(frozen=True)
class Schedule:
    """A job that runs on a cron schedule, once per tick across every worker of the queue."""

    name: str
    cron: str  # five fields, UTC
    function: JobFunction
    timeout: timedelta = keys.JOB_TIMEOUT  # beyond it the run is cancelled and tried again


class JobFailed(Exception):
    """A job function raised: only the error's type is kept, since messages may quote chat text."""


@dataclass
class JobTable:
    """Every job function and schedule a worker of this bot runs; each platform adds its own."""

    functions: dict[str, JobFunction] = field(default_factory=dict)
    schedules: list[Schedule] = field(default_factory=list)


class JobWorker:
    def __init__(
        self,
        queue: JobQueue,
        functions: Mapping[str, JobFunction],
        *,
        schedules: Sequence[Schedule] = (),
        concurrency: int = 16,
        metrics: Metrics | None = None,
        in_process: bool = True,
        beside_web: bool = False,
    ) -> None:
        """`in_process`: the web server owns the signals. `beside_web`: the web tier shares this event
        loop, so a slot takes a job only while the loop keeps time (bot.jobs.loop_lag)."""
        self._metrics = metrics or Metrics()
        crons = [
            CronJob(
                _wrap(s.name, s.function, self._metrics),
                cron=s.cron,
                timeout=int(s.timeout.total_seconds()),
                heartbeat=int(keys.JOB_HEARTBEAT.total_seconds()),
                retries=keys.JOB_ATTEMPTS,
            )
            for s in schedules
        ]
        self._queue = queue.for_worker()
        self._pace = LoopPace(concurrency) if beside_web else None
        self._saq = (_PacedWorker if self._pace else Worker)(
            self._queue,
            [(name, _wrap(name, fn, self._metrics)) for name, fn in functions.items()],
            concurrency=concurrency,
            cron_jobs=crons,
            timers=PartialTimersDict(
                schedule=1, worker_info=10, abort=1, sweep=int(keys.JOB_SWEEP_EVERY.total_seconds())
            ),
            dequeue_timeout=DEQUEUE_WAIT_SECONDS,
            shutdown_grace_period_s=SHUTDOWN_GRACE_SECONDS,
        )
        if in_process:
            self._saq.SIGNALS = []  # the web server owns SIGTERM and stops the worker itself
        if isinstance(self._saq, _PacedWorker) and self._pace:
            self._saq.pace = self._pace

    async def run(self) -> None:
        """Work until `stop()` (or, alone, until SIGTERM/SIGINT)."""
        if self._pace:
            self._pace.start()
        try:
            await self._saq.start()
        finally:
            if self._pace:
                await self._pace.stop()

    async def stop(self) -> None:
        """Stop taking jobs; running ones get SHUTDOWN_GRACE_SECONDS, then go back to the queue."""
        self._saq.event.set()
        # SAQ's upkeep loops (schedule, sweep, worker info) sleep up to their period before they see
        # the stop; they hold no job, so they are cancelled rather than waited for.
        for task in list(self._saq.tasks):
            if task.get_name() != "process":
                task.cancel()
        await self._saq.stop()
        await close_listener(self._queue)


class _PacedWorker(Worker[Any]):
    """SAQ's worker whose slots look for a job only when the loop's pace allows (bot.jobs.loop_lag).
    Each call of `process` is one slot taking at most one job, so the count cannot leak."""

    pace: LoopPace

    async def process(self) -> bool:
        await self.pace.take()
        try:
            return await super().process()
        finally:
            self.pace.give_back()


def _wrap(name: str, function: JobFunction, metrics: Metrics) -> Callable[..., Awaitable[None]]:
    async def run(ctx: dict[str, Any], **payload: Any) -> None:
        job: Job = ctx["job"]
        started = time.time()
        if job.attempts > 1:
            metrics.job_retries.labels(name).inc()
        metrics.job_wait_seconds.labels(name).observe(max(0.0, started - job.queued / 1000))
        beat = asyncio.create_task(_heartbeat(job))
        outcome = "ok"
        try:
            await function(_QueuedJob(job), **payload)
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except Exception as error:
            outcome = "failed"
            log.error("job failed function=%s attempt=%d error=%s", name, job.attempts, type(error).__name__)
            raise JobFailed(type(error).__name__) from None
        finally:
            beat.cancel()
            metrics.jobs.labels(name, outcome).inc()
            metrics.job_run_seconds.labels(name).observe(time.time() - started)

    run.__qualname__ = run.__name__ = name  # SAQ names jobs (and cron keys) by the function's qualname
    return run


async def _heartbeat(job: Job) -> None:
    every = keys.JOB_HEARTBEAT_EVERY.total_seconds()
    while True:
        await asyncio.sleep(every)
        try:
            await job.update()  # touches the record: the sweep sees this worker is alive
        except Exception as error:  # a missed beat is not fatal; three in a row let another worker retry
            log.warning("job heartbeat failed error=%s", type(error).__name__)
