"""Prometheus metrics of one app instance (its own registry, so tests can run several apps)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bot.credential_types import NewPassword, PasswordPolicy
from bot.domain import Activity, ActivityQuery, AppLookup, Diagnosis, DirectoryError, GraphMode
from bot.expiry import ScanSummary
from bot.ports import CredentialWriter, Directory

# Jobs are chat answers: most take milliseconds to a second; the tail is Graph throttling and retries.
_FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "secretbot_requests", "HTTP requests by route and status", ["route", "status"], registry=r
        )
        self.diagnoses = Counter(
            "secretbot_diagnoses", "Answers by platform and primary cause", ["platform", "cause"], registry=r
        )
        self.graph_calls = Counter(
            "secretbot_graph_calls", "Directory calls by call and outcome", ["call", "outcome"], registry=r
        )
        self.graph_seconds = Histogram("secretbot_graph_seconds", "Directory call latency", ["call"], registry=r)
        self.errors = Counter("secretbot_errors", "Failures handled without crashing, by kind", ["kind"], registry=r)
        self.jobs = Counter("secretbot_jobs", "Jobs run by function and outcome", ["function", "outcome"], registry=r)
        self.job_retries = Counter(
            "secretbot_job_retries", "Jobs run again after a failure or a lost worker", ["function"], registry=r
        )
        self.job_wait_seconds = Histogram(
            "secretbot_job_wait_seconds", "Time from enqueue to start", ["function"], registry=r, buckets=_FAST
        )
        self.job_run_seconds = Histogram(
            "secretbot_job_run_seconds", "Time from start to end", ["function"], registry=r, buckets=_FAST
        )
        self.graph_writes = Counter(
            "secretbot_graph_writes",
            "Graph writes sent, by operation (addPassword, removePassword)",
            ["operation"],
            registry=r,
        )
        self.rotations = Counter("secretbot_rotations", "Rotations ended, by outcome", ["outcome"], registry=r)
        # Approvals come within minutes to a day (SECRETBOT_APPROVAL_TTL).
        self.approval_seconds = Histogram(
            "secretbot_rotation_approval_seconds",
            "Time from a rotation request to its approval",
            registry=r,
            buckets=(30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 72 * 3600),
        )
        # Read from Redis when scraped (set by the app's /metrics handler): -1 when Redis does not answer.
        self.queue_depth = Gauge("secretbot_queue_depth", "Jobs waiting for a worker", registry=r)
        self.scan_last_success = Gauge(
            "secretbot_scan_last_success_timestamp_seconds",
            "When the last expiry scan succeeded (Unix time)",
            registry=r,
        )
        self.scan_duration = Gauge("secretbot_scan_duration_seconds", "How long the last expiry scan took", registry=r)
        self.scan_credentials = Gauge(
            "secretbot_scan_credentials",
            "Credentials in the last scan's window, by state and threshold crossed ('none': no threshold)",
            ["state", "threshold"],
            registry=r,
        )
        self.scan_failures = Counter(
            "secretbot_scan_failures", "Expiry scans that could not be done", ["reason"], registry=r
        )
        self.digests = Counter(
            "secretbot_digests",
            "Warning digests posted or updated, by platform and outcome",
            ["platform", "outcome"],
            registry=r,
        )

    def show_scan(self, summary: ScanSummary) -> None:
        """The last scan's gauges, from the summary every process reads (the scan ran anywhere)."""
        self.scan_last_success.set(summary.finished_at)
        self.scan_duration.set(summary.seconds)
        self.scan_credentials.clear()
        for state, threshold, count in summary.credentials:
            self.scan_credentials.labels(state, threshold).set(count)

    def diagnosed(self, platform: str, diagnosis: Diagnosis) -> None:
        primary = diagnosis.primary
        self.diagnoses.labels(platform, primary.cause.value if primary else "none").inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MeteredDirectory:
    """A Directory that counts and times every call of the one it wraps."""

    def __init__(self, inner: Directory, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    @property
    def mode(self) -> GraphMode:
        return self._inner.mode

    async def lookup(self, app_id: str, activity: ActivityQuery | None = None) -> AppLookup:
        started = time.perf_counter()
        try:
            result = await self._inner.lookup(app_id, activity)
        except DirectoryError:
            self._observe("lookup", "error", started)
            raise
        self._observe("lookup", "ok", started)
        return result

    async def activity(
        self,
        app_id: str,
        object_id: str | None,
        *,
        correlation_id: str | None,
        since: datetime,
        around: datetime | None = None,
        sp_object_id: str | None = None,
    ) -> Activity:
        started = time.perf_counter()
        try:
            result = await self._inner.activity(
                app_id, object_id, correlation_id=correlation_id, since=since, around=around, sp_object_id=sp_object_id
            )
        except DirectoryError:
            self._observe("activity", "error", started)
            raise
        self._observe("activity", "ok", started)
        return result

    def _observe(self, call: str, outcome: str, started: float) -> None:
        self._metrics.graph_calls.labels(call, outcome).inc()
        self._metrics.graph_seconds.labels(call).observe(time.perf_counter() - started)


class MeteredWriter:
    """A CredentialWriter that counts every write it sends (`secretbot_graph_writes_total`), whatever
    Graph answered: a write that failed was still sent."""

    def __init__(self, inner: CredentialWriter, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def add_password(self, object_id: str, display_name: str, end: datetime) -> NewPassword:
        try:
            return await self._inner.add_password(object_id, display_name, end)
        finally:
            self._metrics.graph_writes.labels("addPassword").inc()

    async def remove_password(self, object_id: str, key_id: str) -> None:
        try:
            await self._inner.remove_password(object_id, key_id)
        finally:
            self._metrics.graph_writes.labels("removePassword").inc()

    async def password_policy(self, object_id: str) -> PasswordPolicy:
        return await self._inner.password_policy(object_id)

    async def password_key_ids(self, object_id: str) -> dict[str, str | None]:
        return await self._inner.password_key_ids(object_id)

    async def application_tags(self, object_id: str) -> tuple[str, ...]:
        return await self._inner.application_tags(object_id)
