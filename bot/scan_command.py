"""`secretbot scan`: the tenant-wide credential report on the command line (ARCHITECTURE.md, "Contracts").

Exit codes: 0 the report was printed; 1 `--fail-on DAYS` found a credential ending within DAYS;
2 a usage error or an unreadable snapshot (one line); 3 the scan could not be done (Graph or Redis
refused or failed; one line naming why).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TextIO

from bot.domain import DirectoryError, GraphMode, ScanReport, StateUnavailable
from bot.fakegraph.samples import sample_reference_time
from bot.fakegraph.snapshot import SnapshotError
from bot.graph.bulk import BulkReader
from bot.graph.directory import GraphDirectory
from bot.graph.hosts import scope_origin
from bot.scan import ScanOptions, scan_tenant
from bot.scan_job import window
from bot.scan_post import post_warnings
from bot.settings import Settings
from bot.state.inventory import InventoryStore
from bot.warnings_post import Delivered
from bot.wiring import SAMPLE_SNAPSHOT, snapshot_path
from cards.scan_report import render_scan_csv, render_scan_text, scan_json_chunks
from handlers.expiry import any_ends_within, within

FAILED_GATE = 1
USAGE_ERROR = 2
SCAN_FAILED = 3
GLOBAL_GRAPH = "https://graph.microsoft.com"  # the beta credential activity report exists only here


class ScanUsageError(Exception):
    """A mistake in how `scan` was called; printed as one line, exit 2."""


@dataclass(frozen=True)
class _Tenant:
    reader: BulkReader
    directory: GraphDirectory
    store: InventoryStore
    tenant: str | None
    live: bool
    global_cloud: bool


def run_scan(args: argparse.Namespace, settings: Settings, *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        if args.within < 0 or (args.fail_on is not None and args.fail_on < 0):
            raise ScanUsageError("--within and --fail-on take a number of days, 0 or more")
        report = asyncio.run(_scan(args, settings))
        if args.post:
            delivered = asyncio.run(_post(report, settings))
            print(
                f"secretbot: posted {delivered.posted} warnings, updated {delivered.updated} cards"
                + (f", {delivered.failed} could not be posted (the next run tries again)" if delivered.failed else ""),
                file=sys.stderr,
            )
            for destination, code in sorted(delivered.unreachable.items()):
                print(
                    f"secretbot: cannot post to {destination} ({code}): invite the bot or fix the route",
                    file=sys.stderr,
                )
    except (ScanUsageError, SnapshotError) as error:
        print(f"secretbot: {error}", file=sys.stderr)
        return USAGE_ERROR
    except (DirectoryError, StateUnavailable) as error:
        print(f"secretbot: could not scan: {error}", file=sys.stderr)
        return SCAN_FAILED
    shown = replace(report, rows=tuple(within(report.rows, args.within)))
    if args.format != "text":  # the text report says them itself; JSON and CSV have no place for them
        for note in report.notes:
            print(f"secretbot: note: {note}", file=sys.stderr)
    if args.format == "json":
        out.writelines(scan_json_chunks(shown))
    elif args.format == "csv":
        out.write(render_scan_csv(shown))
    else:
        out.write(render_scan_text(shown, within=args.within))
    out.flush()
    return FAILED_GATE if args.fail_on is not None and any_ends_within(report.rows, args.fail_on) else 0


async def _post(report: ScanReport, settings: Settings) -> Delivered:
    try:
        return await post_warnings(report.rows, report.scanned_at, settings)
    except ValueError as error:
        raise ScanUsageError(str(error)) from None


async def _scan(args: argparse.Namespace, settings: Settings) -> ScanReport:
    snapshot = args.snapshot or settings.snapshot
    now = args.now or (sample_reference_time() if snapshot == SAMPLE_SNAPSHOT else datetime.now(UTC))
    keep = max(args.within, args.fail_on or 0)  # the gate looks further ahead than the report may show
    if args.post:  # the warnings look as far ahead as the largest threshold of the routes file
        keep = max(keep, window(settings.routes, []))
    async with _open_tenant(settings, snapshot) as tenant:
        progress = _Progress(sys.stderr) if tenant.live and sys.stderr.isatty() else None
        options = ScanOptions(now=now, within=keep, last_use=tenant.global_cloud)
        try:
            run = await scan_tenant(
                tenant.reader,
                tenant.directory,
                tenant.store,
                tenant.tenant,
                options,
                progress=progress.update if progress else None,
            )
        finally:
            if progress is not None:
                progress.done()
    return run.report


@asynccontextmanager
async def _open_tenant(settings: Settings, snapshot: str | None) -> AsyncIterator[_Tenant]:
    """The snapshot behind the local fake Graph (state in memory), or live Graph (state in REDIS_URL)."""
    from bot.fakegraph import FakeGraph, LocalTokenCredential, load_snapshot
    from bot.graph.transport import GraphHttp
    from bot.state import open_state

    async with AsyncExitStack() as stack:
        if snapshot:
            tenant = load_snapshot(snapshot_path(snapshot))
            graph = await stack.enter_async_context(FakeGraph(tenant, latency=settings.snapshot_latency))
            credential: Any = LocalTokenCredential()
            base_url, mode, source = graph.base_url, GraphMode.SNAPSHOT, "the snapshot's local token"
            # A snapshot is not the live tenant: its inventory never goes to a shared Redis.
            state = await stack.enter_async_context(open_state(None))
            tenant_id: str | None = tenant.tenant["id"]
        elif settings.graph_credentials:
            from azure.identity.aio import DefaultAzureCredential

            credential = await stack.enter_async_context(DefaultAzureCredential())
            base_url, mode, source = settings.graph_base_url, GraphMode.LIVE, settings.graph_credential_source
            state = await stack.enter_async_context(open_state(settings.redis_url))
            tenant_id = os.environ.get("AZURE_TENANT_ID") or None
        else:
            raise ScanUsageError(
                "nothing to scan: set the AZURE_* variables for Microsoft Graph, or pass --snapshot FILE (or 'sample')"
            )
        reader = await stack.enter_async_context(BulkReader(base_url, credential, credential_source=source))
        http = await stack.enter_async_context(GraphHttp(base_url, credential))
        directory = GraphDirectory(http, mode, credential_source=source)
        if tenant_id is None:
            tenant_id = await _tenant_id(reader)
        yield _Tenant(
            reader,
            directory,
            state.inventory(tenant_id or "unknown"),
            tenant_id,
            live=mode is GraphMode.LIVE,
            global_cloud=mode is GraphMode.SNAPSHOT or scope_origin(base_url) == GLOBAL_GRAPH,
        )


async def _tenant_id(reader: BulkReader) -> str | None:
    async for page in reader.pages("organization", ["id"]):
        for organization in page:
            return str(organization.get("id")) or None
    return None


class _Progress:
    """A one-line counter on a terminal's stderr, redrawn in place; gone when the scan ends."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._last = 0.0

    def update(self, collection: str, objects: int) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._last >= 0.1:  # at most ten redraws a second
            self._last = now
            self._stream.write(f"\rscanning {collection}: {objects:,} read\033[K")
            self._stream.flush()

    def done(self) -> None:
        self._stream.write("\r\033[K")
        self._stream.flush()
