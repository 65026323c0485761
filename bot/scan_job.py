"""The scheduled expiry scan (`SECRETBOT_SCAN_CRON`): sync the inventory, judge it, post the warnings.

It runs as a cron job on the queue, once per tick across replicas (bot.jobs.worker.Schedule). A scan
that cannot be done (Graph refused or down, Redis down) is tried again by the queue; only the last
attempt of a run reports it, once, to the defaults destinations, so a failing run is one message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from bot.domain import DirectoryError, GraphMode, ScannedCredential, StateUnavailable
from bot.expiry import DEFAULT_THRESHOLDS, Routes, ScanSummary, Subscription
from bot.graph.bulk import BulkReader
from bot.graph.directory import GraphDirectory
from bot.jobs.worker import RunningJob
from bot.metrics import Metrics
from bot.scan import DEFAULT_WITHIN, DuePlan, DueRun, ScanOptions, scan_due
from bot.settings import Settings
from bot.state.inventory import InventoryStore
from bot.warnings_post import Delivered, WarningDelivery

log = logging.getLogger(__name__)

SCAN = "expiry.scan"  # the schedule's name: SAQ keys its ticks by it
GLOBAL_GRAPH = "https://graph.microsoft.com"  # the beta credential activity report exists only here


@dataclass(frozen=True)
class TenantGraph:
    reader: BulkReader
    directory: GraphDirectory
    tenant: str
    global_cloud: bool  # the beta credential activity report (last use) exists only there
    # A snapshot's own inventory (in memory, one scan long): a snapshot is not the live tenant, and
    # its local fake Graph's delta links die with it. None: the inventory in the app's Redis.
    inventory: InventoryStore | None = None


TenantOpener = Callable[[], AbstractAsyncContextManager["TenantGraph | None"]]


def tenant_graph(settings: Settings) -> TenantOpener:
    """What the scan reads: the snapshot behind a local fake Graph, live Graph, or None (no Graph)."""
    return lambda: _open_tenant(settings)


@asynccontextmanager
async def _open_tenant(settings: Settings) -> AsyncIterator[TenantGraph | None]:
    from bot.fakegraph import FakeGraph, LocalTokenCredential, load_snapshot
    from bot.wiring import snapshot_path

    if settings.snapshot:
        from bot.state import open_state

        snapshot = load_snapshot(snapshot_path(settings.snapshot))
        async with (
            FakeGraph(snapshot, latency=settings.snapshot_latency) as graph,
            tenant_graph_at(graph.base_url, LocalTokenCredential(), GraphMode.SNAPSHOT) as found,
            open_state(None) as scratch,
        ):
            yield replace(found, inventory=scratch.inventory(found.tenant))
        return
    if not settings.graph_credentials:
        yield None
        return
    from azure.identity.aio import DefaultAzureCredential

    async with (
        DefaultAzureCredential() as credential,
        tenant_graph_at(settings.graph_base_url, credential, GraphMode.LIVE, settings) as found,
    ):
        yield found


@asynccontextmanager
async def tenant_graph_at(
    base_url: str, credential: Any, mode: GraphMode, settings: Settings | None = None
) -> AsyncIterator[TenantGraph]:
    """Graph at `base_url` for a scan (tests and the demo point it at their own fake Graph)."""
    import os

    from bot.graph.hosts import scope_origin
    from bot.graph.transport import GraphHttp

    source = settings.graph_credential_source if settings else "the snapshot's local token"
    async with AsyncExitStack() as stack:
        reader = await stack.enter_async_context(BulkReader(base_url, credential, credential_source=source))
        http = await stack.enter_async_context(GraphHttp(base_url, credential))
        tenant = (os.environ.get("AZURE_TENANT_ID") if mode is GraphMode.LIVE else None) or await _tenant_id(reader)
        global_cloud = mode is GraphMode.SNAPSHOT or scope_origin(base_url) == GLOBAL_GRAPH
        directory = GraphDirectory(http, mode, credential_source=source)
        yield TenantGraph(reader, directory, tenant or "unknown", global_cloud)


async def _tenant_id(reader: BulkReader) -> str | None:
    async for page in reader.pages("organization", ["id"]):
        for organization in page:
            return str(organization.get("id")) or None
    return None


def window(routes: Routes, subscriptions: list[Subscription]) -> int:
    """Days ahead the scan must look: the largest threshold anyone asked for (at least the default)."""
    return max([DEFAULT_WITHIN, *_thresholds(routes, subscriptions)])


def _thresholds(routes: Routes, subscriptions: list[Subscription]) -> list[int]:
    thresholds = [*routes.thresholds, *(t for r in routes.routes for t in r.thresholds)]
    return thresholds + [t for s in subscriptions for t in s.thresholds]


def due_plan(routes: Routes, subscriptions: list[Subscription], now: datetime) -> DuePlan:
    """What the due index must be computed for: every threshold, who receives what, and the week.

    The week: once a week the scan judges everything anyway. It refreshes /metrics' counts, warns
    again an expired credential whose claim ran out (keys.WARNED_TTL: a yearly reminder), and bounds
    how long anything the index got wrong could go unseen, for one full pass a week.
    """
    watching = tuple((s.destination, s.matcher, s.thresholds) for s in subscriptions)
    week = now.isocalendar()[:2]
    return DuePlan.of([*DEFAULT_THRESHOLDS, *_thresholds(routes, subscriptions)], (routes, watching, week))


def could_not_scan(error: Exception) -> str:
    reason = str(error) if isinstance(error, DirectoryError) else "the bot's state store (Redis) is not answering"
    return (
        f"Could not scan the tenant for expiring credentials: {reason}. No warning is lost: "
        "the next scan posts whatever is due."
    )


class ScanJob:
    def __init__(
        self,
        open_graph: TenantOpener,
        inventory: Callable[[str], InventoryStore],
        delivery: Callable[[], WarningDelivery],
        clock: Callable[[], datetime],
        metrics: Metrics,
        routes: Routes,
    ) -> None:
        self._open_graph = open_graph
        self._inventory = inventory
        self._delivery = delivery
        self._clock = clock
        self._metrics = metrics
        self._routes = routes

    async def __call__(self, job: RunningJob) -> None:
        started, now = time.perf_counter(), self._clock()
        delivery = self._delivery()
        try:
            done = await self._scan_and_deliver(now, delivery, job)
            if done is None:
                return
            run, delivered = done
        except (DirectoryError, StateUnavailable) as error:
            self._metrics.scan_failures.labels(type(error).__name__).inc()
            log.warning("expiry scan failed error=%s last_attempt=%s", type(error).__name__, job.is_last_attempt)
            if not job.is_last_attempt:
                raise  # the queue tries again; only the run's last attempt reports
            await delivery.report_failure(could_not_scan(error))
            return
        seconds = time.perf_counter() - started
        # An incremental pass sees only what is due: the counts stay those of the last full pass.
        counts = counted(list(run.rows)) if run.full else await delivery.last_counts()
        summary = ScanSummary(time.time(), seconds, counts)
        self._metrics.show_scan(summary)
        try:
            await delivery.save_summary(summary)
        except StateUnavailable as error:  # the scan is done; only other processes' /metrics lag
            log.warning("scan summary not saved: %s", error)
        log.info(
            "expiry scan done full=%s objects=%d rows=%d posted=%d failed=%d updated=%d seconds=%.1f",
            run.full,
            run.read,
            len(run.rows),
            delivered.posted,
            delivered.failed,
            delivered.updated,
            seconds,
        )
        for destination, code in sorted(delivered.unreachable.items()):
            log.warning(
                "expiry warnings cannot be posted to %s (%s): invite the bot or fix the route", destination, code
            )

    async def _scan_and_deliver(
        self, now: datetime, delivery: WarningDelivery, job: RunningJob
    ) -> tuple[DueRun, Delivered] | None:
        subscriptions = await delivery.subscriptions()
        async with self._open_graph() as graph:  # open to the end: a snapshot's inventory lives as long
            if graph is None:
                log.info("expiry scan skipped: no Graph access configured (AZURE_* or SECRETBOT_SNAPSHOT)")
                return None
            options = ScanOptions(now=now, within=window(self._routes, subscriptions), last_use=graph.global_cloud)
            inventory = graph.inventory or self._inventory(graph.tenant)
            rechecks = await delivery.rechecks(now)
            plan = due_plan(self._routes, subscriptions, now)
            run = await scan_due(graph.reader, graph.directory, inventory, options, plan, rechecks)

            async def claimed() -> None:
                await run.commit()
                await delivery.rechecked(list(run.rechecks))

            changed = run.changed
            delivered = await delivery.deliver(list(run.rows), now, job, changed=changed, claimed=claimed)
        return run, delivered


def counted(rows: list[ScannedCredential]) -> tuple[tuple[str, str, int], ...]:
    """How many credentials by (state, threshold crossed or "none")."""
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        label = (row.state.value, "none" if row.threshold is None else str(row.threshold))
        counts[label] = counts.get(label, 0) + 1
    return tuple((state, threshold, count) for (state, threshold), count in sorted(counts.items()))
