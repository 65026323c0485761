"""The tenant-wide credential scan: sync the inventory, judge credentials, keep the rows asked for.

Graph and Redis in (`BulkReader`, `GraphDirectory`, `InventoryStore`), judged rows out, two ways:

- `scan_tenant` (`secretbot scan`): every credential judged, a `ScanReport`. Objects are judged one at
  a time as they stream out of Redis and only the rows within the window are kept, so a 100,000-app
  tenant is never held in memory.
- `scan_due` (the scheduled warnings): only the objects the due index (`keys.due_key`) says are due,
  those the delta changed and those the ledger asks for again; everything once when there is no
  index for the current plan. `DueRun.commit` moves the index on once the warnings are claimed.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from bot.domain import InventoryCredential, ObjectType, Owner, ScannedCredential, ScanReport
from bot.expiry import DEFAULT_THRESHOLDS
from bot.graph.bulk import BulkReader
from bot.graph.directory import GraphDirectory
from bot.graph.inventory import (
    COLLECTIONS,
    LastUse,
    Progress,
    StoredObject,
    SyncResult,
    app_object_ids,
    inventory,
    inventory_of,
    next_due,
    read_last_use,
    read_owners,
    sync_collection,
)
from bot.state import keys
from bot.state.inventory import InventoryStore, Score, due_member, split_member
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
    syncs, sync_seconds = await _sync(reader, store, progress)
    notes: list[str] = []
    last = await read_last_use(reader) if options.last_use else LastUse({})
    if last.note:
        notes.append(last.note)
    kept: list[ScannedCredential] = []
    total = 0
    for collection in COLLECTIONS:
        async for stored in inventory(store, collection, ending_by=_ending_by(options)):
            total += stored.count
            if stored.credentials:
                kept.extend(_judged(stored, options, last))
    rows = await _with_owners(directory, store, kept, notes, options.now)
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


async def _sync(
    reader: BulkReader, store: InventoryStore, progress: Progress | None = None
) -> tuple[tuple[SyncResult, ...], float]:
    synced_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    started = time.perf_counter()
    syncs = [await sync_collection(reader, store, c, synced_at=synced_at, progress=progress) for c in COLLECTIONS]
    return tuple(syncs), time.perf_counter() - started


def _ending_by(options: ScanOptions) -> datetime:
    return options.now + timedelta(days=options.within + 1)  # a day's margin: the cut is by date


async def _last_use(reader: BulkReader, options: ScanOptions) -> LastUse:
    return await read_last_use(reader) if options.last_use else LastUse({})


def _judged(stored: StoredObject, options: ScanOptions, last: LastUse) -> list[ScannedCredential]:
    return within(judge(stored.credentials, options.now, options.thresholds, last.by_key_id), options.within)


# --- the scheduled warnings' scan: only what is due -------------------------------------------------


@dataclass(frozen=True)
class DuePlan:
    """What the due index is computed for: the moments it keeps come from `thresholds` (every
    threshold anyone asked for), and a change of `fingerprint` (routes, subscriptions) means a
    threshold or a channel may be due that the index does not show: everything is judged once."""

    thresholds: tuple[int, ...]
    fingerprint: str

    @classmethod
    def of(cls, thresholds: Iterable[int], routing: Iterable[object]) -> DuePlan:
        days = tuple(sorted(set(thresholds)))
        text = repr((days, *routing)).encode()
        return cls(days, hashlib.sha256(text).hexdigest())


Recheck = tuple[str, float]  # a member of the ledger's recheck set (keys.RECHECK_KEY) and its score


@dataclass
class DueRun:
    rows: tuple[ScannedCredential, ...]
    full: bool  # every object judged (first scan, a full sync, a new plan)
    # Object ids a delta round changed since the last pass (None when every object was judged): only
    # their cards can have changed (a credential removed, renewed or replaced).
    changed: frozenset[str] | None
    rechecks: tuple[Recheck, ...]  # what the ledger asked for, to clear once claimed
    syncs: tuple[SyncResult, ...]
    sync_seconds: float
    read: int  # objects read from the inventory
    _store: InventoryStore
    _moves: list[tuple[str, Score, Score]] = field(default_factory=list)
    _plan: str | None = None

    async def commit(self) -> None:
        """Move the due index on: call once the warnings of `rows` are claimed (a run that dies before
        leaves the index as it was, and the next run judges the same objects again)."""
        await self._store.advance(self._moves, self._plan)


async def scan_due(
    reader: BulkReader,
    directory: GraphDirectory,
    store: InventoryStore,
    options: ScanOptions,
    plan: DuePlan,
    rechecks: Sequence[Recheck] = (),
) -> DueRun:
    """Sync the inventory, then judge what is due at `options.now` (see the module's docstring)."""
    syncs, sync_seconds = await _sync(reader, store)
    full = await store.due_plan() != plan.fingerprint
    moves: list[tuple[str, Score, Score]] = []
    kept: list[ScannedCredential] = []
    changed: set[str] | None = None
    read_objects = 0
    ending_by = _ending_by(options)
    if full:  # judged as they stream out of Redis, as `scan_tenant` does: never all objects at once
        last = await _last_use(reader, options)
        index = await store.due_index()
        for collection in COLLECTIONS:
            async for stored in inventory(store, collection, ending_by=ending_by):
                read_objects += 1
                member = due_member(collection, stored.object_id)
                moves.append((member, index.pop(member, None), next_due(stored.ends, options.now, plan.thresholds)))
                if stored.credentials:
                    kept.extend(_judged(stored, options, last))
        moves += [(member, score, None) for member, score in index.items()]  # objects no longer there
    else:
        due = await store.due(options.now.timestamp())
        changed = {split_member(member)[1] for member, score in due if score < 0}
        read = {member: score for member, score in due}
        wanted: dict[str, list[str]] = {collection: [] for collection in COLLECTIONS}
        for member in read:
            collection, object_id = split_member(member)
            if collection in wanted:
                wanted[collection].append(object_id)
        asked = {member.partition("@")[0] for member, _ in rechecks}  # see keys.RECHECK_KEY
        objects: list[StoredObject] = []
        for collection, ids in wanted.items():
            ids = sorted(set(ids) | asked)  # an object the ledger asks for: in whichever collection has it
            for stored in await inventory_of(store, collection, ids, ending_by=ending_by):
                read_objects += 1
                member = due_member(collection, stored.object_id)
                if member in read:
                    moves.append((member, read.pop(member), next_due(stored.ends, options.now, plan.thresholds)))
                if stored.credentials:
                    objects.append(stored)
        moves += [(member, score, None) for member, score in read.items()]  # removed from the tenant
        if objects:  # the activity report only when there is something to show it on
            last = await _last_use(reader, options)
            for stored in objects:
                kept.extend(_judged(stored, options, last))
    notes: list[str] = []
    # A warning names the owners as of the day it is posted: Graph's delta does not report owner
    # changes, so they are read again when a day old (only for what is due: a few apps a day).
    rows = await _with_owners(directory, store, kept, notes, options.now, keys.WARNING_OWNERS_MAX_AGE)
    rows.sort(key=sort_key)
    return DueRun(
        rows=tuple(rows),
        full=full,
        changed=None if changed is None else frozenset(changed),
        rechecks=tuple(rechecks),
        syncs=syncs,
        sync_seconds=sync_seconds,
        read=read_objects,
        _store=store,
        _moves=moves,
        _plan=plan.fingerprint if full else None,
    )


async def _with_owners(
    directory: GraphDirectory,
    store: InventoryStore,
    rows: list[ScannedCredential],
    notes: list[str],
    now: datetime,
    owners_max_age: timedelta = keys.OWNERS_MAX_AGE,
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
    owners = await read_owners(directory, store, wanted, now=now, max_age=owners_max_age)
    unknown = wanted - owners.keys()
    if unknown:
        notes.append(f"owners of {len(unknown)} apps could not be read from Graph; they are shown without owners")
    for index, row in enumerate(rows):  # in place: the rows without owners are freed as they are replaced
        object_id = app_object_id(row.credential)
        found: tuple[Owner, ...] = owners.get(object_id, ()) if object_id else ()
        if found:
            rows[index] = replace(row, credential=replace(row.credential, owners=found))
    return rows
