"""The tenant-wide credential scan: sync the inventory, judge every credential, keep the rows asked for.

Shared by `secretbot scan` and the scheduled warnings: Graph and Redis in (`BulkReader`,
`GraphDirectory`, `InventoryStore`), a `ScanReport` out. Objects are judged one at a time as they
stream out of Redis and only the rows within the window are kept, so a 100,000-app tenant is never
held in memory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from bot.domain import InventoryCredential, ObjectType, Owner, ScannedCredential, ScanReport
from bot.expiry import DEFAULT_THRESHOLDS
from bot.graph.bulk import BulkReader
from bot.graph.directory import GraphDirectory
from bot.graph.inventory import (
    COLLECTIONS,
    LastUse,
    Progress,
    SyncResult,
    app_object_ids,
    inventory,
    read_last_use,
    read_owners,
    sync_collection,
)
from bot.state.inventory import InventoryStore
from handlers.expiry import judge, sort_key, within

DEFAULT_WITHIN = 30  # days: the largest default threshold


@dataclass(frozen=True)
class ScanOptions:
    now: datetime  # the clock credentials are judged at
    within: int = DEFAULT_WITHIN  # keep rows ending within this many days (expired ones always)
    thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS
    last_use: bool = True  # ask the beta sign-in activity report (Microsoft's global cloud only)


@dataclass(frozen=True)
class ScanRun:
    report: ScanReport
    syncs: tuple[SyncResult, ...]  # one per collection: full or incremental, round trips
    sync_seconds: float  # the inventory's sync alone (wall): what an unchanged tenant costs Graph

    @property
    def round_trips(self) -> int:
        return sum(sync.round_trips for sync in self.syncs)


async def scan_tenant(
    reader: BulkReader,
    directory: GraphDirectory,
    store: InventoryStore,
    tenant: str | None,
    options: ScanOptions,
    *,
    progress: Progress | None = None,
) -> ScanRun:
    synced_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    started = time.perf_counter()
    syncs = tuple(
        [await sync_collection(reader, store, c, synced_at=synced_at, progress=progress) for c in COLLECTIONS]
    )
    sync_seconds = time.perf_counter() - started
    notes: list[str] = []
    last = await read_last_use(reader) if options.last_use else LastUse({})
    if last.note:
        notes.append(last.note)
    kept: list[ScannedCredential] = []
    total = 0
    ending_by = options.now + timedelta(days=options.within + 1)  # a day's margin: the cut is by date
    for collection in COLLECTIONS:
        async for count, credentials in inventory(store, collection, ending_by=ending_by):
            total += count
            if credentials:
                kept.extend(within(judge(credentials, options.now, options.thresholds, last.by_key_id), options.within))
    rows = await _with_owners(directory, store, kept, notes)
    rows.sort(key=sort_key)
    report = ScanReport(
        scanned_at=options.now,
        tenant=tenant,
        applications=await store.count("applications"),
        service_principals=await store.count("servicePrincipals"),
        credentials=total,
        rows=tuple(rows),
        notes=tuple(notes),
    )
    return ScanRun(report, syncs, sync_seconds)


async def _with_owners(
    directory: GraphDirectory, store: InventoryStore, rows: list[ScannedCredential], notes: list[str]
) -> list[ScannedCredential]:
    """Each row with its app's owners: an application's own; a service principal's are those of the
    app registration with its app id, when that app is registered in this tenant."""
    if not rows:
        return rows
    sp_app_ids = {r.credential.app_id for r in rows if r.credential.object_type is ObjectType.SERVICE_PRINCIPAL}
    registered = await app_object_ids(store, sp_app_ids)

    def app_object_id(credential: InventoryCredential) -> str | None:
        if credential.object_type is ObjectType.APPLICATION:
            return credential.object_id
        return registered.get(credential.app_id)

    wanted = {object_id for row in rows if (object_id := app_object_id(row.credential))}
    owners = await read_owners(directory, store, wanted)
    unknown = wanted - owners.keys()
    if unknown:
        notes.append(f"owners of {len(unknown)} apps could not be read from Graph; they are shown without owners")
    for index, row in enumerate(rows):  # in place: the rows without owners are freed as they are replaced
        object_id = app_object_id(row.credential)
        found: tuple[Owner, ...] = owners.get(object_id, ()) if object_id else ()
        if found:
            rows[index] = replace(row, credential=replace(row.credential, owners=found))
    return rows
