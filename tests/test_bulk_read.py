"""The whole-tenant reader against the fake Graph serving a generated tenant, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from bot.domain import DirectoryUnavailable, GraphAuthFailed, PermissionDenied, Throttled
from bot.fakegraph import FakeGraph, LocalTokenCredential
from bot.fakegraph.synthetic import synthetic_snapshot
from bot.graph.bulk import BulkReader

APPS = 2500  # three pages of 999
TENANT = synthetic_snapshot(APPS)
APP_FIELDS = ["id", "appId", "displayName", "passwordCredentials", "keyCredentials"]


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    async with FakeGraph(TENANT) as graph:
        yield graph


def reader(graph: FakeGraph, **options: Any) -> BulkReader:
    return BulkReader(graph.base_url, LocalTokenCredential(), **{"retry_delay": 0.01, **options})


async def read_all(graph: FakeGraph, collection: str = "applications", **options: Any) -> list[dict[str, Any]]:
    async with reader(graph, **options) as bulk:
        return [record async for record in bulk.records(collection, APP_FIELDS)]


def page_requests(graph: FakeGraph, collection: str = "applications") -> list[str]:
    return [r.query_string for r in graph.requests if r.path == f"/v1.0/{collection}"]


async def test_paging_follows_next_link_and_yields_every_app_once_with_only_the_selected_fields(
    graph: FakeGraph,
) -> None:
    records = await read_all(graph)

    assert sorted(record["id"] for record in records) == sorted(app["id"] for app in TENANT.applications)
    assert all(set(record) == set(APP_FIELDS) for record in records)
    queries = page_requests(graph)
    assert len(queries) == 3
    assert all("$top=999" in query and "$select=id,appId,displayName" in query for query in queries)
    assert ["$skiptoken=" in query for query in queries] == [False, True, True]
    by_id = {app["id"]: app for app in TENANT.applications}
    assert all(record["passwordCredentials"] == by_id[record["id"]]["passwordCredentials"] for record in records)


async def test_service_principals_are_read_the_same_way(graph: FakeGraph) -> None:
    async with reader(graph) as bulk:
        records = [sp async for sp in bulk.records("servicePrincipals", ["id", "appId", "keyCredentials"])]

    assert sorted(sp["appId"] for sp in records) == sorted(app["appId"] for app in TENANT.applications)
    assert len(page_requests(graph, "servicePrincipals")) == 3


async def test_records_are_plain_dicts_not_msgraph_models(graph: FakeGraph) -> None:
    records = await read_all(graph)

    assert {type(record) for record in records} == {dict}
    credentials = [cred for record in records for cred in record["passwordCredentials"] + record["keyCredentials"]]
    assert credentials
    assert {type(cred) for cred in credentials} == {dict}
    assert all(isinstance(cred["endDateTime"], str) for cred in credentials)  # Graph's text, not datetime


async def test_a_filter_is_passed_to_graph(graph: FakeGraph) -> None:
    async with reader(graph) as bulk:
        records = [r async for r in bulk.records("applications", ["displayName"], filter="displayName eq 'app-000042'")]

    assert records == [{"displayName": "app-000042"}]


async def test_owners_come_with_expand_in_graphs_smaller_pages(graph: FakeGraph) -> None:
    async with reader(graph) as bulk:
        records = [r async for r in bulk.records("applications", ["id"], expand="owners($select=id,userPrincipalName)")]

    owners = {app_id: [o["id"] for o in objs] for app_id, objs in TENANT.owners.items()}
    assert {r["id"]: [o["id"] for o in r["owners"]] for r in records} == owners
    assert any(r["owners"] for r in records)
    assert all(set(o) == {"@odata.type", "id", "userPrincipalName"} for r in records for o in r["owners"])
    assert len(page_requests(graph)) == 25  # Graph pages $expand by 100 whatever $top asks


async def test_a_reader_that_stops_early_does_not_fetch_the_rest(graph: FakeGraph) -> None:
    async with reader(graph) as bulk:
        pages = bulk.pages("applications", ["id"])
        first = await anext(pages)
        await pages.aclose()

    assert len(first) == 999
    assert len(page_requests(graph)) <= 2  # this page and at most the next one, already on its way


async def test_a_429_with_retry_after_is_retried_and_the_read_completes(graph: FakeGraph) -> None:
    graph.add_fault(r"^/v1\.0/applications$", 429, times=1, retry_after=0)
    # With a back-off base this long the read could only finish by following Retry-After: 0.
    records = await read_all(graph, retry_delay=1000.0)

    assert len(records) == APPS
    assert len(page_requests(graph)) == 4
    assert [r.status for r in graph.requests][:2] == [429, 200]


async def test_a_retry_after_given_as_an_http_date_is_honoured(graph: FakeGraph) -> None:
    graph.add_fault(r"^/v1\.0/applications$", 503, times=1, retry_after=1, retry_after_as_date=True)
    records = await read_all(graph, retry_delay=1000.0)

    assert len(records) == APPS


async def test_a_504_without_retry_after_is_retried_after_a_back_off(graph: FakeGraph) -> None:
    graph.add_fault(r"^/v1\.0/applications$", 504, times=2)
    records = await read_all(graph)

    assert len(records) == APPS
    assert [r.status for r in graph.requests][:3] == [504, 504, 200]


async def test_throttling_that_does_not_end_raises_throttled_after_the_bounded_retries(graph: FakeGraph) -> None:
    graph.add_fault(r"^/v1\.0/applications$", 429, retry_after=0)
    with pytest.raises(Throttled) as raised:
        await read_all(graph, max_retries=2)

    assert raised.value.round_trips == 3
    assert len(graph.requests) == 3


async def test_403_names_the_permission_the_read_needs(graph: FakeGraph) -> None:
    graph.add_fault(r"^/v1\.0/applications$", 403)
    with pytest.raises(PermissionDenied) as raised:
        await read_all(graph)

    assert raised.value.permission == "Application.Read.All"
    assert "Application.Read.All" in str(raised.value)
    assert len(graph.requests) == 1  # a refusal is not retried


async def test_401_is_the_bots_own_credential_not_a_permission(graph: FakeGraph) -> None:
    graph.add_fault(r"^/v1\.0/applications$", 401)
    with pytest.raises(GraphAuthFailed) as raised:
        await read_all(graph, credential_source="GRAPH_CLIENT_ID")

    assert "GRAPH_CLIENT_ID" in str(raised.value)
    assert "not a missing permission" in str(raised.value)


class RefusedCredential:
    """What azure-identity raises when Entra refuses the client secret."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        raise ClientAuthenticationError("AADSTS7000215: Invalid client secret provided. Trace ID: 1234")

    async def close(self) -> None:
        pass


async def test_no_token_is_reported_as_the_bots_credential_and_nothing_is_sent(graph: FakeGraph) -> None:
    with pytest.raises(GraphAuthFailed) as raised:
        async with BulkReader(graph.base_url, RefusedCredential()) as bulk:  # type: ignore[arg-type]
            await anext(bulk.records("applications", ["id"]))

    assert "AADSTS7000215" in str(raised.value)
    assert "Trace ID" not in str(raised.value)
    assert graph.requests == []


async def test_an_unknown_property_is_a_clear_error_not_a_retry(graph: FakeGraph) -> None:
    with pytest.raises(DirectoryUnavailable, match="HTTP 400"):
        async with reader(graph) as bulk:
            await anext(bulk.records("applications", ["noSuchProperty"]))

    assert len(graph.requests) == 1


async def test_cached_pages_serve_the_same_records(graph: FakeGraph) -> None:
    graph.cache_pages()
    first = await read_all(graph)
    second = await read_all(graph)

    assert first == second
    assert len(first) == APPS


async def test_one_token_serves_every_page(graph: FakeGraph) -> None:
    credential = LocalTokenCredential()
    async with BulkReader(graph.base_url, credential) as bulk:
        assert len([r async for r in bulk.records("applications", ["id"])]) == APPS

    assert credential.token_requests == 1
    assert {r.headers["Authorization"] for r in graph.requests} == {"Bearer fakegraph-local-token"}


@asynccontextmanager
async def odd_graph(body: bytes) -> AsyncIterator[tuple[str, list[str]]]:
    """A server answering every request with `body`: what a broken or hostile Graph might send."""
    seen: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(request.path_qs)
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}", seen
    finally:
        await runner.cleanup()


async def test_a_next_link_to_another_host_is_not_followed() -> None:
    page = b'{"value": [{"id": "1"}], "@odata.nextLink": "https://graph.example.net/v1.0/applications?$skiptoken=x"}'
    async with odd_graph(page) as (base_url, seen):
        with pytest.raises(DirectoryUnavailable, match="next-page link"):
            async with BulkReader(base_url, LocalTokenCredential()) as bulk:
                [r async for r in bulk.records("applications", ["id"])]

    assert len(seen) == 1


async def test_a_page_that_is_not_json_is_a_clear_error() -> None:
    async with odd_graph(b"<html>gateway</html>") as (base_url, _):
        with pytest.raises(DirectoryUnavailable, match="not JSON"):
            async with BulkReader(base_url, LocalTokenCredential()) as bulk:
                [r async for r in bulk.records("applications", ["id"])]


def test_the_synthetic_tenant_is_deterministic_and_realistic() -> None:
    again = synthetic_snapshot(APPS)

    assert again.applications == TENANT.applications
    assert synthetic_snapshot(APPS, seed=12).applications != TENANT.applications
    secrets = [len(app["passwordCredentials"]) for app in TENANT.applications]
    certificates = [len(app["keyCredentials"]) for app in TENANT.applications]
    assert set(secrets) == {0, 1, 2, 3}
    assert set(certificates) == {0, 1, 2}
    assert len({app["appId"] for app in TENANT.applications}) == APPS
