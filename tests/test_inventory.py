"""The credential inventory: full and incremental syncs through the fake Graph's delta queries, kept in
Redis (fakeredis and a real redis-server), with owners and last use."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import fakeredis
import pytest
import redis.asyncio as redis

from bot.domain import CredentialKind, DirectoryError, InventoryCredential, ObjectType, PermissionDenied
from bot.fakegraph import FakeGraph, LocalTokenCredential, load_snapshot, sample_snapshot_path
from bot.graph import GraphDirectory, GraphHttp
from bot.graph.bulk import BulkReader
from bot.graph.inventory import inventory, read_last_use, read_owners, sync_collection
from bot.scan import DuePlan, DueRun, ScanOptions, scan_due
from bot.state import keys, redis_client
from bot.state.inventory import InventoryStore
from tests.redis_server import redis_server
from tests.tenant_edits import PAYMENTS_APP, add_secret, edited, remove_application

TENANT = "6f1c3a52-8d4e-4b7a-9c21-3e5f7a9b0c14"
SHIPPING_API = "c7d2e9f4-3a1b-4c5d-8e6f-1a2b3c4d5e6f"
SHIPPING_OBJECT = "3e8a1f52-6c0d-4b7e-9a21-5f4c8d2e6b13"
PAYMENTS_OBJECT = "ec7ac8ad-1b2b-406b-aae1-2c972399d29d"
EXPENSE_PORTAL = "e8c3f1a5-7b2d-4e6c-9f4a-1b5d3e7c9a24"
CI_2026 = "b61e6ba5-3682-4dd6-b804-69b84b2d451c"
NEW_KEY = "9e3b1c55-0a7d-4f2e-8b6c-3d5f7a9e1b20"
STAMP = "2026-11-20T09:00:00Z"


@pytest.fixture(scope="module")
def real_redis_url() -> Iterator[str]:
    with redis_server() as server:
        yield server.url


@dataclass
class Setup:
    graph: FakeGraph
    reader: BulkReader
    directory: GraphDirectory
    store: InventoryStore
    client: redis.Redis

    async def sync(self, collection: str = "applications") -> tuple[bool, int]:
        result = await sync_collection(self.reader, self.store, collection, synced_at=STAMP)
        return result.full, result.round_trips

    async def credentials(self, collection: str = "applications") -> list[InventoryCredential]:
        return [credential async for stored in inventory(self.store, collection) for credential in stored.credentials]


@pytest.fixture(params=["fakeredis", "redis-server"])
async def setup(request: pytest.FixtureRequest) -> AsyncIterator[Setup]:
    if request.param == "fakeredis":
        client: redis.Redis = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
    else:
        client = redis_client(request.getfixturevalue("real_redis_url"))
        await client.flushdb()
    async with (
        FakeGraph(load_snapshot(sample_snapshot_path())) as graph,
        BulkReader(graph.base_url, LocalTokenCredential(), retry_delay=0.05) as reader,
        GraphHttp(graph.base_url, LocalTokenCredential()) as http,
    ):
        directory = GraphDirectory(http, max_retries=2, retry_delay=0.05)
        yield Setup(graph, reader, directory, InventoryStore(client, TENANT), client)
    await client.aclose()


async def test_a_first_sync_is_full_and_a_sync_of_an_unchanged_tenant_is_one_round_trip(setup: Setup) -> None:
    assert await setup.sync("applications") == (True, 1)
    assert await setup.sync("servicePrincipals") == (True, 1)
    setup.graph.reset()
    assert await setup.sync("applications") == (False, 1)
    assert await setup.sync("servicePrincipals") == (False, 1)
    assert setup.graph.round_trips == 2
    assert await setup.store.count("applications") == 13
    assert await setup.store.count("servicePrincipals") == 14


async def test_the_inventory_holds_every_credential_with_graphs_facts(setup: Setup) -> None:
    await setup.sync("applications")
    shipping = sorted((c for c in await setup.credentials() if c.app_id == SHIPPING_API), key=lambda c: c.name or "")
    assert [(c.name, c.hint, c.kind, c.object_type, c.object_id) for c in shipping] == [
        ("ship-2025", "Qm7", CredentialKind.SECRET, ObjectType.APPLICATION, SHIPPING_OBJECT),
        ("ship-2026", "Tz2", CredentialKind.SECRET, ObjectType.APPLICATION, SHIPPING_OBJECT),
    ]
    assert shipping[0].end == datetime(2026, 11, 25, 18, tzinfo=UTC) and shipping[0].tags == ("team:logistics",)


async def test_a_saml_signing_certificate_is_one_credential_not_three(setup: Setup) -> None:
    await setup.sync("servicePrincipals")
    saml = [c for c in await setup.credentials("servicePrincipals") if c.app_id == EXPENSE_PORTAL]
    assert [(c.kind, c.usage, c.key_id) for c in saml] == [
        (CredentialKind.CERTIFICATE, "Sign", "f3b7d1a9-2c6e-4a8f-b5d3-8e1c4a7f2b96")
    ]


async def test_an_incremental_sync_applies_only_the_changes(setup: Setup) -> None:
    await setup.sync("applications")
    moment = datetime(2026, 11, 20, tzinfo=UTC)
    setup.graph.use_snapshot(
        edited(
            add_secret(PAYMENTS_APP, "ci-2027", "Pq1", moment, moment.replace(year=2027)),
            remove_application(SHIPPING_API),
        )
    )
    setup.graph.reset()
    assert await setup.sync("applications") == (False, 1)
    credentials = await setup.credentials()
    payments = {c.name: c for c in credentials if c.app_id == PAYMENTS_APP}
    assert set(payments) == {"ci-2025", "ci-2026", "ci-2027"}
    # Graph sent only the changed passwordCredentials: the name kept from the stored entry.
    assert payments["ci-2027"].display_name == "payments-api" and payments["ci-2027"].key_id == NEW_KEY
    assert not [c for c in credentials if c.app_id == SHIPPING_API]
    assert await setup.store.count("applications") == 12
    assert "$deltatoken" in setup.graph.requests[0].query_string


async def test_an_expired_delta_link_falls_back_to_a_full_sync(setup: Setup) -> None:
    await setup.sync("applications")
    setup.graph.use_snapshot(edited(remove_application(SHIPPING_API)))
    setup.graph.expire_delta_tokens()
    setup.graph.reset()
    assert await setup.sync("applications") == (True, 2)  # the refused link, then the full round
    assert [r.status for r in setup.graph.requests] == [400, 200]
    assert await setup.store.count("applications") == 12
    assert await setup.sync("applications") == (False, 1)  # and the new link works


async def test_a_link_stored_for_another_graph_host_means_a_full_sync(setup: Setup) -> None:
    await setup.sync("applications")
    async with (
        FakeGraph(load_snapshot(sample_snapshot_path())) as other,
        BulkReader(other.base_url, LocalTokenCredential()) as reader,
    ):
        result = await sync_collection(reader, setup.store, "applications", synced_at=STAMP)
    assert (result.full, result.round_trips) == (True, 1)  # the old host's link is not followed


async def test_throttling_is_waited_out(setup: Setup) -> None:
    setup.graph.add_fault(r"/applications/delta", 429, times=1, retry_after=1)
    assert await setup.sync("applications") == (True, 2)
    assert await setup.store.count("applications") == 13


async def test_a_failed_sync_leaves_the_previous_inventory_and_link(setup: Setup) -> None:
    await setup.sync("applications")
    link = await setup.store.delta_link("applications")
    setup.graph.use_snapshot(edited(remove_application(SHIPPING_API)))
    setup.graph.add_fault(r"/applications/delta", 403)
    with pytest.raises(PermissionDenied, match=r"Application\.Read\.All"):
        await setup.sync("applications")
    setup.graph.reset()
    assert await setup.store.delta_link("applications") == link
    assert await setup.store.count("applications") == 13
    setup.graph.add_fault(r"/applications/delta", 503)
    with pytest.raises(DirectoryError):
        await setup.sync("applications")
    setup.graph.reset()
    assert await setup.sync("applications") == (False, 1)
    assert await setup.store.count("applications") == 12


async def test_an_empty_collection_is_synced_too() -> None:
    client = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
    data = load_snapshot(sample_snapshot_path())
    async with (
        FakeGraph(data.__class__(tenant=data.tenant, applications=data.applications)) as graph,
        BulkReader(graph.base_url, LocalTokenCredential()) as reader,
    ):
        store = InventoryStore(client, TENANT)
        first = await sync_collection(reader, store, "servicePrincipals", synced_at=STAMP)
        again = await sync_collection(reader, store, "servicePrincipals", synced_at=STAMP)
    assert (first.full, again.full, again.round_trips) == (True, False, 1)
    assert await store.count("servicePrincipals") == 0


async def test_keys_expire_and_the_link_never_outlives_its_inventory(setup: Setup) -> None:
    await setup.sync("applications")
    link_ttl = await setup.client.ttl(keys.delta_link_key(TENANT, "applications"))
    inventory_ttl = await setup.client.ttl(keys.inventory_key(TENANT, "applications"))
    assert 0 < link_ttl <= keys.DELTA_LINK_TTL.total_seconds() < inventory_ttl <= keys.INVENTORY_TTL.total_seconds()
    await setup.client.delete(keys.inventory_key(TENANT, "applications"))
    assert await setup.store.delta_link("applications") is None  # no inventory: a full sync, never a delta onto nothing
    assert (await setup.sync("applications"))[0] is True
    stored = [value async for _, value in setup.store.entries("applications")]
    assert all(b"secretText" not in value and b"customKeyIdentifier" not in value for value in stored)


async def test_owners_are_read_in_batches_and_cached(setup: Setup) -> None:
    setup.graph.reset()
    first = await read_owners(
        setup.directory, setup.store, [PAYMENTS_OBJECT, SHIPPING_OBJECT, "c4e9a2d7-1b6f-4c3e-8d5a-7f0b3e9c2a61"]
    )
    # secretbot: the bot's own service principal, an owner so that it may rotate the app's secret
    assert [o.display_name for o in first[PAYMENTS_OBJECT]] == ["Priya Raman", "Jonas Berg", "secretbot"]
    assert first[PAYMENTS_OBJECT][0].object_id == "08d01bfe-b36f-4c48-8fee-8d493ce468a1"
    assert first["c4e9a2d7-1b6f-4c3e-8d5a-7f0b3e9c2a61"] == ()  # legacy-reports: ownerless
    assert setup.graph.round_trips == 1
    again = await read_owners(setup.directory, setup.store, [PAYMENTS_OBJECT, SHIPPING_OBJECT])
    assert again[SHIPPING_OBJECT][0].user_principal_name == "mei.zhou@northwind-ops.example"
    assert setup.graph.round_trips == 1  # from the cache


async def test_owners_graph_will_not_give_are_unknown_not_empty(setup: Setup) -> None:
    setup.graph.add_fault(r"/\$batch", 429, retry_after=0)
    owners = await read_owners(setup.directory, setup.store, [PAYMENTS_OBJECT])
    assert owners == {}


async def test_last_use_comes_from_the_activity_report(setup: Setup) -> None:
    last = await read_last_use(setup.reader)
    assert last.note is None
    assert last.by_key_id[CI_2026].isoformat().startswith("2026-11-20T")
    assert "62f746b4-84e6-4ceb-95bd-447e7184d454" not in last.by_key_id


async def test_without_the_report_last_use_is_a_note(setup: Setup) -> None:
    setup.graph.add_fault(r"/beta/reports/appCredentialSignInActivities", 403)
    last = await read_last_use(setup.reader)
    assert last.by_key_id == {}
    assert last.note is not None and "AuditLog.Read.All" in last.note


# --- the due index (the scheduled scan: bot.scan.scan_due) ------------------------------------------

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
PLAN = DuePlan.of((30, 14, 7, 1), ("defaults",))


async def due_scan(setup: Setup, now: datetime = NOW, plan: DuePlan = PLAN) -> DueRun:
    return await scan_due(setup.reader, setup.directory, setup.store, ScanOptions(now, last_use=False), plan)


def apps(run: DueRun) -> set[str]:
    return {row.credential.display_name for row in run.rows}


async def test_the_due_index_judges_an_object_again_when_a_threshold_comes(setup: Setup) -> None:
    first = await due_scan(setup)
    assert first.full and "shipping-api" in apps(first)  # ends 2026-11-25T18:00: 7 days
    await first.commit()
    assert (await due_scan(setup)).read == 0  # nothing changed or crossed since
    crossing = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)  # whole days left: 1 just after this moment
    before = await due_scan(setup, crossing - timedelta(seconds=1))
    assert "shipping-api" not in apps(before)
    await before.commit()
    at_one_day = await due_scan(setup, crossing + timedelta(seconds=1))
    assert not at_one_day.full and "shipping-api" in apps(at_one_day)
    assert {row.threshold for row in at_one_day.rows if row.credential.display_name == "shipping-api"} == {1}


async def test_a_change_a_delta_reports_while_a_scan_runs_stays_due(setup: Setup) -> None:
    """A scan moves an object on only if its score is still the one it read: a delta round that marks
    the object meanwhile (another scan's, the CLI's) is not lost."""
    await (await due_scan(setup)).commit()
    later = NOW + timedelta(hours=1)
    setup.graph.use_snapshot(edited(add_secret(PAYMENTS_APP, "far", "Far", NOW, NOW + timedelta(days=400))))
    running = await due_scan(setup, later)
    assert running.changed == {PAYMENTS_OBJECT}
    setup.graph.use_snapshot(
        edited(
            add_secret(PAYMENTS_APP, "far", "Far", NOW, NOW + timedelta(days=400)),
            add_secret(PAYMENTS_APP, "soon", "Sn1", NOW, NOW + timedelta(days=3), key_id=CI_2026[:-1] + "0"),
        )
    )
    meanwhile = await sync_collection(setup.reader, setup.store, "applications", synced_at=STAMP)
    assert meanwhile.objects == 1
    await running.commit()  # the first scan ends: it must not move the object the delta marked again
    after = await due_scan(setup, later)
    assert after.changed == {PAYMENTS_OBJECT} and "payments-api" in apps(after)
    await after.commit()
    assert (await due_scan(setup, later)).read == 0


async def test_a_new_plan_or_a_full_sync_judges_everything_once(setup: Setup) -> None:
    await (await due_scan(setup)).commit()
    assert not (await due_scan(setup)).full
    assert (await due_scan(setup, plan=DuePlan.of((60, 30, 14, 7, 1), ("defaults",)))).full
    setup.graph.expire_delta_tokens()  # the stored links are refused: full syncs, a new inventory
    assert (await due_scan(setup)).full
