"""Rotation's Graph calls through msgraph-sdk against the fake Graph: addPassword and removePassword
change the tenant that later reads see, app management policies cap or refuse a new secret the way
Graph does, a throttled or failed addPassword is reported and never sent twice, and the approver checks
(email to user, transitive group membership) answer from the tenant."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from yarl import URL

from bot.credential_types import WriteOutcomeUnknown, WriteRefused, WriteThrottled
from bot.domain import GraphMode
from bot.fakegraph import FakeGraph, LocalTokenCredential, Snapshot, load_snapshot, sample_snapshot_path
from bot.graph import GraphDirectory, GraphHttp, build_graph_client
from bot.graph.writes import GraphWrites
from tests.tenant_edits import NIGHTLY_EXPORT, PAYMENTS_APP, Json, edited

PAYMENTS_OBJECT = "ec7ac8ad-1b2b-406b-aae1-2c972399d29d"
NIGHTLY_OBJECT = "8c0a70a7-a845-47f9-953a-5154281fa6f5"  # has the sample's 90-day policy assigned
BUILD_AGENT_OBJECT = "5df6f817-b099-4bcf-a0ec-6db25097c040"
APPROVERS = "5e8c1a47-2b9d-4f36-a0e7-c4d2f9b6e813"  # contains security-team and Priya Raman
SECURITY_TEAM = "c2f7a9d1-6e4b-4a83-b5c0-8d1e3f7a2b96"  # contains Lena Fischer and Sam Keller
LENA = "3b7e2c91-4f6a-4d8b-9e15-72c0a8f4d3e6"
PRIYA = "08d01bfe-b36f-4c48-8fee-8d493ce468a1"
JONAS = "a15f09c8-58b8-413f-8ef5-b163cef350e7"
ADD_PASSWORD = r"/addPassword$"


@dataclass
class Tenant:
    graph: FakeGraph
    writes: GraphWrites
    directory: GraphDirectory


async def _tenant(snapshot: Snapshot, *, client_timeout: float = 30.0) -> AsyncIterator[Tenant]:
    async with FakeGraph(snapshot) as graph, GraphHttp(graph.base_url, LocalTokenCredential()) as http:
        client = build_graph_client(graph.base_url, LocalTokenCredential(), timeout=client_timeout)
        yield Tenant(graph, GraphWrites(client), GraphDirectory(http, GraphMode.SNAPSHOT, max_retries=0))


@pytest.fixture
async def tenant() -> AsyncIterator[Tenant]:
    async for value in _tenant(load_snapshot(sample_snapshot_path())):
        yield value


def _posts(graph: FakeGraph, pattern: str = "addPassword") -> int:
    return sum(1 for r in graph.requests if r.method == "POST" and r.path.endswith(pattern))


async def test_add_password_answers_the_value_once_and_later_reads_see_the_new_secret(tenant: Tenant) -> None:
    end = datetime.now(UTC) + timedelta(days=30)
    added = await tenant.writes.add_password(PAYMENTS_OBJECT, "secretbot-rot-42", end)

    value = added.value.reveal()
    assert len(value) == 40 and value[3:6] == "8Q~"  # today's secret format
    assert added.hint == value[:3]
    assert added.display_name == "secretbot-rot-42"
    assert abs((added.end - end).total_seconds()) < 1
    assert value not in repr(added) and value not in str(added)

    lookup = await tenant.directory.lookup(PAYMENTS_APP)
    assert lookup.application is not None
    new = next(c for c in lookup.application.credentials if c.key_id == added.key_id)
    assert (new.display_name, new.hint) == ("secretbot-rot-42", added.hint)
    served = json.dumps([app for app in tenant.graph.snapshot.applications])
    assert value not in served  # the tenant keeps no value; only the answer to addPassword had it


async def test_add_password_by_app_id_works_like_graph_alternate_key(tenant: Tenant) -> None:
    async with GraphHttp(tenant.graph.base_url, LocalTokenCredential()) as http:
        body = json.dumps({"passwordCredential": {"displayName": "by-app-id"}}).encode()
        reply = await http.post(f"/v1.0/applications(appId='{PAYMENTS_APP}')/addPassword", body)
    answer = json.loads(reply.body)
    assert reply.status == 200
    assert answer["secretText"] and answer["hint"] == answer["secretText"][:3]
    start, end = (datetime.fromisoformat(answer[k]) for k in ("startDateTime", "endDateTime"))
    assert (end - start).days == 730  # Graph's default: two years
    assert answer["keyId"] in await tenant.writes.password_key_ids(PAYMENTS_OBJECT)


async def test_remove_password_removes_the_secret_and_a_repeat_counts_as_done(tenant: Tenant) -> None:
    added = await tenant.writes.add_password(PAYMENTS_OBJECT, "to-remove", datetime.now(UTC) + timedelta(days=1))
    await tenant.writes.remove_password(PAYMENTS_OBJECT, added.key_id)
    assert added.key_id not in await tenant.writes.password_key_ids(PAYMENTS_OBJECT)

    await tenant.writes.remove_password(PAYMENTS_OBJECT, added.key_id)  # the answer was lost; sent again
    assert _posts(tenant.graph, "removePassword") == 2


async def test_removing_from_an_unknown_app_is_refused(tenant: Tenant) -> None:
    with pytest.raises(WriteRefused) as refused:
        await tenant.writes.remove_password(
            "11111111-2222-3333-4444-555555555555", "62f746b4-84e6-4ceb-95bd-447e7184d454"
        )
    assert refused.value.status == 404 and refused.value.code == "Request_ResourceNotFound"


async def test_a_lifetime_policy_refuses_a_longer_secret_with_graphs_error(tenant: Tenant) -> None:
    before = await tenant.writes.password_key_ids(NIGHTLY_OBJECT)
    with pytest.raises(WriteRefused) as refused:
        await tenant.writes.add_password(NIGHTLY_OBJECT, "too-long", datetime.now(UTC) + timedelta(days=180))

    assert refused.value.status == 400
    assert refused.value.code == "CredentialInvalidLifetimeAsPerAppPolicy"
    assert "e1d4b7a2-8c3f-4e65-9a10-b2f6d8c4e097" in str(refused.value)
    assert await tenant.writes.password_key_ids(NIGHTLY_OBJECT) == before


async def test_the_policy_read_back_caps_the_end_so_graph_accepts_it(tenant: Tenant) -> None:
    policy = await tenant.writes.password_policy(NIGHTLY_OBJECT)
    assert policy.passwords_allowed and policy.max_lifetime == timedelta(days=90)
    assert policy.policy_id == "e1d4b7a2-8c3f-4e65-9a10-b2f6d8c4e097"

    start = datetime.now(UTC)
    end = policy.cap(start, start + timedelta(days=180))
    added = await tenant.writes.add_password(NIGHTLY_OBJECT, "capped", end)
    assert timedelta(days=89) < added.end - start < timedelta(days=90)
    assert (await tenant.writes.password_policy(PAYMENTS_OBJECT)).max_lifetime is None  # no policy there


def _tenant_default(rules: list[Json], *, enabled: bool = True) -> Json:
    return {"isEnabled": enabled, "applicationRestrictions": {"passwordCredentials": rules, "keyCredentials": []}}


@pytest.mark.parametrize(
    ("rules", "code"),
    [
        ([{"restrictionType": "passwordLifetime", "maxLifetime": "P30D"}], "CredentialInvalidLifetimeAsPerAppPolicy"),
        ([{"restrictionType": "passwordAddition"}], "CredentialTypeNotAllowedAsPerAppPolicy"),
    ],
)
async def test_the_tenant_default_policy_applies_where_no_policy_is_assigned(rules: list[Json], code: str) -> None:
    def edit(data: Json) -> None:
        data["defaultAppManagementPolicy"] = _tenant_default(rules)

    async for tenant in _tenant(edited(edit)):
        with pytest.raises(WriteRefused) as refused:
            await tenant.writes.add_password(PAYMENTS_OBJECT, "x", datetime.now(UTC) + timedelta(days=60))
        assert refused.value.code == code
        policy = await tenant.writes.password_policy(PAYMENTS_OBJECT)
        assert policy.policy_id == "00000000-0000-0000-0000-000000000000"
        # The assigned 90-day policy replaces the default for nightly-export: additions stay allowed there.
        nightly = await tenant.writes.password_policy(NIGHTLY_OBJECT)
        assert nightly.passwords_allowed and nightly.max_lifetime == timedelta(days=90)


async def test_restrictions_spare_apps_created_before_their_date_and_disabled_ones() -> None:
    rules = [
        {"restrictionType": "passwordAddition", "restrictForAppsCreatedAfterDateTime": "2030-01-01T00:00:00Z"},
        {"restrictionType": "passwordLifetime", "maxLifetime": "P7D", "state": "disabled"},
    ]

    def edit(data: Json) -> None:
        data["defaultAppManagementPolicy"] = _tenant_default(rules)

    async for tenant in _tenant(edited(edit)):
        policy = await tenant.writes.password_policy(PAYMENTS_OBJECT)
        assert policy.passwords_allowed and policy.max_lifetime is None
        await tenant.writes.add_password(PAYMENTS_OBJECT, "allowed", datetime.now(UTC) + timedelta(days=60))


async def test_unreadable_policies_are_reported_not_guessed(tenant: Tenant) -> None:
    tenant.graph.add_fault(r"/policies/", 403)
    policy = await tenant.writes.password_policy(PAYMENTS_OBJECT)
    assert policy.missing_permission == "Policy.Read.All"
    assert policy.max_lifetime is None


async def test_a_throttled_add_password_is_reported_once_and_adds_nothing(tenant: Tenant) -> None:
    before = await tenant.writes.password_key_ids(PAYMENTS_OBJECT)
    tenant.graph.add_fault(ADD_PASSWORD, 429, retry_after=7, times=1)
    with pytest.raises(WriteThrottled) as throttled:
        await tenant.writes.add_password(PAYMENTS_OBJECT, "rot-1", datetime.now(UTC) + timedelta(days=30))
    assert throttled.value.retry_after == 7
    assert _posts(tenant.graph) == 1  # kiota's retry handler would have sent it again
    assert await tenant.writes.password_key_ids(PAYMENTS_OBJECT) == before


async def test_a_503_after_the_write_says_the_outcome_is_unknown_and_the_marker_finds_it(tenant: Tenant) -> None:
    tenant.graph.add_fault(ADD_PASSWORD, 503, applied=True, times=1)
    with pytest.raises(WriteOutcomeUnknown):
        await tenant.writes.add_password(PAYMENTS_OBJECT, "secretbot-rot-7", datetime.now(UTC) + timedelta(days=30))
    assert _posts(tenant.graph) == 1
    names = list((await tenant.writes.password_key_ids(PAYMENTS_OBJECT)).values())
    assert names.count("secretbot-rot-7") == 1  # added once, although the answer was an error


async def test_an_add_password_without_an_answer_in_time_is_unknown_not_repeated() -> None:
    async for tenant in _tenant(load_snapshot(sample_snapshot_path()), client_timeout=0.5):
        tenant.graph.add_fault(ADD_PASSWORD, 504, applied=True, delay=2.0, times=1)
        with pytest.raises(WriteOutcomeUnknown, match="no answer in time"):
            await tenant.writes.add_password(
                BUILD_AGENT_OBJECT, "secretbot-rot-9", datetime.now(UTC) + timedelta(days=9)
            )
        assert _posts(tenant.graph) == 1
        assert "secretbot-rot-9" in (await tenant.writes.password_key_ids(BUILD_AGENT_OBJECT)).values()


async def test_membership_is_transitive_through_nested_groups(tenant: Tenant) -> None:
    assert await tenant.writes.is_member_transitively(LENA, APPROVERS)  # via security-team
    assert await tenant.writes.is_member_transitively(PRIYA, APPROVERS)  # directly
    assert not await tenant.writes.is_member_transitively(PRIYA, SECURITY_TEAM)
    assert not await tenant.writes.is_member_transitively(JONAS, APPROVERS)
    assert not await tenant.writes.is_member_transitively("11111111-2222-3333-4444-555555555555", APPROVERS)
    assert await tenant.writes.member_groups(LENA, [APPROVERS, SECURITY_TEAM]) == {APPROVERS, SECURITY_TEAM}


async def test_a_chat_users_email_finds_the_entra_user_by_mail_then_upn(tenant: Tenant) -> None:
    lena = await tenant.writes.user_by_email("Lena.Fischer@northwind-ops.example")  # her mail; UPN differs
    assert lena is not None and lena.id == LENA
    sam = await tenant.writes.user_by_email("sam.keller@northwind-ops.example")  # no mail, UPN only
    assert sam is not None and sam.display_name == "Sam Keller"
    assert await tenant.writes.user_by_email("nobody@northwind-ops.example") is None
    assert await tenant.writes.user_by_email("x' or 1 eq 1 or mail eq 'y@z.example") is None
    assert await tenant.writes.user_by_email("not an email") is None


async def test_the_snapshot_keeps_graphs_shapes_for_policies(tenant: Tenant) -> None:
    async with GraphHttp(tenant.graph.base_url, LocalTokenCredential()) as http:
        reply = await http.get(
            URL(tenant.graph.base_url + "/v1.0/policies/defaultAppManagementPolicy"), max_bytes=10_000
        )
        default = json.loads(reply.body)
        reply = await http.get(
            URL(tenant.graph.base_url + f"/v1.0/applications(appId='{NIGHTLY_EXPORT}')/appManagementPolicies"),
            max_bytes=10_000,
        )
        assigned = json.loads(reply.body)["value"]
    assert default["isEnabled"] is False and default["id"] == "00000000-0000-0000-0000-000000000000"
    assert [p["restrictions"]["passwordCredentials"][0]["maxLifetime"] for p in assigned] == ["P90D"]
    assert "appliesTo" not in assigned[0]  # a navigation property: not served inline


async def test_a_personal_account_app_with_two_secrets_takes_no_third(tenant: Tenant) -> None:
    consumer_portal = "603ae5da-4663-4a99-a910-fc8d0f06e36b"  # AzureADandPersonalMicrosoftAccount, 2 of 2
    with pytest.raises(WriteRefused, match="maximum of 2"):
        await tenant.writes.add_password(consumer_portal, "third", datetime.now(UTC) + timedelta(days=30))
    assert len(await tenant.writes.password_key_ids(consumer_portal)) == 2


async def test_msgraph_sdk_reads_the_new_shapes_with_nothing_left_over(tenant: Tenant) -> None:
    # Anything msgraph-sdk does not know lands in additional_data: the fake serves only Graph's properties.
    client = build_graph_client(tenant.graph.base_url, LocalTokenCredential())
    default = await client.policies.default_app_management_policy.get()
    assigned = await client.applications.by_application_id(NIGHTLY_OBJECT).app_management_policies.get()
    users = await client.users.get()
    assert default is not None and default.application_restrictions is not None
    assert assigned is not None and assigned.value and users is not None and users.value
    policy = assigned.value[0]
    assert policy.restrictions is not None and policy.restrictions.password_credentials
    leftovers = [
        default.application_restrictions.additional_data,
        policy.additional_data,
        policy.restrictions.additional_data,
        policy.restrictions.password_credentials[0].additional_data,
        *(user.additional_data for user in users.value),
    ]
    assert leftovers == [{}] * len(leftovers)
