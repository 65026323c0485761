"""The Graph transport: the diagnosis's `$batch` over aiohttp, and msgraph-sdk kept for single objects.

Both go over real HTTP to the fake Graph; the token comes from an azure-identity-shaped credential.
"""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from bot.domain import GraphMode
from bot.fakegraph import FakeGraph, LocalTokenCredential, load_snapshot, sample_snapshot_path
from bot.fakegraph.samples import sample_errors, sample_reference_time
from bot.graph import GraphDirectory, GraphHttp, build_graph_client
from bot.graph.transport import TOKEN_RENEW_BEFORE
from handlers.diagnose import diagnose
from tests.conftest import SampleTenant

PAYMENTS_APP = "dc36fc90-2248-4d70-aca4-a1a9f5b19f71"
PASTE = next(s for s in sample_errors() if s.cause == "secret_mismatch").text


class ScopeRecorder(LocalTokenCredential):
    """The local dummy credential, noting the scopes it was asked for and handing out short-lived tokens."""

    def __init__(self, lifetime: int = 3600) -> None:
        super().__init__(lifetime=lifetime)
        self.scopes: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        await asyncio.sleep(0.01)  # a token endpoint takes a moment: concurrent callers must share one request
        return await super().get_token(*scopes, **kwargs)


async def test_one_token_serves_many_concurrent_batches(sample_tenant: SampleTenant) -> None:
    credential = ScopeRecorder()
    async with GraphHttp(sample_tenant.graph.base_url, credential) as http:
        directory = GraphDirectory(http, GraphMode.SNAPSHOT)
        await asyncio.gather(*(directory.lookup(PAYMENTS_APP) for _ in range(20)))
    assert credential.token_requests == 1
    assert sample_tenant.graph.round_trips == 20
    assert {r.headers.get("Authorization") for r in sample_tenant.graph.requests if not r.inner} == {
        "Bearer fakegraph-local-token"
    }


async def test_a_token_about_to_expire_is_renewed(sample_tenant: SampleTenant) -> None:
    credential = ScopeRecorder(lifetime=int(TOKEN_RENEW_BEFORE) - 1)  # always inside the renewal margin
    async with GraphHttp(sample_tenant.graph.base_url, credential) as http:
        directory = GraphDirectory(http, GraphMode.SNAPSHOT)
        for _ in range(3):
            await directory.lookup(PAYMENTS_APP)
    assert credential.token_requests == 3


@pytest.mark.parametrize(
    ("base_url", "scope"),
    [
        ("https://graph.microsoft.com", "https://graph.microsoft.com/.default"),
        ("https://graph.microsoft.us/", "https://graph.microsoft.us/.default"),
        ("https://microsoftgraph.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn/.default"),
    ],
)
async def test_the_token_is_asked_for_the_graph_host_in_use(base_url: str, scope: str) -> None:
    # A national cloud issues tokens for its own Graph only. Nothing is sent: the port is refused.
    credential = ScopeRecorder()
    async with GraphHttp(base_url, credential) as http:
        http.base_url = "http://127.0.0.1:9"  # a closed local port, after the scope was chosen from the host
        directory = GraphDirectory(http, GraphMode.LIVE, max_retries=0)
        result = await diagnose(PASTE, directory=directory, now=sample_reference_time())
    assert credential.scopes == [(scope,)]
    assert any("could not be reached" in note for note in result.notes)


async def test_a_refused_batch_names_application_read_all(sample_tenant: SampleTenant) -> None:
    sample_tenant.graph.add_fault(r"/\$batch$", 403)
    result = await diagnose(PASTE, directory=sample_tenant.directory, now=sample_reference_time())
    assert result.graph.missing_permissions == ("Application.Read.All",)
    assert [e.code for e in result.errors] == [7000215]  # the paste is still explained


async def test_a_bare_app_id_is_one_json_post_to_v1(sample_tenant: SampleTenant) -> None:
    await diagnose(PAYMENTS_APP, directory=sample_tenant.directory, now=sample_reference_time())
    [batch] = [r for r in sample_tenant.graph.requests if not r.inner]
    assert (batch.method, batch.path) == ("POST", "/v1.0/$batch")
    assert batch.headers.get("Content-Type") == "application/json"


async def test_msgraph_sdk_client_still_reads_single_objects() -> None:
    # Kept for single objects and writes (addPassword needs the object id it returns).
    async with FakeGraph(load_snapshot(sample_snapshot_path())) as graph:
        client = build_graph_client(graph.base_url, LocalTokenCredential())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # msgraph's request builders, on first import
            app = await client.applications_with_app_id(PAYMENTS_APP).get()
        assert app is not None and app.display_name == "payments-api"
        assert [r.path for r in graph.requests] == [f"/v1.0/applications(appId='{PAYMENTS_APP}')"]
