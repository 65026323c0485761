"""One scenario per cause against the sample tenant, through the fake Graph over real HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.identity.aio import DefaultAzureCredential

from bot.domain import Cause, Diagnosis, GraphMode, Severity
from bot.fakegraph import FakeGraph, LocalTokenCredential, parse_snapshot
from bot.fakegraph.samples import sample_errors, sample_reference_time
from bot.graph import GraphDirectory, GraphHttp
from bot.graph.directory import MAX_RETRY_AFTER, UPDATES_TOP
from bot.graph.hosts import MAX_IN_FLIGHT
from bot.settings import graph_credential_source
from handlers.diagnose import diagnose
from tests.conftest import SampleTenant
from tests.tenant_edits import REPORTING_BOT, edited

SAMPLES = {sample.cause: sample for sample in sample_errors()}
# Where the demonstrated cause is true but a more urgent one leads the answer.
SECONDARY = {Cause.SECRET_LIMIT_REACHED: Cause.SECRET_MISMATCH}
PAYMENTS_APP = "dc36fc90-2248-4d70-aca4-a1a9f5b19f71"
NIGHTLY_APP = "0db317d9-4c8e-4fa3-969a-73bf4c83cf3b"
LEGACY_SYNC_APP = "543bcfbb-c9f2-4a8a-9ecf-958027801375"  # deleted on 2026-11-02
# The bot's own (made-up) Graph registration, for the answers about its credential.
BOT_CLIENT = "11111111-2222-4333-8444-555555555555"
BOT_TENANT = "66666666-7777-4888-9999-000000000000"
BOT_SECRET = "bot~graph~secret~value~not~real~0123456789"


def test_every_cause_but_permission_missing_has_a_sample() -> None:
    assert set(SAMPLES) == {c.value for c in Cause} - {Cause.PERMISSION_MISSING}


@pytest.mark.parametrize("cause", sorted(SAMPLES))
async def test_sample_error_gives_its_cause(sample_tenant: SampleTenant, cause: str) -> None:
    result = await diagnose(SAMPLES[cause].text, directory=sample_tenant.directory, now=sample_reference_time())
    causes = [f.cause for f in result.findings]
    assert Cause(cause) in causes
    assert result.primary is not None
    assert result.primary.cause == SECONDARY.get(Cause(cause), Cause(cause))
    assert result.graph.mode is GraphMode.SNAPSHOT
    # What the bot counts is what the server saw.
    assert result.graph.round_trips == sample_tenant.graph.round_trips


async def test_core_facts_take_one_round_trip(sample_tenant: SampleTenant) -> None:
    result = await diagnose(PAYMENTS_APP, directory=sample_tenant.directory, now=sample_reference_time())
    outer = [r for r in sample_tenant.graph.requests if not r.inner]
    assert [(r.method, r.path) for r in outer] == [("POST", "/v1.0/$batch")]
    assert result.graph.round_trips == 1
    assert result.app is not None and result.app.display_name == "payments-api"
    assert {o.label for o in result.app.owners}


async def test_a_stream_of_lookups_reuses_graph_connections(sample_tenant: SampleTenant) -> None:
    # A burst as the bot sees it: lookups keep starting while dozens are still waiting for Graph.
    sample_tenant.graph.latency = 0.05
    lookups = 150

    async def lookup(n: int) -> None:
        await asyncio.sleep(n * 0.002)  # staggered starts; no duration is asserted
        await sample_tenant.directory.lookup(PAYMENTS_APP)

    await asyncio.gather(*(lookup(n) for n in range(lookups)))
    # And as many more all at once: they queue for the pool's connections.
    await asyncio.gather(*(sample_tenant.directory.lookup(PAYMENTS_APP) for _ in range(lookups)))
    assert sample_tenant.graph.round_trips == 2 * lookups
    # Every batch reuses one of the pool's connections: a burst that opened a connection per request would
    # pay a TLS handshake for each against graph.microsoft.com.
    assert sample_tenant.graph.connections <= MAX_IN_FLIGHT


def round_trips_of(graph: FakeGraph) -> list[list[str]]:
    """What the fake Graph saw, per HTTP round trip: the paths of the requests inside each `$batch`."""
    trips: list[list[str]] = []
    for request in graph.requests:
        if not request.inner:
            trips.append([])
        elif trips:
            trips[-1].append(request.path)
    return trips


@pytest.mark.parametrize(
    ("cause", "app_id", "seen"),
    [
        ("expired_secret_in_use", PAYMENTS_APP, "203.0.113.24"),  # from the sign-in log
        ("secret_mismatch", "e4d3921a-724a-47f6-a518-182b5e200159", "removed secret 'hr-sync-2025'"),  # audit log
        ("app_disabled", REPORTING_BOT, "disabled the service principal"),  # its service principal's audit log
    ],
)
async def test_a_paste_with_a_code_a_timestamp_and_a_correlation_id_takes_one_round_trip(
    sample_tenant: SampleTenant, cause: str, app_id: str, seen: str
) -> None:
    sample = SAMPLES[cause]
    assert all(part in sample.text for part in ("AADSTS", "Correlation ID:", "Timestamp:"))
    # The first paste about the app after a start: its object ids are not known yet.
    first = await diagnose(sample.text, directory=sample_tenant.directory, now=sample_reference_time())
    assert sample_tenant.graph.round_trips == first.graph.round_trips == 1
    [batch] = round_trips_of(sample_tenant.graph)
    assert f"/beta/applications(appId='{app_id}')" in batch
    assert batch.count("/beta/auditLogs/signIns") == 2 and batch.count("/beta/auditLogs/directoryAudits") == 2
    assert seen in evidence(first)
    # From the second paste on the audits are asked by the ids the first one read.
    sample_tenant.graph.reset()
    again = await diagnose(sample.text, directory=sample_tenant.directory, now=sample_reference_time())
    assert sample_tenant.graph.round_trips == again.graph.round_trips == 1
    assert [r.path for r in sample_tenant.graph.requests if not r.inner] == ["/beta/$batch"]
    assert all("targetResources/any" in q for q in audit_filters(sample_tenant.graph))
    assert again.findings == first.findings  # the same answer as the first paste's
    assert again.activity is not None and first.activity is not None
    assert again.activity.audits == first.activity.audits


def audit_filters(graph: FakeGraph) -> list[str]:
    """The `$filter` of every audit-log question the fake Graph answered."""
    return [dict(parse_qsl(r.query_string))["$filter"] for r in graph.requests if r.path.endswith("/directoryAudits")]


async def test_the_first_paste_reads_the_apps_audits_from_the_tenants_updates(sample_tenant: SampleTenant) -> None:
    # Graph filters audits by target only by object id, which only the lookup gives: the first paste
    # asks the tenant's application and service-principal updates instead, and keeps the app's.
    result = await diagnose(
        SAMPLES["secret_mismatch"].text, directory=sample_tenant.directory, now=sample_reference_time()
    )
    assert result.graph.round_trips == sample_tenant.graph.round_trips == 1
    assert sorted(audit_filters(sample_tenant.graph)) == [
        "activityDateTime ge 2026-10-21T09:00:00Z and startswith(activityDisplayName, 'Update application')",
        "activityDateTime ge 2026-10-21T09:00:00Z and startswith(activityDisplayName, 'Update service principal')",
    ]
    assert result.activity is not None
    # Only the app's own entry of the tenant's updates (the sample tenant has four, for four apps).
    [entry] = result.activity.audits
    assert entry.actor == "mei.zhou@northwind-ops.example" and [k.display_name for k in entry.removed] == [
        "hr-sync-2025"
    ]


def _updates_of_other_apps(count: int) -> Callable[[dict[str, Any]], None]:
    """`count` secret changes on another app, all newer than the sample tenant's own entries."""

    def edit(data: dict[str, Any]) -> None:
        template = next(a for a in data["directoryAudits"] if a["activityDisplayName"].startswith("Update application"))
        for n in range(count):
            entry = json.loads(json.dumps(template))
            entry["id"] = f"Directory_{uuid.UUID(int=n)}"
            entry["activityDateTime"] = f"2026-11-20T08:{n // 60 % 60:02d}:{n % 60:02d}Z"
            entry["targetResources"][0]["id"] = "00000000-0000-4000-8000-00000000beef"
            data["directoryAudits"].append(entry)

    return edit


async def test_more_updates_than_one_page_asks_the_audits_by_id(sample_tenant: SampleTenant) -> None:
    # The app's entry may be on a later page: the answer is not cut short, the audits are asked by id.
    sample_tenant.graph.use_snapshot(edited(_updates_of_other_apps(UPDATES_TOP)))
    result = await diagnose(
        SAMPLES["secret_mismatch"].text, directory=sample_tenant.directory, now=sample_reference_time()
    )
    lookup, audits = round_trips_of(sample_tenant.graph)
    assert lookup.count("/beta/auditLogs/directoryAudits") == 2
    assert audits == ["/beta/auditLogs/directoryAudits"] * 2
    assert result.graph.round_trips == sample_tenant.graph.round_trips == 2
    assert "removed secret 'hr-sync-2025'" in evidence(result)


async def test_a_deleted_apps_first_paste_asks_who_deleted_it_by_id(sample_tenant: SampleTenant) -> None:
    # A deletion is not an update: the audits of a deleted app are asked by its object id.
    paste = (
        f"AADSTS700016: Application with identifier '{LEGACY_SYNC_APP}' was not found. "
        f"Correlation ID: {uuid.UUID(int=7)}"
    )
    result = await diagnose(paste, directory=sample_tenant.directory, now=sample_reference_time())
    lookup, audits = round_trips_of(sample_tenant.graph)
    assert lookup.count("/beta/auditLogs/directoryAudits") == 2
    assert audits == ["/beta/auditLogs/directoryAudits"]
    assert result.graph.round_trips == sample_tenant.graph.round_trips == 2
    assert "deleted the app at 2026-11-02 16:40 UTC" in evidence(result)


async def test_a_bare_app_id_asks_v1_and_makes_the_next_paste_one_round_trip(sample_tenant: SampleTenant) -> None:
    await diagnose(PAYMENTS_APP, directory=sample_tenant.directory, now=sample_reference_time())
    assert [r.path for r in sample_tenant.graph.requests if not r.inner] == ["/v1.0/$batch"]
    sample_tenant.graph.reset()
    result = await diagnose(
        SAMPLES["expired_secret_in_use"].text, directory=sample_tenant.directory, now=sample_reference_time()
    )
    assert result.graph.round_trips == sample_tenant.graph.round_trips == 1


async def test_a_recreated_service_principal_has_its_audits_asked_by_its_new_id(sample_tenant: SampleTenant) -> None:
    # Deleting a service principal and consenting again gives the same appId a new SP object id.
    reporting_bot, old_sp, new_sp = REPORTING_BOT, "cb9b515f-e4ec-4f0d-be03-0f59e5e5b240", str(uuid.uuid4())

    def recreate(data: dict[str, Any]) -> None:
        next(sp for sp in data["servicePrincipals"] if sp["appId"] == reporting_bot)["id"] = new_sp

    paste = SAMPLES["app_disabled"].text
    await diagnose(paste, directory=sample_tenant.directory, now=sample_reference_time())
    sample_tenant.graph.use_snapshot(edited(recreate))
    sample_tenant.graph.reset()
    result = await diagnose(paste, directory=sample_tenant.directory, now=sample_reference_time())
    assert result.graph.round_trips == sample_tenant.graph.round_trips == 2
    asked = [r.query_string for r in sample_tenant.graph.requests if r.path.endswith("/directoryAudits")]
    assert any(new_sp in query for query in asked[-2:]) and not any(old_sp in query for query in asked[-2:])


async def test_throttled_sign_ins_leave_the_answer_standing(sample_tenant: SampleTenant) -> None:
    # The reports service throttles hardest; a lookup must not fail because its logs could not be read.
    sample_tenant.graph.add_fault(r"/auditLogs/signIns", 429, retry_after=120)
    result = await diagnose(
        SAMPLES["expired_secret_in_use"].text, directory=sample_tenant.directory, now=sample_reference_time()
    )
    assert result.primary is not None and result.primary.cause is Cause.EXPIRED_SECRET_IN_USE
    assert result.app is not None and result.notes == ()
    assert result.graph.round_trips == sample_tenant.graph.round_trips


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [("2026-08-01 10:00:00Z", False), ("2026-11-20 09:00:00Z", True)],
)
async def test_reference_time_is_the_errors_timestamp(sample_tenant: SampleTenant, stamp: str, expected: bool) -> None:
    paste = f"AADSTS7000222: The provided client secret keys for app '{NIGHTLY_APP}' are expired. Timestamp: {stamp}"
    # "now" is far in the future: only the paste's own timestamp can make the old answer right.
    result = await diagnose(paste, directory=sample_tenant.directory, now=datetime(2030, 1, 1, tzinfo=UTC))
    assert (Cause.ALL_SECRETS_EXPIRED in [f.cause for f in result.findings]) is expected
    assert result.reference_time.strftime("%Y-%m-%d %H:%M:%SZ") == stamp


async def test_without_a_timestamp_now_is_the_reference(sample_tenant: SampleTenant) -> None:
    paste = f"AADSTS7000222: The provided client secret keys for app '{PAYMENTS_APP}' are expired."
    before = await diagnose(paste, directory=sample_tenant.directory, now=datetime(2026, 9, 20, tzinfo=UTC))
    after = await diagnose(paste, directory=sample_tenant.directory, now=datetime(2026, 11, 20, tzinfo=UTC))
    assert Cause.EXPIRED_SECRET_IN_USE not in [f.cause for f in before.findings]
    assert after.primary is not None and after.primary.cause is Cause.EXPIRED_SECRET_IN_USE


async def test_hints_of_valid_secrets_are_evidence_for_a_mismatch(sample_tenant: SampleTenant) -> None:
    result = await diagnose(
        SAMPLES["secret_mismatch"].text, directory=sample_tenant.directory, now=sample_reference_time()
    )
    assert result.primary is not None
    assert any("'Gy7'" in line for line in result.primary.evidence)


async def test_disabled_code_for_an_enabled_app_says_it_is_enabled_now(sample_tenant: SampleTenant) -> None:
    paste = "AADSTS7000112: Application 'e4d3921a-724a-47f6-a518-182b5e200159'(hr-sync) is disabled."
    result = await diagnose(paste, directory=sample_tenant.directory, now=sample_reference_time())
    disabled = [f for f in result.findings if f.cause is Cause.APP_DISABLED]
    assert disabled and disabled[0].severity is Severity.INFO and "enabled now" in disabled[0].summary


async def test_other_tenant_names_the_owner_and_deleted_names_the_date(sample_tenant: SampleTenant) -> None:
    other = await diagnose(
        SAMPLES["app_in_other_tenant"].text, directory=sample_tenant.directory, now=sample_reference_time()
    )
    deleted = await diagnose(
        SAMPLES["app_deleted"].text, directory=sample_tenant.directory, now=sample_reference_time()
    )
    assert other.primary is not None and "c0ffee00-1234-4abc-9def-0123456789ab" in " ".join(other.primary.evidence)
    assert deleted.primary is not None and "2026-11-02 16:40" in " ".join(deleted.primary.evidence)


# --- Graph refusing, throttling, failing -------------------------------------------------------


async def test_403_on_core_lookup_names_application_read_all(sample_tenant: SampleTenant) -> None:
    sample_tenant.graph.add_fault(r"/applications", 403)
    result = await diagnose(
        SAMPLES["secret_mismatch"].text, directory=sample_tenant.directory, now=sample_reference_time()
    )
    assert result.graph.missing_permissions == ("Application.Read.All",)
    refused = [f for f in result.findings if f.cause is Cause.PERMISSION_MISSING]
    assert refused and "Application.Read.All" in refused[0].evidence[0]


async def test_no_audit_access_still_diagnoses_and_names_auditlog_read_all(sample_tenant: SampleTenant) -> None:
    sample_tenant.graph.add_fault(r"/auditLogs/", 403)
    result = await diagnose(
        SAMPLES["expired_secret_in_use"].text, directory=sample_tenant.directory, now=sample_reference_time()
    )
    assert result.primary is not None and result.primary.cause is Cause.EXPIRED_SECRET_IN_USE
    info = [f for f in result.findings if f.cause is Cause.PERMISSION_MISSING]
    assert info and info[0].severity is Severity.INFO and "AuditLog.Read.All" in info[0].evidence[0]
    assert result.graph.missing_permissions == ("AuditLog.Read.All",)


async def test_throttled_batch_waits_for_retry_after(sample_tenant: SampleTenant) -> None:
    sample_tenant.graph.add_fault(r"^/v1\.0/\$batch$", 429, times=1, retry_after=1)
    started = time.monotonic()
    result = await diagnose(PAYMENTS_APP, directory=sample_tenant.directory, now=sample_reference_time())
    batches = [r for r in sample_tenant.graph.requests if not r.inner and r.path == "/v1.0/$batch"]
    assert [r.status for r in batches] == [429, 200]
    assert batches[1].time - batches[0].time >= 1.0
    assert time.monotonic() - started >= 1.0
    assert result.app is not None and result.app.app_id == PAYMENTS_APP
    assert result.graph.round_trips == 2  # the refused attempt counts too


async def test_throttled_inner_request_is_retried_once(sample_tenant: SampleTenant) -> None:
    sample_tenant.graph.add_fault(r"/servicePrincipals", 429, times=1, retry_after=1)
    result = await diagnose(
        SAMPLES["app_disabled"].text, directory=sample_tenant.directory, now=sample_reference_time()
    )
    assert result.primary is not None and result.primary.cause is Cause.APP_DISABLED
    assert result.graph.round_trips == sample_tenant.graph.round_trips == 2  # batch, retry of one part


async def test_long_throttling_gives_a_paste_only_answer_with_a_note(sample_tenant: SampleTenant) -> None:
    sample_tenant.graph.add_fault(r"/servicePrincipals", 429, retry_after=120)
    result = await diagnose(
        SAMPLES["secret_id_used_as_value"].text, directory=sample_tenant.directory, now=sample_reference_time()
    )
    assert result.primary is not None and result.primary.cause is Cause.SECRET_ID_USED_AS_VALUE
    assert any("throttling" in note and "120" in note for note in result.notes)


async def test_graph_down_gives_a_paste_only_answer(sample_tenant: SampleTenant) -> None:
    sample_tenant.graph.add_fault(r"\$batch", 503)
    result = await diagnose(
        SAMPLES["secret_mismatch"].text, directory=sample_tenant.directory, now=sample_reference_time()
    )
    assert result.app is None
    assert [e.code for e in result.errors] == [7000215]
    assert any("503" in note for note in result.notes)
    assert result.graph.round_trips == sample_tenant.graph.round_trips == 3  # first try and two retries


# --- sign-in and audit evidence ------------------------------------------------------------------

BUILD_AGENT_APP = "8c3f846c-c6a9-42d3-83f8-4c485e5c4176"


def evidence(result: Diagnosis) -> str:
    assert result.primary is not None
    return "\n".join(result.primary.evidence)


async def test_unknown_correlation_id_falls_back_to_failures_around_the_error(sample_tenant: SampleTenant) -> None:
    # Not in the log; the app failed at 08:19:37 and 08:33:02 (inside ±15 min of 08:20), and at 08:04 and 08:47 (not).
    paste = (
        f"AADSTS7000222: The provided client secret keys for app '{PAYMENTS_APP}' are expired. "
        "Correlation ID: 00000000-1111-4222-8333-444444444444 Timestamp: 2026-11-20 08:20:00Z"
    )
    result = await diagnose(paste, directory=sample_tenant.directory, now=sample_reference_time())
    lines = evidence(result)
    assert "no sign-in with correlation id 00000000-1111-4222-8333-444444444444 in the last 30 days" in lines
    assert "2026-11-20 08:05 UTC to 2026-11-20 08:35 UTC): 2 failed sign-ins with AADSTS7000222" in lines
    assert "the last at 2026-11-20 08:33 UTC" in lines and "secret 'ci-2025'" in lines
    # Both sign-in questions rode in the lookup's batch.
    assert round_trips_of(sample_tenant.graph)[0].count("/beta/auditLogs/signIns") == 2
    assert all(r.status == 200 for r in sample_tenant.graph.requests if r.inner)
    assert result.graph.round_trips == sample_tenant.graph.round_trips


async def test_known_correlation_id_is_the_evidence(sample_tenant: SampleTenant) -> None:
    result = await diagnose(
        SAMPLES["expired_secret_in_use"].text, directory=sample_tenant.directory, now=sample_reference_time()
    )
    lines = evidence(result)
    assert "correlation id 3b9d2f61-5c7e-4a08-b1d3-8e2f6a4c9d70): 1 failed sign-in" in lines
    assert "no sign-in with correlation id" not in lines


async def test_no_timestamp_falls_back_to_the_latest_failures(sample_tenant: SampleTenant) -> None:
    paste = (
        f"AADSTS7000222: The provided client secret keys for app '{PAYMENTS_APP}' are expired. "
        "Correlation ID: 00000000-1111-4222-8333-444444444444"
    )
    result = await diagnose(paste, directory=sample_tenant.directory, now=sample_reference_time())
    lines = evidence(result)
    assert "no sign-in with correlation id 00000000-1111-4222-8333-444444444444" in lines
    assert "(this app's latest sign-ins): 5 failed sign-ins" in lines
    assert "the last at 2026-11-20 08:58 UTC" in lines


async def test_quiet_window_says_no_failed_sign_ins(sample_tenant: SampleTenant) -> None:
    result = await diagnose(
        SAMPLES["secret_mismatch"].text, directory=sample_tenant.directory, now=sample_reference_time()
    )
    # hr-sync's one failure (08:31) is outside 08:45-09:15.
    assert "2026-11-20 08:45 UTC to 2026-11-20 09:15 UTC): no failed sign-ins." in evidence(result)


async def test_audit_evidence_names_a_removed_secret(sample_tenant: SampleTenant) -> None:
    result = await diagnose(
        SAMPLES["secret_mismatch"].text, directory=sample_tenant.directory, now=sample_reference_time()
    )
    assert (
        "Audit log: mei.zhou@northwind-ops.example removed secret 'hr-sync-2025' "
        "(ID 3f9c2b7e-8a41-4d6c-b5e0-7c1a9d2e4f68) at 2026-11-19 16:02 UTC."
    ) in evidence(result)


async def test_audit_evidence_names_an_added_secret_with_its_hint(sample_tenant: SampleTenant) -> None:
    paste = (
        f"AADSTS7000215: Invalid client secret provided for app '{BUILD_AGENT_APP}'. Timestamp: 2026-11-20 08:53:40Z"
    )
    result = await diagnose(paste, directory=sample_tenant.directory, now=sample_reference_time())
    assert (
        "Audit log: tomas.ortega@northwind-ops.example added secret 'agent-2026-11' (starts with 'Hs3', "
        "ID 5e571eaa-66c1-44e7-8859-90d2e844c762) at 2026-11-20 08:52 UTC."
    ) in evidence(result)


async def test_service_principal_audit_says_who_disabled_it(sample_tenant: SampleTenant) -> None:
    result = await diagnose(
        SAMPLES["app_disabled"].text, directory=sample_tenant.directory, now=sample_reference_time()
    )
    assert result.primary is not None and result.primary.cause is Cause.APP_DISABLED
    assert "mei.zhou@northwind-ops.example disabled the service principal at 2026-11-18 17:25 UTC." in evidence(result)


async def test_deleted_app_says_who_deleted_it_and_when(sample_tenant: SampleTenant) -> None:
    result = await diagnose(SAMPLES["app_deleted"].text, directory=sample_tenant.directory, now=sample_reference_time())
    assert result.primary is not None and result.primary.cause is Cause.APP_DELETED
    assert "Audit log: priya.raman@northwind-ops.example deleted the app at 2026-11-02 16:40 UTC." in evidence(result)


async def test_audit_key_descriptions_are_read_however_they_are_named() -> None:
    # A certificate removed and a secret whose name has commas and brackets; one value is not JSON at all.
    def key(key_id: str, kind: str, name: str) -> str:
        return f"[KeyIdentifier={key_id},KeyType={kind},KeyUsage=Verify,DisplayName={name}]"

    cert = key("1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f", "AsymmetricX509Cert", "CN=worker")
    odd = key("2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a", "Password", "blue, [old], keep")
    app = {"id": "3e4f5a6b-7c8d-4e9f-8a1b-2c3d4e5f6a7b", "appId": "4f5a6b7c-8d9e-4f0a-9b1c-3d4e5f6a7b8c"}
    audit = {
        "id": "Directory_1",
        "activityDateTime": "2026-11-19T10:00:00Z",
        "activityDisplayName": "Update application \u2013 Certificates and secrets management ",
        "result": "success",
        "initiatedBy": {"app": {"displayName": "deploy-pipeline"}, "user": None},
        "targetResources": [
            {
                "id": app["id"],
                "type": "Application",
                "modifiedProperties": [
                    {"displayName": "KeyDescription", "oldValue": json.dumps([cert]), "newValue": json.dumps([odd])},
                    {"displayName": "AccountEnabled", "oldValue": "not json", "newValue": "[true"},
                ],
            }
        ],
    }
    snapshot = parse_snapshot({"tenant": {"id": "5a6b7c8d-9e0f-4a1b-8c2d-4e5f6a7b8c9d"}, "applications": [app],
                               "servicePrincipals": [], "deletedApplications": [], "signIns": [],
                               "directoryAudits": [audit]})  # fmt: skip
    async with FakeGraph(snapshot) as graph, GraphHttp(graph.base_url, LocalTokenCredential()) as http:
        directory = GraphDirectory(http, GraphMode.SNAPSHOT)
        paste = (
            f"AADSTS7000215: Invalid client secret provided for app '{app['appId']}'. Timestamp: 2026-11-20 08:00:00Z"
        )
        result = await diagnose(paste, directory=directory, now=sample_reference_time())
    lines = evidence(result)
    assert (
        "Audit log: deploy-pipeline added secret 'blue, [old], keep' (ID 2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a) and "
        "removed certificate 'CN=worker' (ID 1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f) at 2026-11-19 10:00 UTC."
    ) in lines


async def test_retry_after_as_an_http_date_is_waited_for(sample_tenant: SampleTenant) -> None:
    # "Retry-After: Sun, 06 Dec 2026 20:30:05 GMT" means "in about 3 s", not the 1 s of an unreadable header.
    sample_tenant.graph.add_fault(r"^/v1\.0/\$batch$", 429, times=1, retry_after=3, retry_after_as_date=True)
    result = await diagnose(PAYMENTS_APP, directory=sample_tenant.directory, now=sample_reference_time())
    batches = [r for r in sample_tenant.graph.requests if not r.inner and r.path == "/v1.0/$batch"]
    assert [r.status for r in batches] == [429, 200]
    assert batches[1].time - batches[0].time >= 2.0  # the date has whole seconds: 2-3 s from the first answer
    assert result.app is not None and result.app.app_id == PAYMENTS_APP


async def test_a_distant_http_date_is_reported_in_seconds(sample_tenant: SampleTenant) -> None:
    sample_tenant.graph.add_fault(r"/servicePrincipals", 429, retry_after=120, retry_after_as_date=True)
    result = await diagnose(
        SAMPLES["secret_id_used_as_value"].text, directory=sample_tenant.directory, now=sample_reference_time()
    )
    assert any("throttling" in note and ("120 s" in note or "119 s" in note) for note in result.notes), result.notes


async def test_a_retry_after_days_ahead_is_capped(sample_tenant: SampleTenant) -> None:
    sample_tenant.graph.add_fault(r"/servicePrincipals", 429, retry_after=3 * 86400, retry_after_as_date=True)
    result = await diagnose(
        SAMPLES["secret_id_used_as_value"].text, directory=sample_tenant.directory, now=sample_reference_time()
    )
    assert any(f"retry after {MAX_RETRY_AFTER:g} s" in note for note in result.notes), result.notes


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"AZURE_CLIENT_CERTIFICATE_PATH": "/etc/bot.pem"}, "certificate in AZURE_CLIENT_CERTIFICATE_PATH"),
        ({"AZURE_FEDERATED_TOKEN_FILE": "/var/run/token"}, "federated token in AZURE_FEDERATED_TOKEN_FILE"),
        ({"IDENTITY_ENDPOINT": "http://169.254.169.254/"}, "managed identity"),
        ({"SECRETBOT_GRAPH_CREDENTIAL": "default"}, "DefaultAzureCredential"),
    ],
)
def test_each_credential_source_is_named(variables: dict[str, str], named: str) -> None:
    source = graph_credential_source(variables | {"AZURE_CLIENT_ID": BOT_CLIENT, "AZURE_TENANT_ID": BOT_TENANT})
    assert named in source
    assert "AZURE_CLIENT_SECRET" not in source


def credential_source() -> str:
    return graph_credential_source(
        {"AZURE_CLIENT_SECRET": BOT_SECRET, "AZURE_CLIENT_ID": BOT_CLIENT, "AZURE_TENANT_ID": BOT_TENANT}
    )


def assert_names_the_bots_credential(result: Diagnosis) -> None:
    """The answer blames the bot's own sign-in and names its source, never a permission or the secret."""
    [note] = result.notes
    assert "bot's own credential" in note and "not a missing permission" in note
    assert "AZURE_CLIENT_SECRET" in note and BOT_CLIENT in note and BOT_TENANT in note
    assert BOT_SECRET not in note
    assert result.graph.missing_permissions == ()
    assert Cause.PERMISSION_MISSING not in [f.cause for f in result.findings]
    assert [e.code for e in result.errors] == [7000215]  # the paste is still explained


@pytest.mark.parametrize("where", [r"/\$batch$", r"/applications"])
async def test_graph_401_says_the_bots_own_credential_was_refused(sample_tenant: SampleTenant, where: str) -> None:
    sample_tenant.graph.add_fault(where, 401)  # the whole batch, or the app's part of it
    async with GraphHttp(sample_tenant.graph.base_url, LocalTokenCredential()) as http:
        directory = GraphDirectory(http, GraphMode.LIVE, credential_source=credential_source())
        result = await diagnose(SAMPLES["secret_mismatch"].text, directory=directory, now=sample_reference_time())
    assert_names_the_bots_credential(result)
    assert "HTTP 401" in result.notes[0]


class RefusingCredential:
    """What azure-identity raises when Entra refuses the bot's own client secret."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        raise ClientAuthenticationError("AADSTS7000215: Invalid client secret provided. Trace ID: 1f2e3d4c")


async def test_entra_refusing_the_bots_secret_is_named_by_its_whole_code(sample_tenant: SampleTenant) -> None:
    async with GraphHttp(sample_tenant.graph.base_url, RefusingCredential()) as http:
        directory = GraphDirectory(http, GraphMode.LIVE, credential_source=credential_source())
        result = await diagnose(SAMPLES["secret_mismatch"].text, directory=directory, now=sample_reference_time())
    assert_names_the_bots_credential(result)
    assert "(no token: AADSTS7000215)" in result.notes[0]  # all seven digits
    assert "Trace ID" not in result.notes[0]  # Entra's own words stay out of the answer
    assert sample_tenant.graph.requests == []


async def test_no_token_for_graph_says_the_bots_own_credential_was_refused(
    sample_tenant: SampleTenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The credential the server builds, from the same variables, its token endpoint unreachable (a
    # closed local port).
    for name, value in (("SECRET", BOT_SECRET), ("ID", BOT_CLIENT)):
        monkeypatch.setenv(f"AZURE_CLIENT_{name}", value)
    monkeypatch.setenv("AZURE_TENANT_ID", BOT_TENANT)
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "https://127.0.0.1:9")
    async with (
        DefaultAzureCredential(retry_total=0) as credential,
        GraphHttp(sample_tenant.graph.base_url, credential) as http,
    ):
        directory = GraphDirectory(http, GraphMode.LIVE, credential_source=credential_source())
        result = await diagnose(SAMPLES["secret_mismatch"].text, directory=directory, now=sample_reference_time())
    assert_names_the_bots_credential(result)
    assert sample_tenant.graph.requests == []  # Graph was never asked without a token
    assert result.graph.round_trips == 0


@pytest.mark.parametrize("output", ["text", "json"])
def test_the_cli_names_the_bots_credential_when_it_gets_no_graph_token(output: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_", "MSI_", "GRAPH_"))}
    env |= {"AZURE_CLIENT_SECRET": BOT_SECRET, "AZURE_CLIENT_ID": BOT_CLIENT, "AZURE_TENANT_ID": BOT_TENANT}
    env |= {"AZURE_AUTHORITY_HOST": "https://127.0.0.1:9", "GRAPH_BASE_URL": "http://127.0.0.1:9"}  # closed ports
    paste = SAMPLES["secret_mismatch"].text
    result = subprocess.run(
        [sys.executable, "-m", "bot", "diagnose", "--format", output, paste],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert BOT_SECRET not in result.stdout + result.stderr
    if output == "text":
        assert "bot's own credential" in result.stdout and "not a missing permission" in result.stdout
        assert f"AZURE_CLIENT_SECRET for client id {BOT_CLIENT} in tenant {BOT_TENANT}" in result.stdout
    else:  # the JSON contract has no notes: it must at least not blame a permission
        data = json.loads(result.stdout)
        assert data["graph"] == {"mode": "live", "round_trips": 0, "missing_permissions": []}  # nothing sent
        assert "permission_missing" not in [f["cause"] for f in data["findings"]]
        assert [e["code"] for e in data["errors"]] == [7000215]
