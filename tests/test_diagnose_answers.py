"""Answers that must not mislead: a secret ID only mentioned, an app Entra ID did find, a problem
fixed since the error. Against the sample tenant, through the fake Graph and the real msgraph-sdk."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.domain import Cause, Diagnosis, Severity
from bot.fakegraph.samples import sample_errors, sample_reference_time
from handlers import rules
from handlers.diagnose import diagnose
from handlers.parse import parse
from tests.conftest import SampleTenant

HR_SYNC = "e4d3921a-724a-47f6-a518-182b5e200159"
HR_SYNC_KEY = "dde5a881-1aaf-4366-8999-f49576886726"  # secret 'hr-sync-2026', valid until 2028
PAYMENTS = "dc36fc90-2248-4d70-aca4-a1a9f5b19f71"
BUILD_AGENT = "8c3f846c-c6a9-42d3-83f8-4c485e5c4176"
UNKNOWN_APP = "3f9a1c27-6b4e-4d8a-9e2f-71c05b8d4a63"
BOT_TENANT = "6f1c3a52-8d4e-4b7a-9c21-3e5f7a9b0c14"
OTHER_TENANT = "c0ffee00-1234-4abc-9def-0123456789ab"
NOW = sample_reference_time()


def invalid_secret(app: str, stamp: str = "2026-11-20 09:00:00Z") -> str:
    return (
        "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client "
        f"secret value, not the client secret ID, for a secret added to app '{app}'. Timestamp: {stamp}"
    )


def fixes(result: Diagnosis) -> list[str]:
    return [step for finding in result.findings for step in finding.fix]


# --- a secret ID: a cause only where the value goes ---------------------------------------------


async def test_a_quoted_valid_secret_id_is_evidence_not_the_cause(sample_tenant: SampleTenant) -> None:
    paste = f"Is secret {HR_SYNC_KEY} the one that broke? We get this:\n{invalid_secret(HR_SYNC)}"
    result = await diagnose(paste, directory=sample_tenant.directory, now=NOW)
    assert Cause.SECRET_ID_USED_AS_VALUE not in [f.cause for f in result.findings]
    assert result.primary is not None and result.primary.cause is Cause.SECRET_MISMATCH
    named = [line for line in result.primary.evidence if line.startswith(HR_SYNC_KEY)]
    assert named and "'hr-sync-2026'" in named[0] and "active" in named[0]
    assert not [step for step in fixes(result) if "delete" in step.lower() or "remove" in step.lower()]


VALUE_POSITIONS = [
    f"client_id={HR_SYNC}&grant_type=client_credentials&client_secret={HR_SYNC_KEY}",
    f"az login --service-principal -u {HR_SYNC} -p {HR_SYNC_KEY} --tenant {BOT_TENANT}",
    f'az login --service-principal --username {HR_SYNC} --password "{HR_SYNC_KEY}"',
    f'{{"clientId": "{HR_SYNC}", "clientSecret": "{HR_SYNC_KEY}"}}',
    f'"AzureAd": {{ "ClientId": "{HR_SYNC}", "ClientSecret": "{HR_SYNC_KEY}" }}',
    f"AZURE_CLIENT_ID={HR_SYNC}\nAZURE_CLIENT_SECRET={HR_SYNC_KEY}",
    f"ARM_CLIENT_SECRET={HR_SYNC_KEY}",
    f"auth:\n  client_id: {HR_SYNC}\n  client_secret: {HR_SYNC_KEY}",
]


@pytest.mark.parametrize(
    "where",
    VALUE_POSITIONS,
    ids=["form-body", "-p", "--password", "json", "appsettings", "env-azure", "env-arm", "yaml"],
)
async def test_a_secret_id_where_the_value_goes_is_the_cause(sample_tenant: SampleTenant, where: str) -> None:
    result = await diagnose(f"{where}\n{invalid_secret(HR_SYNC)}", directory=sample_tenant.directory, now=NOW)
    assert result.primary is not None and result.primary.cause is Cause.SECRET_ID_USED_AS_VALUE
    assert any("'hr-sync-2026'" in line for line in result.primary.evidence)
    # The secret is valid: the answer keeps it and never advises deleting it.
    assert any(step.startswith("Keep secret 'hr-sync-2026'") for step in result.primary.fix)
    assert not [step for step in fixes(result) if "delete" in step.lower()]


async def test_the_id_of_an_expired_secret_is_not_to_be_kept(sample_tenant: SampleTenant) -> None:
    nightly, expired_key = "0db317d9-4c8e-4fa3-969a-73bf4c83cf3b", "e500bddf-37b0-4307-8f0f-4c3c2052e52b"
    text = (
        f"client_secret={expired_key}\nAADSTS7000222: The provided client secret keys for app '{nightly}' are expired."
    )
    result = await diagnose(text, directory=sample_tenant.directory, now=NOW)
    finding = next(f for f in result.findings if f.cause is Cause.SECRET_ID_USED_AS_VALUE)
    assert "The secret 'export-2025a' is expired: use a valid secret." in finding.fix
    assert not any(step.startswith("Keep") for step in finding.fix)


async def test_a_bare_guid_that_is_a_secret_id_is_the_cause(sample_tenant: SampleTenant) -> None:
    # A bare GUID is looked up as an app id; when it is one of the app's secret IDs, it is the cause.
    facts = await sample_tenant.directory.lookup(HR_SYNC)
    findings = rules.from_directory(parse(f"  {HR_SYNC_KEY}\n"), facts, NOW)
    assert rules.ordered(findings)[0].cause is Cause.SECRET_ID_USED_AS_VALUE
    # The same GUID mentioned in a sentence is not.
    mentioned = rules.from_directory(parse(f"secret {HR_SYNC_KEY}"), facts, NOW)
    assert Cause.SECRET_ID_USED_AS_VALUE not in [f.cause for f in mentioned]


async def test_a_bare_secret_id_that_names_no_app_says_so(sample_tenant: SampleTenant) -> None:
    result = await diagnose(HR_SYNC_KEY, directory=sample_tenant.directory, now=NOW)
    assert result.primary is not None and result.primary.cause is Cause.APP_NOT_FOUND
    assert any("Secret ID" in step for step in result.primary.fix)


async def test_without_graph_only_the_value_position_counts() -> None:
    quoted = await diagnose(f"Secret ID {HR_SYNC_KEY}\n{invalid_secret(HR_SYNC)}", directory=None, now=NOW)
    handed = await diagnose(f"-p {HR_SYNC_KEY}\n{invalid_secret(HR_SYNC)}", directory=None, now=NOW)
    bare = await diagnose(HR_SYNC_KEY, directory=None, now=NOW)
    assert Cause.SECRET_ID_USED_AS_VALUE not in [f.cause for f in quoted.findings + bare.findings]
    assert handed.primary is not None and handed.primary.cause is Cause.SECRET_ID_USED_AS_VALUE
    assert not [step for step in handed.primary.fix if "delete" in step.lower()]


async def test_no_fix_advises_removing_a_secret_valid_at_the_error(sample_tenant: SampleTenant) -> None:
    for sample in sample_errors():
        result = await diagnose(sample.text, directory=sample_tenant.directory, now=NOW)
        if result.app is None:
            continue
        valid = [c for c in result.app.secrets if c.is_valid_at(result.reference_time)]
        for step in fixes(result):
            if "delete" in step.lower() or "remove" in step.lower():
                for secret in valid:
                    assert f"'{secret.display_name}'" not in step and secret.key_id not in step, (sample.cause, step)


# --- app_not_found when the error proves the app exists -----------------------------------------


async def test_app_found_by_entra_but_not_here_names_both_tenants(sample_tenant: SampleTenant) -> None:
    paste = f"POST https://login.microsoftonline.com/{OTHER_TENANT}/oauth2/v2.0/token\n{invalid_secret(UNKNOWN_APP)}"
    result = await diagnose(paste, directory=sample_tenant.directory, now=NOW)
    primary = result.primary
    assert primary is not None and primary.cause is Cause.APP_NOT_FOUND
    assert "another tenant or cloud" in primary.summary
    evidence = " ".join(primary.evidence)
    assert OTHER_TENANT in evidence and BOT_TENANT in evidence and "northwind-ops.onmicrosoft.com" in evidence
    assert any("AZURE_TENANT_ID" in step and OTHER_TENANT in step for step in primary.fix)
    assert any("GRAPH_BASE_URL" in step for step in primary.fix)
    # The tenant difference is explained once, in this finding, not as "check the client's tenant".
    assert Cause.TENANT_MISMATCH not in [f.cause for f in result.findings]


async def test_app_found_by_entra_without_a_pasted_tenant(sample_tenant: SampleTenant) -> None:
    text = (
        "AADSTS7000222: The provided client secret keys for app "
        f"'{UNKNOWN_APP}' are expired. Timestamp: 2026-11-20 09:00:00Z"
    )
    result = await diagnose(text, directory=sample_tenant.directory, now=NOW)
    primary = result.primary
    assert primary is not None and primary.cause is Cause.APP_NOT_FOUND
    assert "AADSTS7000222" in primary.evidence[0]
    assert any("does not say which tenant" in line for line in primary.evidence)
    assert any(BOT_TENANT in line for line in primary.evidence)
    assert any("AZURE_TENANT_ID" in step and "token URL" in step for step in primary.fix)


async def test_app_found_in_a_national_cloud(sample_tenant: SampleTenant) -> None:
    paste = f"POST https://login.microsoftonline.us/{OTHER_TENANT}/oauth2/v2.0/token\n{invalid_secret(UNKNOWN_APP)}"
    result = await diagnose(paste, directory=sample_tenant.directory, now=NOW)
    assert result.primary is not None and result.primary.cause is Cause.APP_NOT_FOUND
    assert any("GRAPH_BASE_URL to https://graph.microsoft.us" in step for step in result.primary.fix)


async def test_app_found_in_this_very_tenant_but_gone(sample_tenant: SampleTenant) -> None:
    paste = f"POST https://login.microsoftonline.com/{BOT_TENANT}/oauth2/v2.0/token\n{invalid_secret(UNKNOWN_APP)}"
    result = await diagnose(paste, directory=sample_tenant.directory, now=NOW)
    assert result.primary is not None and result.primary.cause is Cause.APP_NOT_FOUND
    assert "in this tenant when the error happened" in result.primary.summary
    assert not any("AZURE_TENANT_ID" in step and BOT_TENANT in step for step in result.primary.fix)


async def test_not_found_codes_keep_the_plain_answer(sample_tenant: SampleTenant) -> None:
    sample = next(s for s in sample_errors() if s.cause == "app_not_found")
    result = await diagnose(sample.text, directory=sample_tenant.directory, now=NOW)
    assert result.primary is not None and result.primary.summary == "No app with this id exists in this tenant."


async def test_bots_tenant_unknown_still_names_the_pasted_tenant(sample_tenant: SampleTenant) -> None:
    sample_tenant.graph.add_fault(r"/organization", 404)  # the bot's own tenant cannot be read
    paste = f"POST https://login.microsoftonline.com/{OTHER_TENANT}/oauth2/v2.0/token\n{invalid_secret(UNKNOWN_APP)}"
    result = await diagnose(paste, directory=sample_tenant.directory, now=NOW)
    primary = result.primary
    assert primary is not None and primary.cause is Cause.APP_NOT_FOUND
    assert any(OTHER_TENANT in line for line in primary.evidence)
    assert not any(line.startswith("This bot reads tenant") for line in primary.evidence)
    assert any("AZURE_TENANT_ID" in step and OTHER_TENANT in step for step in primary.fix)


# --- what changed since the error -----------------------------------------------------------------


async def test_a_secret_added_since_the_error_is_named(sample_tenant: SampleTenant) -> None:
    # At 08:40 build-agent had no valid secret; 'agent-2026-11' was added at 08:52.
    result = await diagnose(
        invalid_secret(BUILD_AGENT, "2026-11-20 08:40:00Z"), directory=sample_tenant.directory, now=NOW
    )
    primary = result.primary
    assert primary is not None and primary.cause is Cause.ALL_SECRETS_EXPIRED  # judged at the error's time
    assert (
        "Since the error (2026-11-20 08:40 UTC) a new secret 'agent-2026-11' was added at 2026-11-20 08:52 UTC: "
        "if the client now uses it, the error is fixed." in primary.evidence
    )
    assert primary.fix[0].startswith("First check whether the client already sends secret 'agent-2026-11'")


async def test_a_secret_expired_since_the_error_is_named(sample_tenant: SampleTenant) -> None:
    # On 2026-09-20 both secrets of payments-api were valid; 'ci-2025' ended on 2026-10-01.
    result = await diagnose(
        invalid_secret(PAYMENTS, "2026-09-20 12:00:00Z"), directory=sample_tenant.directory, now=NOW
    )
    primary = result.primary
    assert primary is not None and primary.cause is Cause.SECRET_MISMATCH
    assert any("secret 'ci-2025' has expired, at 2026-10-01 00:00 UTC" in line for line in primary.evidence)
    assert any("Do not switch the client to secret 'ci-2025'" in step for step in primary.fix)


async def test_nothing_is_said_when_nothing_changed(sample_tenant: SampleTenant) -> None:
    result = await diagnose(invalid_secret(PAYMENTS), directory=sample_tenant.directory, now=NOW)
    assert not [line for f in result.findings for line in f.evidence if line.startswith("Since the error")]


def test_cli_now_later_than_the_timestamp_reports_the_change() -> None:
    data = _cli_json(invalid_secret(BUILD_AGENT, "2026-11-20 08:40:00Z"), "--snapshot", "sample")
    primary = data["findings"][0]
    assert primary["cause"] == "all_secrets_expired" and primary["severity"] == Severity.ERROR.value
    assert any("'agent-2026-11' was added at 2026-11-20 08:52 UTC" in line for line in primary["evidence"])
    # The JSON contract is unchanged: the change is told in evidence and fix lines.
    assert set(primary) == {"cause", "severity", "summary", "evidence", "fix"}
    assert data["input"]["timestamp"] == "2026-11-20T08:40:00Z"


def _cli_json(paste: str, *args: str) -> dict[str, Any]:
    now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "diagnose", *args, "--now", now, "--format", "json", paste],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data
