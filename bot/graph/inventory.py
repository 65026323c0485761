"""The tenant's credential inventory, kept in Redis and brought up to date with Graph delta queries.

The first sync of a collection (`applications`, `servicePrincipals`) reads it in full through
`/delta` (999 objects a page, `$select` of only what warnings need) and keeps the delta link Graph
ends with; later syncs send that link and get only what changed, so an unchanged tenant costs one
round trip per collection. A link Graph refuses as expired means a full sync again.

Entries are compact JSON per object (`encode_entry`), merged with what a delta page reports (Graph
sends "at least the updated properties" of a changed object, not all of them). Owners are read
separately, only for the apps a report or warning shows, 20 to a `$batch` (an application delta
round does not report owner changes), and cached (`keys.OWNERS_MAX_AGE`, and a day for warnings).
Last use comes from the beta `appCredentialSignInActivities` report.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from bot.domain import CredentialKind, DirectoryError, InventoryCredential, ObjectType, Owner, PermissionDenied
from bot.graph.bulk import BulkReader, DeltaExpired, DeltaPage, Record
from bot.graph.directory import GraphDirectory
from bot.state import keys
from bot.state.inventory import InventoryStore

log = logging.getLogger(__name__)

COLLECTIONS: dict[str, ObjectType] = {
    "applications": ObjectType.APPLICATION,
    "servicePrincipals": ObjectType.SERVICE_PRINCIPAL,
}
# Only what a warning needs; Graph always adds `id` to a delta answer.
SELECT = ("id", "appId", "displayName", "tags", "passwordCredentials", "keyCredentials")
OWNER_SELECT = "id,displayName,userPrincipalName,mail"
BATCH_CHUNK = 1000  # objects read from Redis per HMGET: bounded answers, as with HSCAN
BATCH_SIZE = 20  # Graph's limit of requests per $batch
# Batches of owners in flight at once: a scan that shows 50,000 apps needs 2,500 of them, and Graph
# answers each in about 100 ms; 16 keeps within GraphHttp's pool (32) and Graph's per-app limits.
OWNER_BATCHES_IN_FLIGHT = 16
ACTIVITY_REPORT = "reports/appCredentialSignInActivities"
ACTIVITY_PERMISSION = "AuditLog.Read.All"

Progress = Callable[[str, int], None]  # (collection, objects read so far in this sync)


@dataclass(frozen=True)
class SyncResult:
    collection: str
    full: bool  # True: read in full (first sync, or the stored link was refused)
    round_trips: int
    objects: int  # objects Graph sent (all of them in a full sync, the changed ones otherwise)
    removed: int = 0


# --- entries: what Redis keeps per object ---------------------------------------------------------


def encode_entry(record: Record, base: dict[str, Any] | None = None) -> bytes:
    """The compact entry of a Graph object, `record`'s properties laid over `base` (a stored entry).

    Keys: a appId, n displayName, t tags, p secrets [keyId, name, hint, start, end, thumbprint],
    k certificates [keyId, name, start, end, usage, thumbprint]. Never a secret value: Graph does not
    send one, and `secretText` is not read.
    """
    entry = dict(base or {})
    if "appId" in record:
        entry["a"] = record["appId"]
    if "displayName" in record:
        entry["n"] = record["displayName"]
    if "tags" in record:
        entry["t"] = record["tags"] or []
    if "passwordCredentials" in record:
        entry["p"] = [
            [c.get("keyId"), c.get("displayName"), c.get("hint"), c.get("startDateTime"), c.get("endDateTime"),
             c.get("customKeyIdentifier")]
            for c in record["passwordCredentials"] or ()
        ]  # fmt: skip
    if "keyCredentials" in record:
        entry["k"] = [
            [c.get("keyId"), c.get("displayName"), c.get("startDateTime"), c.get("endDateTime"), c.get("usage"),
             c.get("customKeyIdentifier")]
            for c in record["keyCredentials"] or ()
        ]  # fmt: skip
    return orjson.dumps(entry)


def _lists(object_type: ObjectType, entry: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    secrets, certificates = entry.get("p") or [], entry.get("k") or []
    if object_type is ObjectType.SERVICE_PRINCIPAL:
        secrets, certificates = _fold_saml_signing(secrets, certificates)
    return secrets, certificates


def _credentials(
    object_type: ObjectType, object_id: str, entry: dict[str, Any], secrets: list[Any], certificates: list[Any]
) -> tuple[InventoryCredential, ...]:
    app_id, name, tags = entry.get("a") or "", entry.get("n") or "", tuple(entry.get("t") or ())
    credentials = [
        InventoryCredential(
            object_type, app_id, object_id, name, CredentialKind.SECRET, str(key_id).lower(), label, hint,
            _time(start), _time(end), None, (), tags,
        )
        for key_id, label, hint, start, end, _ in secrets
    ] + [
        InventoryCredential(
            object_type, app_id, object_id, name, CredentialKind.CERTIFICATE, str(key_id).lower(), label, None,
            _time(start), _time(end), usage, (), tags,
        )
        for key_id, label, start, end, usage, _ in certificates
    ]  # fmt: skip
    return tuple(credentials)


def _fold_saml_signing(secrets: list[list[Any]], certificates: list[list[Any]]) -> tuple[list[Any], list[Any]]:
    """A SAML signing certificate is three Graph credentials with one thumbprint (a Sign key, a Verify
    key and a password holding the private key): keep the Sign key, so one certificate is one row."""
    signing = {cert[5] for cert in certificates if cert[4] == "Sign" and cert[5]}
    if not signing:
        return secrets, certificates
    certificates = [cert for cert in certificates if not (cert[4] == "Verify" and cert[5] in signing)]
    secrets = [secret for secret in secrets if secret[5] not in signing]
    return secrets, certificates


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


# --- sync -------------------------------------------------------------------------------------------


async def sync_collection(
    reader: BulkReader, store: InventoryStore, collection: str, *, synced_at: str, progress: Progress | None = None
) -> SyncResult:
    """Bring one collection's inventory up to date: a delta round from the stored link, else in full."""
    trips = reader.round_trips
    link = await store.delta_link(collection)
    if link is not None:
        try:
            result = await _incremental(reader, store, collection, link, synced_at, progress)
            return replace(result, round_trips=reader.round_trips - trips)
        except DeltaExpired:
            log.info("inventory: Graph refused the %s delta link as expired; reading everything again", collection)
    result = await _full(reader, store, collection, synced_at, progress)
    return replace(result, round_trips=reader.round_trips - trips)  # a refused link's round trip included


async def _full(
    reader: BulkReader, store: InventoryStore, collection: str, synced_at: str, progress: Progress | None
) -> SyncResult:
    trips, objects = reader.round_trips, 0
    await store.start_full(collection)
    link = None
    async for page in reader.delta_pages(collection, SELECT):
        entries = {record["id"]: encode_entry(record) for record in page.values if "@removed" not in record}
        await store.stage(collection, entries, _app_ids(collection, page.values))
        objects += len(entries)
        link = page.delta_link or link
        if progress is not None:
            progress(collection, objects)
    await store.finish_full(collection, _required(link, collection), synced_at)
    return SyncResult(collection, True, reader.round_trips - trips, objects)


async def _incremental(
    reader: BulkReader,
    store: InventoryStore,
    collection: str,
    link: str,
    synced_at: str,
    progress: Progress | None,
) -> SyncResult:
    trips = reader.round_trips
    upserts: dict[str, bytes] = {}
    removals: list[str] = []
    new_link = None
    async for page in reader.delta_pages(collection, SELECT, delta_link=link):
        await _merge(store, collection, page, upserts, removals)
        new_link = page.delta_link or new_link
        if progress is not None:
            progress(collection, len(upserts) + len(removals))
    app_ids = {app_id: object_id for object_id, raw in upserts.items() if (app_id := orjson.loads(raw).get("a"))}
    link = _required(new_link, collection)
    await store.apply(collection, upserts, removals, link, synced_at, app_ids if collection == "applications" else None)
    if collection == "applications":
        await store.forget_owners([*upserts, *removals])  # an app that changed may have new owners too
    return SyncResult(collection, False, reader.round_trips - trips, len(upserts), len(removals))


async def _merge(
    store: InventoryStore, collection: str, page: DeltaPage, upserts: dict[str, bytes], removals: list[str]
) -> None:
    changed = [record for record in page.values if "@removed" not in record]
    stored = await store.current(collection, [record["id"] for record in changed if record["id"] not in upserts])
    bases = dict(zip((r["id"] for r in changed if r["id"] not in upserts), stored, strict=True))
    for record in changed:
        previous = upserts.get(record["id"]) or bases.get(record["id"])
        upserts[record["id"]] = encode_entry(record, orjson.loads(previous) if previous else None)
        if record["id"] in removals:
            removals.remove(record["id"])
    for record in page.values:
        if "@removed" in record:
            upserts.pop(record["id"], None)
            removals.append(record["id"])


def _app_ids(collection: str, records: Sequence[Record]) -> dict[str, str]:
    """App id → object id of the applications among `records` (see keys.app_ids_key)."""
    if collection != "applications":
        return {}
    return {r["appId"]: r["id"] for r in records if "@removed" not in r and isinstance(r.get("appId"), str)}


def _required(link: str | None, collection: str) -> str:
    if link is None:
        raise DirectoryError(f"Microsoft Graph ended the {collection} delta round without a delta link")
    return link


@dataclass(frozen=True)
class StoredObject:
    """One object of the inventory as a scan reads it."""

    object_id: str
    count: int  # its credentials
    credentials: tuple[InventoryCredential, ...]  # () when none ends by the scan's cut (not decoded)
    ends: tuple[str | None, ...]  # every credential's end as Graph wrote it (for `next_due`)


async def inventory(
    store: InventoryStore, collection: str, *, ending_by: datetime | None = None
) -> AsyncIterator[StoredObject]:
    """Every stored object, streamed from Redis.

    With `ending_by`, an object none of whose credentials ends by that day comes without its
    credentials: most of a large tenant is not due, and skipping its decoding is most of a scan's CPU.
    (Dates are compared as Graph's ISO 8601 text, to the day, so the cut is never tighter than asked.)
    """
    async for object_id, raw in store.entries(collection):
        yield _stored(collection, object_id, raw, ending_by)


async def inventory_of(
    store: InventoryStore, collection: str, object_ids: Sequence[str], *, ending_by: datetime | None = None
) -> list[StoredObject]:
    """The stored objects among `object_ids` (ids not in this collection are skipped)."""
    found = []
    for start in range(0, len(object_ids), BATCH_CHUNK):
        ids = object_ids[start : start + BATCH_CHUNK]
        for object_id, raw in zip(ids, await store.current(collection, ids), strict=True):
            if raw is not None:
                found.append(_stored(collection, object_id, raw, ending_by))
    return found


def _stored(collection: str, object_id: str, raw: bytes, ending_by: datetime | None) -> StoredObject:
    object_type = COLLECTIONS[collection]
    entry = orjson.loads(raw)
    secrets, certificates = _lists(object_type, entry)
    count = len(secrets) + len(certificates)
    ends = tuple(s[4] for s in entry.get("p") or ()) + tuple(c[3] for c in entry.get("k") or ())
    cutoff = ending_by.strftime("%Y-%m-%d") if ending_by is not None else None
    due = cutoff is None or any((end or "9999")[:10] <= cutoff for end in ends)
    credentials = _credentials(object_type, object_id, entry, secrets, certificates) if due and count else ()
    return StoredObject(object_id, count, credentials, ends)


def next_due(ends: Iterable[str | None], now: datetime, thresholds: Sequence[int]) -> float | None:
    """When (Unix seconds, rounded up) one of these credentials next crosses a threshold or expires,
    judged from `now`; None when none ever will.

    A credential crosses threshold T once its whole days left are T or fewer, that is just after
    `end - (T + 1) days`, and expires at `end`. A moment exactly at `now` has not been crossed yet, so
    it is kept: the scan after it judges again. Rounding up never judges before the moment; a moment
    already passed was seen by the judging done at `now`.
    """
    soonest: datetime | None = None
    for text in ends:
        end = _time(text)
        if end is None:
            continue
        for moment in (*(end - timedelta(days=t + 1) for t in thresholds), end):
            if moment >= now and (soonest is None or moment < soonest):
                soonest = moment
    return float(math.ceil(soonest.timestamp())) if soonest is not None else None


async def app_object_ids(store: InventoryStore, app_ids: set[str]) -> dict[str, str]:
    """The application object id of each of `app_ids` registered in this tenant (to find SP rows' owners)."""
    found: dict[str, str] = {}
    if not app_ids:
        return found
    wanted = sorted(app_ids)
    kept = await store.app_object_ids(wanted)
    if kept is None:  # an inventory from before the app ids were kept: read the applications
        async for object_id, raw in store.entries("applications"):
            app_id = orjson.loads(raw).get("a")
            if app_id in app_ids:
                found[app_id] = object_id
        return found
    candidates = [(app_id, object_id) for app_id, object_id in zip(wanted, kept, strict=True) if object_id]
    entries = await store.current("applications", [object_id for _, object_id in candidates])
    for (app_id, object_id), entry in zip(candidates, entries, strict=True):
        if entry is not None and orjson.loads(entry).get("a") == app_id:  # not deleted since
            found[app_id] = object_id
    return found


# --- owners -----------------------------------------------------------------------------------------


async def read_owners(
    directory: GraphDirectory,
    store: InventoryStore,
    app_object_ids: Iterable[str],
    *,
    now: datetime | None = None,
    max_age: timedelta = keys.OWNERS_MAX_AGE,
) -> dict[str, tuple[Owner, ...]]:
    """Owners of each application, from the cache when read within `max_age` before `now` (the scan's
    clock; an entry stamped after it is not trusted either), else from Graph.

    An app whose owners Graph would not give (throttled past retries, refused) is left out, so the
    caller can tell "owners unknown" from "ownerless" (an empty tuple).
    """
    wanted = sorted(set(app_object_ids))
    owners: dict[str, tuple[Owner, ...]] = {}
    # One Owner object per person and one tuple per set of owners, however many apps share them:
    # a report of 100,000 apps names a few hundred people.
    people: dict[tuple[Any, ...], Owner] = {}
    groups: dict[tuple[Owner, ...], tuple[Owner, ...]] = {}

    def group(rows: Iterable[Sequence[Any]]) -> tuple[Owner, ...]:
        found = tuple(people.setdefault(tuple(row), Owner(row[1], row[2], row[3], row[0])) for row in rows)
        return groups.setdefault(found, found)

    clock = (now or datetime.now(UTC)).timestamp()
    fresh_after = clock - max_age.total_seconds()
    missing = []
    for object_id, raw in zip(wanted, await store.owners(wanted), strict=True):
        cached = orjson.loads(raw) if raw else None
        if cached is not None and fresh_after <= cached.get("at", 0) <= clock:
            owners[object_id] = group(cached["o"])
        else:
            missing.append(object_id)
    batches = asyncio.Queue[Sequence[str]]()
    for start in range(0, len(missing), BATCH_SIZE):
        batches.put_nowait(missing[start : start + BATCH_SIZE])

    async def worker() -> None:
        # A few workers take batches in turn and keep only the owners they read, so a scan that
        # needs thousands of batches holds a few in flight, not thousands of answers.
        while not batches.empty():
            ids = batches.get_nowait()
            requests = {str(i): f"/applications/{oid}/owners?$select={OWNER_SELECT}" for i, oid in enumerate(ids)}
            try:
                answers = await directory.get_batch("v1.0", requests)
            except DirectoryError as error:
                log.warning("inventory: owners of %d apps not read: %s", len(ids), error)
                continue
            to_cache = {}
            for key, (status, body) in answers.items():
                if status != 200 or not isinstance(body, dict):
                    continue
                rows = [
                    [v.get("id"), v.get("displayName"), v.get("userPrincipalName"), v.get("mail")]
                    for v in body.get("value", [])
                ]
                owners[ids[int(key)]] = group(rows)
                to_cache[ids[int(key)]] = orjson.dumps({"at": clock, "o": rows})
            await store.save_owners(to_cache)

    await asyncio.gather(*(worker() for _ in range(min(OWNER_BATCHES_IN_FLIGHT, batches.qsize()))))
    return owners


# --- last use ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LastUse:
    by_key_id: dict[str, datetime]
    note: str | None = None  # why last use is unknown, said once per scan


async def read_last_use(reader: BulkReader) -> LastUse:
    """Each credential's last sign-in from the beta report; without the permission or licence, a note."""
    latest: dict[str, datetime] = {}
    try:
        async for page in reader.report(ACTIVITY_REPORT, permission=ACTIVITY_PERMISSION):
            for record in page:
                key_id = str(record.get("keyId") or "").lower()
                activity = record.get("signInActivity") or {}
                when = _time(activity.get("lastSignInDateTime")) if isinstance(activity, dict) else None
                if key_id and when is not None and (key_id not in latest or when > latest[key_id]):
                    latest[key_id] = when
    except PermissionDenied:
        return LastUse(
            {},
            "last use is not shown: Graph refused the credential sign-in activity report "
            f"(it needs {ACTIVITY_PERMISSION} and an Entra ID P1 or P2 licence)",
        )
    except DirectoryError as error:
        return LastUse({}, f"last use is not shown: {error}")
    return LastUse(latest)
