"""Honesty tests for the fake Graph: the real msgraph-sdk talks to it over HTTP, nothing is mocked."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

# msgraph-sdk and kiota emit DeprecationWarnings from class bodies, i.e. on import, not on use.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from kiota_http.middleware.options import RetryHandlerOption
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.generated.applications.applications_request_builder import ApplicationsRequestBuilder
    from msgraph.generated.applications_with_app_id.applications_with_app_id_request_builder import (
        ApplicationsWithAppIdRequestBuilder,
    )
    from msgraph.generated.models.application import Application
    from msgraph.generated.models.key_credential import KeyCredential
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError
    from msgraph.generated.models.password_credential import PasswordCredential
    from msgraph.generated.models.service_principal import ServicePrincipal
    from msgraph.generated.models.user import User
    from msgraph_core import GraphClientFactory

from bot.fakegraph import (
    FakeGraph,
    LocalTokenCredential,
    Snapshot,
    SnapshotError,
    load_snapshot,
    parse_snapshot,
    sample_snapshot_path,
)
from bot.fakegraph.odata import QueryError, parse_filter

TENANT_ID = "6f1c3a52-8d4e-4b7a-9c21-3e5f7a9b0c14"
PAYMENTS = "dc36fc90-2248-4d70-aca4-a1a9f5b19f71"
PAYMENTS_OBJECT = "ec7ac8ad-1b2b-406b-aae1-2c972399d29d"
EXPIRED_KEY = uuid.UUID("62f746b4-84e6-4ceb-95bd-447e7184d454")
CORRELATION = "3b9d2f61-5c7e-4a08-b1d3-8e2f6a4c9d70"
CERT_DAEMON = "7592b89f-f910-468a-baee-bb48936b7ac2"
LEGACY_SYNC = "543bcfbb-c9f2-4a8a-9ecf-958027801375"
VENDOR_CRM = "e465b1f1-ac59-47b6-8861-f3a5f201da49"
REPORTING_BOT = "04948682-4233-4b55-bff9-59b7c7fda173"
UNKNOWN_APP = "5a0c7e1d-2b3f-4c6d-8e9f-a1b2c3d4e5f6"
SP_EVENTS = "signInEventTypes/any(t: t eq 'servicePrincipal')"

# The same warnings fire when a request builder module is first imported during a call.
pytestmark = pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning")


# --- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample() -> Snapshot:
    return load_snapshot(sample_snapshot_path())


@pytest.fixture
async def graph(sample: Snapshot) -> AsyncIterator[FakeGraph]:
    async with FakeGraph(sample) as running:
        yield running


@asynccontextmanager
async def graph_client(base_url: str) -> AsyncIterator[GraphServiceClient]:
    """The graph.md §4.3 recipe: real middleware, explicit base_url (no trailing-slash "//")."""
    base = base_url + "/v1.0"
    http = GraphClientFactory.create_with_default_middleware(client=httpx.AsyncClient(base_url=base, http2=False))
    auth = AzureIdentityAuthenticationProvider(LocalTokenCredential(), scopes=["https://graph.microsoft.com/.default"])
    adapter = GraphRequestAdapter(auth, http)
    adapter.base_url = base
    try:
        yield GraphServiceClient(request_adapter=adapter)
    finally:
        await http.aclose()


@pytest.fixture
async def client(graph: FakeGraph) -> AsyncIterator[GraphServiceClient]:
    async with graph_client(graph.base_url) as graph_service_client:
        yield graph_service_client


@pytest.fixture
async def raw(graph: FakeGraph) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=graph.base_url, headers={"Authorization": "Bearer test"}) as http:
        yield http


def leftovers(value: object, where: str = "$") -> Iterator[str]:
    """Every property msgraph could not map to its model (it lands in `additional_data`)."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from leftovers(item, f"{where}[{index}]")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for key in getattr(value, "additional_data", None) or {}:
            yield f"{where}.{key}"
        for model_field in dataclasses.fields(value):
            if model_field.name not in ("additional_data", "backing_store"):
                yield from leftovers(getattr(value, model_field.name), f"{where}.{model_field.name}")


def clean(model: object) -> list[str]:
    # Graph sends @odata.context on every response and msgraph keeps it in the root's
    # additional_data (it has no field for it); anything else left over is a fake bug.
    return [path for path in leftovers(model) if path != "$.@odata.context"]


async def odata_error(awaitable: Any) -> ODataError:
    with pytest.raises(ODataError) as caught:
        await awaitable
    return caught.value


# --- object shapes through msgraph's own models ------------------------------------------------------


async def test_every_sample_application_deserializes_without_leftovers(
    client: GraphServiceClient, sample: Snapshot
) -> None:
    assert len(sample.applications) == 13
    for raw_app in sample.applications:
        app = await client.applications_with_app_id(raw_app["appId"]).get()
        assert isinstance(app, Application)
        assert clean(app) == [], raw_app["displayName"]
        assert (app.app_id, app.id, app.display_name) == (raw_app["appId"], raw_app["id"], raw_app["displayName"])
        assert all(isinstance(c, PasswordCredential) for c in app.password_credentials)
        assert all(isinstance(c, KeyCredential) and c.key is None for c in app.key_credentials)
        assert [c.key_id for c in app.password_credentials] == [
            uuid.UUID(c["keyId"]) for c in raw_app["passwordCredentials"]
        ]
        assert app.federated_identity_credentials is None  # a navigation property, never inline


async def test_service_principals_deserialize_and_carry_the_sample_facts(
    client: GraphServiceClient, sample: Snapshot
) -> None:
    for raw_sp in sample.service_principals:
        sp = await client.service_principals_with_app_id(raw_sp["appId"]).get()
        assert isinstance(sp, ServicePrincipal)
        assert clean(sp) == [], raw_sp["displayName"]
    disabled = await client.service_principals_with_app_id(REPORTING_BOT).get()
    assert disabled.account_enabled is False
    foreign = await client.service_principals_with_app_id(VENDOR_CRM).get()
    assert str(foreign.app_owner_organization_id) == "c0ffee00-1234-4abc-9def-0123456789ab"
    assert (await client.service_principals.by_service_principal_id(foreign.id).get()).app_id == VENDOR_CRM


async def test_owners_are_users_and_service_principals(client: GraphServiceClient) -> None:
    owners = await client.applications.by_application_id(PAYMENTS_OBJECT).owners.get()
    assert [type(owner) for owner in owners.value] == [User, User, ServicePrincipal]  # the bot owns it too
    assert [owner.display_name for owner in owners.value] == ["Priya Raman", "Jonas Berg", "secretbot"]
    assert clean(owners.value) == []


async def test_organization_is_built_from_the_tenant(client: GraphServiceClient) -> None:
    organizations = await client.organization.get()
    [org] = organizations.value
    assert org.id == TENANT_ID and clean(org) == []
    domains = {d.name: (d.is_default, d.is_initial) for d in org.verified_domains}
    assert domains == {"northwind-ops.onmicrosoft.com": (True, True), "northwind-ops.example": (False, False)}


async def test_federated_credentials_come_from_their_own_endpoint(client: GraphServiceClient) -> None:
    app = await client.applications_with_app_id(CERT_DAEMON).get()
    fics = await client.applications.by_application_id(app.id).federated_identity_credentials.get()
    [fic] = fics.value
    assert (fic.issuer, fic.subject, fic.audiences) == (
        "https://token.actions.githubusercontent.com",
        "repo:northwind/cert-daemon:ref:refs/heads/main",
        ["api://AzureADTokenExchange"],
    )
    assert clean(fics.value) == []


async def test_deleted_application_is_found_in_deleted_items_only(client: GraphServiceClient) -> None:
    builder = client.directory.deleted_items.graph_application  # the SDK sends ".../graph.application"
    query = builder.GraphApplicationRequestBuilderGetQueryParameters(filter=f"appId eq '{LEGACY_SYNC}'")
    deleted = await builder.get(RequestConfiguration(query_parameters=query))
    [app] = deleted.value
    assert app.display_name == "legacy-sync" and app.deleted_date_time.isoformat() == "2026-11-02T16:40:00+00:00"
    assert clean(deleted.value) == []
    error = await odata_error(client.applications_with_app_id(LEGACY_SYNC).get())
    assert error.response_status_code == 404


async def test_missing_application_is_request_resource_not_found(client: GraphServiceClient) -> None:
    error = await odata_error(client.applications_with_app_id(UNKNOWN_APP).get())
    assert error.response_status_code == 404
    assert error.error.code == "Request_ResourceNotFound"
    assert error.error.message == (
        f"Resource '{UNKNOWN_APP}' does not exist or one of its queried reference-property objects are not present."
    )
    sp_error = await odata_error(client.service_principals_with_app_id(UNKNOWN_APP).get())
    assert sp_error.error.code == "Request_ResourceNotFound"


def az_ad_app_list_record() -> dict[str, Any]:
    """One element of `az ad app list --all` output (Graph v1.0 shape, every key az prints)."""
    app_id = "2b8e4c1a-6f3d-4a7e-9c5b-1d0f8e7a6b54"
    return {
        "addIns": [],
        "api": {
            "acceptMappedClaims": None,
            "knownClientApplications": [],
            "oauth2PermissionScopes": [
                {
                    "adminConsentDescription": "Access the export API",
                    "adminConsentDisplayName": "Access export",
                    "id": "0f6b2e5d-3c1a-4e8b-9d7f-2a4c6e8b0d13",
                    "isEnabled": True,
                    "type": "User",
                    "userConsentDescription": None,
                    "userConsentDisplayName": None,
                    "value": "user_impersonation",
                }
            ],
            "preAuthorizedApplications": [],
            "requestedAccessTokenVersion": None,
        },
        "appId": app_id,
        "appRoles": [],
        "applicationTemplateId": None,
        "certification": None,
        "createdByAppId": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        "createdDateTime": "2025-02-03T10:11:12Z",
        "defaultRedirectUri": None,
        "deletedDateTime": None,
        "description": None,
        "disabledByMicrosoftStatus": None,
        "displayName": "az-exported-app",
        "groupMembershipClaims": None,
        "id": "7c1d9e3b-5a2f-4b6c-8e0d-3f5a7b9c1e24",
        "identifierUris": [f"api://{app_id}"],
        "info": {
            "logoUrl": None,
            "marketingUrl": None,
            "privacyStatementUrl": None,
            "supportUrl": None,
            "termsOfServiceUrl": None,
        },
        "isDeviceOnlyAuthSupported": None,
        "isDisabled": None,
        "isFallbackPublicClient": None,
        "keyCredentials": [
            {
                "customKeyIdentifier": "q83vEjRWeJCrze8SNFZ4kKvN7xI=",
                "displayName": "CN=az-exported-app",
                "endDateTime": "2027-02-03T10:00:00Z",
                "key": None,
                "keyId": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
                "startDateTime": "2025-02-03T10:00:00Z",
                "type": "AsymmetricX509Cert",
                "usage": "Verify",
            }
        ],
        "nativeAuthenticationApisEnabled": None,
        "notes": None,
        "oauth2RequirePostResponse": False,
        "optionalClaims": None,
        "parentalControlSettings": {"countriesBlockedForMinors": [], "legalAgeGroupRule": "Allow"},
        "passwordCredentials": [
            {
                "customKeyIdentifier": None,
                "displayName": "deploy",
                "endDateTime": "2026-08-03T10:11:12.345Z",
                "hint": "Qx~",
                "keyId": "4d3c2b1a-0f9e-4d8c-b7a6-5f4e3d2c1b0a",
                "secretText": None,
                "startDateTime": "2025-02-03T10:11:12.345Z",
            }
        ],
        "publicClient": {"redirectUris": []},
        "publisherDomain": "contoso-lab.onmicrosoft.com",
        "requestSignatureVerification": None,
        "requiredResourceAccess": [
            {
                "resourceAccess": [{"id": "e1fe6dd8-ba31-4d61-89e7-88639da4683d", "type": "Scope"}],
                "resourceAppId": "00000003-0000-0000-c000-000000000000",
            }
        ],
        "samlMetadataUrl": None,
        "serviceManagementReference": None,
        "servicePrincipalLockConfiguration": {
            "allProperties": True,
            "credentialsWithUsageSign": True,
            "credentialsWithUsageVerify": True,
            "identifierUris": False,  # live Graph sends it; undocumented, and not in msgraph's model
            "isEnabled": True,
            "tokenEncryptionKeyId": True,
        },
        "signInAudience": "AzureADMyOrg",
        "spa": {"redirectUris": []},
        "tags": [],
        "tokenEncryptionKeyId": None,
        "uniqueName": None,
        "verifiedPublisher": {"addedDateTime": None, "displayName": None, "verifiedPublisherId": None},
        "web": {
            "homePageUrl": None,
            "implicitGrantSettings": {"enableAccessTokenIssuance": False, "enableIdTokenIssuance": False},
            "logoutUrl": None,
            "redirectUriSettings": [{"index": None, "uri": "https://localhost:5001/signin-oidc"}],
            "redirectUris": ["https://localhost:5001/signin-oidc"],
        },
        "windows": {"redirectUris": []},  # a beta-only property: not Graph v1.0, dropped on load
    }


async def test_az_ad_app_list_export_is_served_through_msgraph_without_leftovers() -> None:
    record = az_ad_app_list_record()
    snapshot = parse_snapshot(json.loads(json.dumps([record])))  # a bare array, as az prints it
    assert snapshot.tenant_synthetic and snapshot.tenant["defaultDomain"] == "contoso-lab.onmicrosoft.com"
    assert "windows" not in snapshot.applications[0]
    async with FakeGraph(snapshot) as graph, graph_client(graph.base_url) as client:
        app = await client.applications_with_app_id(record["appId"]).get()
        assert clean(app) == []
        assert app.web.redirect_uri_settings[0].uri == "https://localhost:5001/signin-oidc"
        assert app.api.oauth2_permission_scopes[0].value == "user_impersonation"
        assert app.service_principal_lock_configuration.is_enabled is True  # its identifierUris was dropped
        thumbprint = base64.b64decode(record["keyCredentials"][0]["customKeyIdentifier"])
        assert app.key_credentials[0].custom_key_identifier == thumbprint and len(thumbprint) == 20
        assert app.password_credentials[0].hint == "Qx~"
        [org] = (await client.organization.get()).value
        assert org.id == snapshot.tenant["id"] == parse_snapshot([record]).tenant["id"]  # stable


# --- query options -----------------------------------------------------------------------------------


async def test_select_projects_to_the_named_properties(graph: FakeGraph, client: GraphServiceClient) -> None:
    query = ApplicationsWithAppIdRequestBuilder.ApplicationsWithAppIdRequestBuilderGetQueryParameters(
        select=["id", "appId", "passwordCredentials"]
    )
    app = await client.applications_with_app_id(PAYMENTS).get(RequestConfiguration(query_parameters=query))
    assert app.id == PAYMENTS_OBJECT and len(app.password_credentials) == 2
    assert app.display_name is None and app.sign_in_audience is None
    assert app.additional_data["@odata.context"].endswith(
        "$metadata#applications(id,appId,passwordCredentials)/$entity"
    )
    assert graph.requests[-1].query_string == "$select=id,appId,passwordCredentials"


async def test_select_of_an_unknown_property_is_a_400(client: GraphServiceClient) -> None:
    query = ApplicationsWithAppIdRequestBuilder.ApplicationsWithAppIdRequestBuilderGetQueryParameters(
        select=["appId", "secrets"]
    )
    error = await odata_error(
        client.applications_with_app_id(PAYMENTS).get(RequestConfiguration(query_parameters=query))
    )
    assert error.response_status_code == 400 and "'secrets'" in error.error.message


async def test_paging_follows_next_links_to_every_application_exactly_once() -> None:
    apps = [
        {"id": str(uuid.UUID(int=i + 1)), "appId": str(uuid.UUID(int=1000 + i)), "displayName": f"app-{i:02}"}
        for i in range(25)
    ]
    async with FakeGraph(parse_snapshot({"applications": apps})) as graph, graph_client(graph.base_url) as client:
        query = ApplicationsRequestBuilder.ApplicationsRequestBuilderGetQueryParameters(top=10, select=["id", "appId"])
        page = await client.applications.get(RequestConfiguration(query_parameters=query))
        seen, sizes = [], []
        while True:
            seen += [app.app_id for app in page.value]
            sizes.append(len(page.value))
            if page.odata_next_link is None:
                break
            assert page.odata_next_link.startswith(graph.base_url + "/v1.0/applications?")
            page = await client.applications.with_url(page.odata_next_link).get()
        assert sizes == [10, 10, 5]
        assert sorted(seen) == sorted(app["appId"] for app in apps) and len(set(seen)) == 25
        assert all(r.query_string.startswith("$select=id,appId&$top=10") for r in graph.requests)


async def test_filter_by_app_id_on_the_list(client: GraphServiceClient) -> None:
    query = ApplicationsRequestBuilder.ApplicationsRequestBuilderGetQueryParameters(filter=f"appId eq '{PAYMENTS}'")
    result = await client.applications.get(RequestConfiguration(query_parameters=query))
    assert [app.display_name for app in result.value] == ["payments-api"]


async def test_count_needs_consistency_level_eventual(raw: httpx.AsyncClient) -> None:
    refused = await raw.get("/v1.0/applications", params={"$count": "true", "$top": "1"})
    assert refused.status_code == 400
    counted = await raw.get(
        "/v1.0/applications", params={"$count": "true", "$top": "1"}, headers={"ConsistencyLevel": "eventual"}
    )
    assert counted.json()["@odata.count"] == 13 and len(counted.json()["value"]) == 1


async def test_certificate_key_only_with_select_on_one_object(raw: httpx.AsyncClient, sample: Snapshot) -> None:
    app = json.loads(json.dumps(sample.application(CERT_DAEMON)))
    app["keyCredentials"][0]["key"] = "TUlJQzZqQ0NBZEtnQXdJQkFnSVFK"
    auth = {"Authorization": "Bearer t"}
    async with (
        FakeGraph(parse_snapshot({"applications": [app]})) as graph,
        httpx.AsyncClient(base_url=graph.base_url, headers=auth) as http,
    ):
        plain = (await http.get(f"/v1.0/applications(appId='{CERT_DAEMON}')")).json()
        selected = await http.get(f"/v1.0/applications(appId='{CERT_DAEMON}')?$select=id,keyCredentials")
        listed = (await http.get("/v1.0/applications?$select=id,keyCredentials")).json()
    assert plain["keyCredentials"][0]["key"] is None
    assert selected.json()["keyCredentials"][0]["key"] == "TUlJQzZqQ0NBZEtnQXdJQkFnSVFK"
    assert listed["value"][0]["keyCredentials"][0]["key"] is None


async def test_unknown_paths_and_the_double_slash_are_404(raw: httpx.AsyncClient) -> None:
    unknown = await raw.get("/v1.0/applicationz")
    assert unknown.status_code == 404 and unknown.json()["error"]["message"].startswith("Resource not found")
    double = await raw.get(f"/v1.0//applications(appId='{PAYMENTS}')")
    assert double.status_code == 404 and "base_url" in double.json()["error"]["message"]
    assert (await raw.get("/v2.0/applications")).status_code == 404
    assert (await raw.post("/v1.0/applications", json={})).status_code == 405


# --- $batch --------------------------------------------------------------------------------------------


async def test_batch_answers_each_inner_request_and_counts_one_round_trip(
    graph: FakeGraph, raw: httpx.AsyncClient
) -> None:
    requests = [
        {"id": "app", "method": "GET", "url": f"/applications(appId='{PAYMENTS}')?$select=id,displayName"},
        {"id": "sp", "method": "GET", "url": f"servicePrincipals(appId='{PAYMENTS}')"},
        {"id": "missing", "method": "GET", "url": f"/applications(appId='{UNKNOWN_APP}')"},
        {"id": "owners", "method": "GET", "url": f"/applications/{PAYMENTS_OBJECT}/owners", "dependsOn": ["app"]},
        {"id": "after-missing", "method": "GET", "url": "/organization", "dependsOn": ["missing"]},
    ]
    response = await raw.post("/v1.0/$batch", json={"requests": requests})
    assert response.status_code == 200
    answers = {item["id"]: item for item in response.json()["responses"]}
    assert {key: item["status"] for key, item in answers.items()} == {
        "app": 200,
        "sp": 200,
        "missing": 404,
        "owners": 200,
        "after-missing": 424,
    }
    assert answers["app"]["body"] == {
        "@odata.context": f"{graph.base_url}/v1.0/$metadata#applications(id,displayName)/$entity",
        "id": PAYMENTS_OBJECT,
        "displayName": "payments-api",
    }
    assert answers["missing"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    assert answers["sp"]["headers"]["Content-Type"].startswith("application/json")
    assert graph.round_trips == 1
    inner = [r for r in graph.requests if r.inner]
    assert [r.batch_id for r in inner] == ["app", "sp", "missing", "owners"]  # 424: never executed
    assert inner[1].path == f"/v1.0/servicePrincipals(appId='{PAYMENTS}')"


async def test_batch_refuses_duplicate_ids_and_more_than_twenty_requests(raw: httpx.AsyncClient) -> None:
    same = [{"id": "1", "method": "GET", "url": "/organization"}] * 2
    duplicate = await raw.post("/v1.0/$batch", json={"requests": same})
    assert duplicate.status_code == 400 and duplicate.json()["error"]["code"] == "BadRequest"
    many = [{"id": str(i), "method": "GET", "url": "/organization"} for i in range(21)]
    assert (await raw.post("/v1.0/$batch", json={"requests": many})).status_code == 400
    assert (await raw.post("/v1.0/$batch", json={"requests": many[:20]})).status_code == 200
    assert (await raw.post("/v1.0/$batch", content=b"{not json")).status_code == 400


# --- faults, throttling, latency, auth ---------------------------------------------------------------


async def test_fault_403_applies_per_path(graph: FakeGraph, client: GraphServiceClient) -> None:
    fault = graph.add_fault(r"/auditLogs/", 403)
    error = await odata_error(client.audit_logs.directory_audits.get())
    assert (error.response_status_code, error.error.code) == (403, "Authorization_RequestDenied")
    assert error.error.message == "Insufficient privileges to complete the operation."
    assert (await client.applications_with_app_id(PAYMENTS).get()).app_id == PAYMENTS
    assert fault.hits == 1


async def test_faults_apply_inside_a_batch_with_inner_retry_after(graph: FakeGraph, raw: httpx.AsyncClient) -> None:
    graph.add_fault(r"/auditLogs/signIns", 403)
    graph.add_fault(r"/servicePrincipals", 429, retry_after=7)
    requests = [
        {"id": "1", "method": "GET", "url": f"/auditLogs/signIns?$filter={SP_EVENTS}"},
        {"id": "2", "method": "GET", "url": "/organization"},
        {"id": "3", "method": "GET", "url": f"/servicePrincipals(appId='{PAYMENTS}')"},
    ]
    response = await raw.post("/beta/$batch", json={"requests": requests})
    answers = {item["id"]: item for item in response.json()["responses"]}
    assert response.status_code == 200
    assert answers["1"]["status"] == 403 and answers["2"]["status"] == 200
    assert answers["3"]["status"] == 429 and answers["3"]["headers"]["Retry-After"] == "7"
    assert answers["3"]["body"]["error"] == {
        "code": "TooManyRequests",
        "message": "Please retry again later.",
        "innerError": answers["3"]["body"]["error"]["innerError"],
    }


async def test_429_is_retried_by_msgraph_after_retry_after(graph: FakeGraph, client: GraphServiceClient) -> None:
    graph.add_fault(r"/applications\(", 429, times=1, retry_after=1)
    app = await client.applications_with_app_id(PAYMENTS).get()
    assert app.app_id == PAYMENTS
    first, second = graph.requests
    assert (first.status, second.status) == (429, 200)
    assert second.time - first.time >= 1.0
    assert second.headers.get("Retry-Attempt") == "1"


async def test_503_surfaces_as_odata_error_when_retries_are_off(graph: FakeGraph, client: GraphServiceClient) -> None:
    graph.add_fault(r"/applications", 503, method="GET")
    config = RequestConfiguration(options=[RetryHandlerOption(max_retries=0)])
    error = await odata_error(client.applications_with_app_id(PAYMENTS).get(config))
    assert (error.response_status_code, error.error.code) == (503, "ServiceUnavailable")
    graph.reset()
    assert graph.requests == [] and (await client.applications_with_app_id(PAYMENTS).get()).app_id == PAYMENTS


async def test_latency_delays_every_outer_request(sample: Snapshot) -> None:
    async with FakeGraph(sample, latency=0.15) as graph, graph_client(graph.base_url) as client:
        await client.organization.get()
        await client.applications_with_app_id(PAYMENTS).get()
        first, second = graph.requests
        assert first.elapsed is not None and first.elapsed >= 0.15
        assert second.time - first.time >= 0.15  # the client waited for the delayed first answer


async def test_missing_bearer_token_is_401(graph: FakeGraph) -> None:
    async with httpx.AsyncClient(base_url=graph.base_url) as http:
        response = await http.get(f"/v1.0/applications(appId='{PAYMENTS}')")
        basic = await http.get("/v1.0/organization", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert response.status_code == 401 and basic.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# --- audit logs ------------------------------------------------------------------------------------------


def beta(graph: FakeGraph, query: str) -> str:
    return f"{graph.base_url}/beta/auditLogs/signIns?$filter={query}"


async def test_beta_sign_ins_by_correlation_id(graph: FakeGraph, client: GraphServiceClient) -> None:
    url = beta(graph, f"correlationId eq '{CORRELATION}' and {SP_EVENTS}")
    [sign_in] = (await client.audit_logs.sign_ins.with_url(url).get()).value
    assert sign_in.app_id == PAYMENTS and sign_in.status.error_code == 7000222
    assert sign_in.additional_data["servicePrincipalCredentialKeyId"] == EXPIRED_KEY  # beta-only field
    assert sign_in.additional_data["signInEventTypes"] == ["servicePrincipal"]


async def test_beta_sign_ins_by_app_time_and_error_code(graph: FakeGraph, client: GraphServiceClient) -> None:
    by_app = await client.audit_logs.sign_ins.with_url(beta(graph, f"(appId eq '{PAYMENTS}') and {SP_EVENTS}")).get()
    stamps = [s.created_date_time for s in by_app.value]
    assert len(stamps) == 7 and stamps == sorted(stamps, reverse=True)  # newest first
    recent = f"appId eq '{PAYMENTS}' and {SP_EVENTS} and createdDateTime ge 2026-11-20T08:30:00Z"
    assert len((await client.audit_logs.sign_ins.with_url(beta(graph, recent)).get()).value) == 4
    failures = f"{SP_EVENTS} and status/errorCode eq 7000222 and createdDateTime le 2026-11-20T08:20:00Z"
    assert len((await client.audit_logs.sign_ins.with_url(beta(graph, failures)).get()).value) == 3


async def test_beta_sign_ins_in_a_window_around_an_error(graph: FakeGraph, client: GraphServiceClient) -> None:
    # The fallback the bot sends when a correlation id is not in the log: ±15 min of the error's time.
    window = "createdDateTime ge 2026-11-20T08:05:00Z and createdDateTime le 2026-11-20T08:35:00Z"
    found = await client.audit_logs.sign_ins.with_url(
        beta(graph, f"appId eq '{PAYMENTS}' and {window} and {SP_EVENTS}")
    ).get()
    assert [s.created_date_time.strftime("%H:%M:%S") for s in found.value] == ["08:33:02", "08:19:37", "08:10:05"]


async def test_directory_audits_of_a_service_principal(client: GraphServiceClient) -> None:
    reporting_bot_sp = "cb9b515f-e4ec-4f0d-be03-0f59e5e5b240"
    query = f"activityDateTime ge 2026-10-21T09:00:00Z and targetResources/any(t: t/id eq '{reporting_bot_sp}')"
    url = f"{client.request_adapter.base_url}/auditLogs/directoryAudits?$filter={query}"
    [audit] = (await client.audit_logs.directory_audits.with_url(url).get()).value
    assert audit.activity_display_name == "Update service principal"
    assert audit.target_resources[0].modified_properties[0].new_value == "[false]"


async def test_sign_ins_without_event_type_filter_are_interactive_only(
    graph: FakeGraph, client: GraphServiceClient
) -> None:
    beta_all = await client.audit_logs.sign_ins.with_url(f"{graph.base_url}/beta/auditLogs/signIns").get()
    assert [s.app_display_name for s in beta_all.value] == ["Azure Portal"]
    v1 = await client.audit_logs.sign_ins.get()  # v1.0: only v1.0 properties, so nothing left over
    assert [s.app_display_name for s in v1.value] == ["Azure Portal"] and clean(v1.value) == []
    error = await odata_error(
        client.audit_logs.sign_ins.with_url(f"{graph.base_url}/v1.0/auditLogs/signIns?$filter={SP_EVENTS}").get()
    )
    assert error.response_status_code == 400


async def test_unsupported_filters_are_400(graph: FakeGraph, client: GraphServiceClient) -> None:
    for query in (f"appId ne '{PAYMENTS}'", f"appId eq '{PAYMENTS}' or {SP_EVENTS}", "userAgent eq 'x'", "appId eq"):
        error = await odata_error(client.audit_logs.sign_ins.with_url(beta(graph, query)).get())
        assert error.response_status_code == 400, query
        assert error.error.code == "BadRequest"
    listed = ApplicationsRequestBuilder.ApplicationsRequestBuilderGetQueryParameters(filter="signInAudience eq 'x'")
    error = await odata_error(client.applications.get(RequestConfiguration(query_parameters=listed)))
    assert (error.response_status_code, error.error.code) == (400, "Request_UnsupportedQuery")


async def test_directory_audits_by_target_and_category(raw: httpx.AsyncClient) -> None:
    query = f"category eq 'ApplicationManagement' and targetResources/any(t: t/id eq '{PAYMENTS_OBJECT}')"
    [audit] = (await raw.get("/v1.0/auditLogs/directoryAudits", params={"$filter": query})).json()["value"]
    # Graph's own wording, with an en dash and a trailing space.
    assert audit["activityDisplayName"] == "Update application \u2013 Certificates and secrets management "
    assert audit["initiatedBy"]["user"]["userPrincipalName"] == "priya.raman@northwind-ops.example"
    assert "DisplayName=ci-2026" in audit["targetResources"][0]["modifiedProperties"][0]["newValue"]


async def test_directory_audits_by_activity_name_prefix(raw: httpx.AsyncClient) -> None:
    # Graph: activityDisplayName "Supports $filter (eq, startswith)" (directoryAudit resource type).
    query = "activityDateTime ge 2026-11-01T00:00:00Z and startswith(activityDisplayName, 'update APPLICATION')"
    found = (await raw.get("/beta/auditLogs/directoryAudits", params={"$filter": query})).json()["value"]
    assert [a["activityDateTime"] for a in found] == ["2026-11-20T08:52:03Z", "2026-11-19T16:02:10Z"]  # newest first
    # startswith is for the names Graph lists, not any property.
    unsupported = "startswith(loggedByService, 'Core')"
    answer = await raw.get("/beta/auditLogs/directoryAudits", params={"$filter": unsupported})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "BadRequest"


async def test_directory_audits_deserialize_without_leftovers(client: GraphServiceClient) -> None:
    audits = await client.audit_logs.directory_audits.get()
    assert len(audits.value) == 5 and clean(audits.value) == []


async def test_export_without_audit_keys_answers_403() -> None:
    async with FakeGraph(parse_snapshot({"applications": []})) as graph, graph_client(graph.base_url) as client:
        sign_ins = await odata_error(client.audit_logs.sign_ins.with_url(beta(graph, SP_EVENTS)).get())
        assert sign_ins.response_status_code == 403
        assert sign_ins.error.code == "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
        assert sign_ins.error.message == "Neither tenant is B2C or tenant doesn't have premium license"
        audits = await odata_error(client.audit_logs.directory_audits.get())
        assert (audits.response_status_code, audits.error.code) == (403, "Authorization_RequestDenied")


# --- the $filter parser on its own -------------------------------------------------------------------


def test_filter_parser_handles_quotes_and_refuses_deep_or_long_input() -> None:
    parsed = parse_filter("displayName eq 'O''Brien'", {"displayName eq": "string"}, resource="Application")
    assert parsed.matches({"displayName": "o'brien"}) and not parsed.matches({"displayName": "OBrien"})
    with pytest.raises(QueryError):
        parse_filter("(" * 40 + "appId eq 'x'" + ")" * 40, {"appId eq": "string"}, resource="Application")
    started = time.perf_counter()
    with pytest.raises(QueryError):
        parse_filter("appId eq '" + "a" * 2000, {"appId eq": "string"}, resource="Application")
    assert time.perf_counter() - started < 0.5


# --- loading snapshots -------------------------------------------------------------------------------------


def test_sample_snapshot_loads(sample: Snapshot) -> None:
    assert sample.tenant["id"] == TENANT_ID and not sample.tenant_synthetic
    assert sample.has_sign_ins and sample.has_audits
    assert [app["displayName"] for app in sample.deleted_applications] == ["legacy-sync"]
    assert sample.application(VENDOR_CRM) is None and sample.service_principal(VENDOR_CRM) is not None


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read snapshot"),
        ("", "is not valid JSON"),
        ('{"applications": [\n  {"appId": 1,}\n]}', "at line 2 column"),
        ('"applications"', "must be a JSON object or array"),
        ('{"applications": {}}', "applications must be an array"),
        ('[{"id": "7c1d9e3b-5a2f-4b6c-8e0d-3f5a7b9c1e24", "displayName": "x"}]', "applications[0] ('x') has no appId"),
        ('[{"appId": "not-a-guid\\nreally", "id": "7c1d9e3b-5a2f-4b6c-8e0d-3f5a7b9c1e24"}]', "is not a GUID"),
        ('{"signins": []}', "unknown snapshot key 'signins'"),
    ],
)
def test_load_snapshot_errors_are_one_line(tmp_path: Path, content: str | None, expected: str) -> None:
    path = tmp_path / "snapshot.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(SnapshotError) as caught:
        load_snapshot(path)
    message = str(caught.value)
    assert expected in message and "\n" not in message and str(path) in message


def test_load_snapshot_refuses_a_directory(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="cannot read snapshot"):
        load_snapshot(tmp_path)


# --- its own footprint -------------------------------------------------------------------------------


async def test_the_request_record_keeps_only_the_latest_requests() -> None:
    # A demo or a benchmark sends requests for hours; the record must not grow with them.
    async with FakeGraph(load_snapshot(sample_snapshot_path()), record=50) as graph:
        async with httpx.AsyncClient(base_url=graph.base_url, headers={"Authorization": "Bearer x"}) as http:
            for n in range(120):
                await http.get(f"/v1.0/applications(appId='{n:08d}-0000-4000-8000-000000000000')")
        assert len(graph.requests) == 50
        assert [r.path.split("'")[1][:8] for r in graph.requests] == [f"{n:08d}" for n in range(70, 120)]
        assert graph.round_trips == 120 and graph.connections == 1  # the counts still cover every request
        graph.reset()
        assert (graph.requests, graph.round_trips, graph.connections) == ([], 0, 0)


async def test_max_in_flight_counts_requests_answered_at_once() -> None:
    async with FakeGraph(load_snapshot(sample_snapshot_path()), latency=0.1) as graph:
        async with httpx.AsyncClient(base_url=graph.base_url, headers={"Authorization": "Bearer x"}) as http:
            await asyncio.gather(*(http.get("/v1.0/organization") for _ in range(5)))
            assert graph.max_in_flight == 5
            graph.reset()
            for _ in range(3):
                await http.get("/v1.0/organization")
        assert graph.max_in_flight == 1
