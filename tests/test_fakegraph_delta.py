"""The fake Graph's delta queries and credential activity report, over HTTP, read as Graph's own JSON
and through msgraph-sdk's models (so the shapes are the ones Microsoft's SDK expects)."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.applications.delta.delta_request_builder import DeltaRequestBuilder

from bot.fakegraph import FakeGraph, Snapshot, load_snapshot, sample_snapshot_path
from bot.fakegraph.synthetic import synthetic_snapshot
from tests.tenant_edits import PAYMENTS_APP, add_secret, edited, remove_application, remove_secret
from tests.test_fakegraph import graph_client

pytestmark = pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning")

SELECT = "id,appId,displayName,passwordCredentials,keyCredentials"
SHIPPING_API = "c7d2e9f4-3a1b-4c5d-8e6f-1a2b3c4d5e6f"


@pytest.fixture(scope="module")
def sample() -> Snapshot:
    return load_snapshot(sample_snapshot_path())


@pytest.fixture
async def graph(sample: Snapshot) -> AsyncIterator[FakeGraph]:
    async with FakeGraph(sample) as running:
        yield running


@pytest.fixture
async def raw(graph: FakeGraph) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=graph.base_url, headers={"Authorization": "Bearer test"}) as http:
        yield http


async def round_of(raw: httpx.AsyncClient, url: str) -> tuple[list[dict[str, Any]], str, int]:
    """Every object of one delta round, its delta link, and the pages it took."""
    objects, pages = [], 0
    while True:
        response = await raw.get(url)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        objects.extend(body["value"])
        if "@odata.deltaLink" in body:
            assert "@odata.nextLink" not in body
            return objects, body["@odata.deltaLink"], pages
        url = body["@odata.nextLink"]


async def test_a_full_round_pages_every_object_once_and_ends_with_a_delta_link() -> None:
    async with (
        FakeGraph(synthetic_snapshot(2_500)) as graph,
        httpx.AsyncClient(base_url=graph.base_url, headers={"Authorization": "Bearer t"}) as raw,
    ):
        objects, link, pages = await round_of(raw, f"/v1.0/applications/delta?$select={SELECT}&$top=999")
    assert pages == 3
    assert len({obj["id"] for obj in objects}) == len(objects) == 2_500
    assert "$deltatoken=" in link and link.startswith(graph.base_url + "/v1.0/applications/delta?")
    assert set(objects[0]) == set(SELECT.split(","))


async def test_select_always_brings_the_id_and_top_is_capped_at_999(raw: httpx.AsyncClient) -> None:
    body = (await raw.get("/v1.0/servicePrincipals/delta?$select=displayName&$top=2")).json()
    assert [set(sp) for sp in body["value"]] == [{"id", "displayName"}] * 2
    assert "@odata.nextLink" in body
    too_many = await raw.get("/v1.0/applications/delta?$select=id&$top=1000")
    assert too_many.status_code == 400


async def test_an_unchanged_tenant_answers_a_delta_link_with_nothing(raw: httpx.AsyncClient) -> None:
    _, link, _ = await round_of(raw, f"/v1.0/applications/delta?$select={SELECT}")
    objects, next_link, pages = await round_of(raw, link)
    assert (objects, pages) == ([], 1)
    assert "$deltatoken=" in next_link


async def test_a_later_round_returns_only_what_changed_with_the_changed_properties(
    graph: FakeGraph, raw: httpx.AsyncClient
) -> None:
    _, link, _ = await round_of(raw, f"/v1.0/applications/delta?$select={SELECT}")
    moment = datetime(2026, 11, 20, tzinfo=UTC)
    graph.use_snapshot(
        edited(
            add_secret(PAYMENTS_APP, "ci-2027", "Pq1", moment, moment.replace(year=2027)),
            remove_application(SHIPPING_API),
        )
    )
    objects, _, _ = await round_of(raw, link)
    changed = [obj for obj in objects if "@removed" not in obj]
    removed = [obj for obj in objects if "@removed" in obj]
    assert len(changed) == 1 and set(changed[0]) == {"id", "passwordCredentials"}  # only what changed
    assert [c["displayName"] for c in changed[0]["passwordCredentials"]] == ["ci-2025", "ci-2026", "ci-2027"]
    assert removed == [{"id": "3e8a1f52-6c0d-4b7e-9a21-5f4c8d2e6b13", "@removed": {"reason": "deleted"}}]


async def test_changes_after_a_removed_secret_are_seen_from_the_older_link_too(
    graph: FakeGraph, raw: httpx.AsyncClient
) -> None:
    _, first_link, _ = await round_of(raw, f"/v1.0/applications/delta?$select={SELECT}")
    graph.use_snapshot(edited(remove_secret(PAYMENTS_APP, "ci-2025")))
    _, second_link, _ = await round_of(raw, first_link)
    graph.use_snapshot(edited(remove_secret(PAYMENTS_APP, "ci-2025"), remove_secret(PAYMENTS_APP, "ci-2026")))
    from_second, _, _ = await round_of(raw, second_link)
    from_first, _, _ = await round_of(raw, first_link)
    assert [obj["passwordCredentials"] for obj in from_second] == [[]]
    assert [obj["passwordCredentials"] for obj in from_first] == [[]]


async def test_an_expired_delta_link_is_refused_as_graph_refuses_it(graph: FakeGraph, raw: httpx.AsyncClient) -> None:
    _, link, _ = await round_of(raw, f"/v1.0/servicePrincipals/delta?$select={SELECT}")
    graph.expire_delta_tokens()
    refused = await raw.get(link)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "syncStateNotFound" and "expired" in error["message"]
    garbage = await raw.get("/v1.0/applications/delta?$deltatoken=not-a-token")
    assert garbage.status_code == 400 and garbage.json()["error"]["code"] == "syncStateNotFound"
    _, fresh, _ = await round_of(raw, f"/v1.0/servicePrincipals/delta?$select={SELECT}")  # a full round still works
    assert (await raw.get(fresh)).status_code == 200


async def test_faults_reach_delta_pages(graph: FakeGraph, raw: httpx.AsyncClient) -> None:
    graph.add_fault(r"/applications/delta", 429, times=1, retry_after=2)
    throttled = await raw.get("/v1.0/applications/delta?$select=id")
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "2"
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert (await raw.get("/v1.0/applications/delta?$select=id")).status_code == 200


async def test_msgraph_reads_a_delta_page_and_its_delta_link(graph: FakeGraph) -> None:
    query = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(select=["id", "appId", "passwordCredentials"])
    async with graph_client(graph.base_url) as client:
        page = await client.applications.delta.get(RequestConfiguration(query_parameters=query))
    assert page is not None and page.value is not None
    assert page.odata_delta_link is not None and page.odata_next_link is None
    payments = next(app for app in page.value if app.app_id == PAYMENTS_APP)
    assert {str(c.key_id) for c in payments.password_credentials or []} >= {"62f746b4-84e6-4ceb-95bd-447e7184d454"}


async def test_credential_activity_report_has_the_last_successful_sign_in_per_key(raw: httpx.AsyncClient) -> None:
    body = (await raw.get("/beta/reports/appCredentialSignInActivities")).json()
    by_key = {record["keyId"]: record for record in body["value"]}
    ci_2026 = by_key["b61e6ba5-3682-4dd6-b804-69b84b2d451c"]  # payments-api's new secret signs in from 192.0.2.15
    assert ci_2026["appId"] == PAYMENTS_APP and ci_2026["credentialOrigin"] == "application"
    assert ci_2026["keyType"] == "clientSecret" and ci_2026["expirationDateTime"] == "2027-09-15T00:00:00Z"
    assert ci_2026["signInActivity"]["lastSignInDateTime"].startswith("2026-11-20T")
    assert "62f746b4-84e6-4ceb-95bd-447e7184d454" not in by_key  # ci-2025 only ever failed
    assert (await raw.get("/v1.0/reports/appCredentialSignInActivities")).status_code == 404


async def test_credential_activity_report_needs_a_premium_tenant(sample: Snapshot) -> None:
    data = load_snapshot(sample_snapshot_path())
    without_logs = dataclasses.replace(data, sign_ins=(), has_sign_ins=False)
    async with (
        FakeGraph(without_logs) as graph,
        httpx.AsyncClient(base_url=graph.base_url, headers={"Authorization": "Bearer t"}) as raw,
    ):
        refused = await raw.get("/beta/reports/appCredentialSignInActivities")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
