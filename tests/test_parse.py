"""The parser against the public corpus and against the formats people really paste."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from handlers.parse import parse
from tests.paths import CORPUS

APP = "a1b2c3d4-1111-2222-3333-444455556666"
TENANT = "1cdf1d7c-ca85-45c7-b1a6-0d197aa07dc5"
TRACE = "7f8e9d0c-aaaa-bbbb-cccc-1234567890ab"
CORRELATION = "0c1d2e3f-9999-8888-7777-fedcba987654"


def _corpus() -> list[dict[str, object]]:
    cases = []
    for name in ("seed-errors.jsonl", "real-errors.jsonl"):
        lines = (CORPUS / name).read_text(encoding="utf-8").splitlines()
        cases += [json.loads(line) for line in lines if line.strip()]
    return cases


def _iso(printed: object) -> str | None:
    return str(printed).replace(" ", "T") if printed else None


@pytest.mark.parametrize("case", _corpus(), ids=lambda c: str(c["id"]))
def test_public_corpus_facts(case: dict[str, object]) -> None:
    parsed = parse(str(case["text"]))
    assert list(parsed.codes) == case["codes"]
    assert parsed.app_id == case["app_id"]
    assert parsed.tenant == case["tenant"]
    assert parsed.trace_id == case["trace_id"]
    assert parsed.correlation_id == case["correlation_id"]
    stamp = parsed.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ") if parsed.timestamp else None
    assert stamp == _iso(case["timestamp"])
    assert not parsed.secret_value_detected


def test_corpus_is_present() -> None:
    assert len(_corpus()) >= 20


# --- chat formats -----------------------------------------------------------------------------


def test_slack_mrkdwn_entities_links_mentions_and_fences() -> None:
    text = (
        "<@U024BE7LH> prod is down again :fire:\n```\n"
        '{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. '
        f"Ensure the secret being sent in the request is the client secret value, not the client secret ID, "
        f"for a secret added to app &amp;#39;{APP}&amp;#39;.\\r\\nTrace ID: {TRACE}\\r\\nCorrelation ID: "
        f'{CORRELATION}\\r\\nTimestamp: 2026-06-27 14:32:07Z","error_codes":[7000215]}}\n```\n'
        f"token url: <https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token|"
        f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token> cc <!here>"
    )
    parsed = parse(text)
    assert parsed.codes == (7000215,)
    assert parsed.app_id == APP
    assert parsed.tenant == TENANT
    assert parsed.trace_id == TRACE
    assert parsed.correlation_id == CORRELATION
    assert parsed.timestamp == datetime(2026, 6, 27, 14, 32, 7, tzinfo=UTC)
    assert parsed.error == "invalid_client"


def test_slack_escaped_placeholder_is_not_an_id() -> None:
    parsed = parse("AADSTS7000222: The provided client secret keys for app '&lt;your-app-id&gt;' are expired.")
    assert parsed.codes == (7000222,)
    assert parsed.app_id is None
    assert not parsed.app_id_masked


def test_teams_html_with_mention_breaks_and_entities() -> None:
    text = (
        "<p><at>secretbot</at>&nbsp;help please</p><p>AADSTS7000222: The provided client secret keys for app "
        f"&#39;<span>{APP}</span>&#39; are expired.<br>Trace ID: {TRACE}<br/>Correlation ID: {CORRELATION}"
        "<br>Timestamp: 2026-11-20 09:00:00Z</p>"
    )
    parsed = parse(text)
    assert parsed.codes == (7000222,)
    assert parsed.app_id == APP
    assert parsed.trace_id == TRACE
    assert parsed.correlation_id == CORRELATION
    assert parsed.timestamp == datetime(2026, 11, 20, 9, tzinfo=UTC)


def test_doubly_escaped_json_inside_a_string() -> None:
    text = (
        '"message": "{\\\\\\"error\\\\\\":\\\\\\"invalid_client\\\\\\",\\\\\\"error_description\\\\\\":'
        f'\\\\\\"AADSTS70002: Error validating credentials. AADSTS50012: Invalid client secret is provided.'
        f"\\\\r\\\\nTrace ID: {TRACE}\\\\r\\\\nCorrelation ID: {CORRELATION}\\\\r\\\\nTimestamp: 2018-12-26 "
        '23:33:22Z\\\\\\"}"'
    )
    parsed = parse(text)
    assert parsed.codes == (70002, 50012)
    assert parsed.trace_id == TRACE
    assert parsed.correlation_id == CORRELATION
    assert parsed.timestamp == datetime(2018, 12, 26, 23, 33, 22, tzinfo=UTC)
    assert parsed.error == "invalid_client"


def test_form_encoded_body() -> None:
    text = (
        "error=invalid_client&error_description=AADSTS7000215%3a+Invalid+client+secret+provided.+Ensure+the+"
        f"secret+being+sent+in+the+request+is+the+client+secret+value%2c+for+a+secret+added+to+app+%27{APP}%27."
        f"%0d%0aTrace+ID%3a+{TRACE}%0d%0aCorrelation+ID%3a+{CORRELATION}%0d%0aTimestamp%3a+2026-06-27+"
        "14%3a32%3a07Z&error_codes=%5b7000215%5d"
    )
    parsed = parse(text)
    assert parsed.codes == (7000215,)
    assert parsed.app_id == APP
    assert parsed.trace_id == TRACE
    assert parsed.correlation_id == CORRELATION
    assert parsed.timestamp == datetime(2026, 6, 27, 14, 32, 7, tzinfo=UTC)


def test_lines_and_a_guid_wrapped_by_the_terminal() -> None:
    text = (
        "Get-Token : AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in\n"
        "the request is the client secret value, not the client secret ID, for a secret added to app\n"
        f"'{APP[:22]}\n{APP[22:]}'.\nTrace ID:\n{TRACE}"
    )
    parsed = parse(text)
    assert parsed.app_id == APP
    assert parsed.trace_id == TRACE


# --- ids: where they come from, and what is not an id ------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f"az login --service-principal -u {APP} -p $SECRET --tenant {TENANT}\nERROR: AADSTS7000215: Invalid",
        f"  client-id: {APP}\n  tenant-id: {TENANT}\nError: AADSTS7000215: Invalid client secret provided.",
        f'{{"appId": "{APP}", "tenant": "{TENANT}"}} AADSTS7000222: expired',
        f"POST /{TENANT}/oauth2/v2.0/token client_id={APP}&grant_type=client_credentials AADSTS7000215",
        f"AADSTS700016: Application with identifier '{APP}' was not found in the directory '{TENANT}'.",
        f"AADSTS7000112: Application '{APP}'(payments-api) is disabled. tenant '{TENANT}'",
    ],
)
def test_app_and_tenant_from_any_tool(text: str) -> None:
    parsed = parse(text)
    assert parsed.app_id == APP
    assert parsed.tenant == TENANT


def test_the_error_sentence_wins_over_other_guids() -> None:
    text = (
        "Failed to refresh the Token for request to https://management.azure.com/subscriptions/"
        "0f63fc1a-b8fc-4f0f-b401-e84305428a29/resourceGroups/x: x-ms-request-id: "
        "5a3c1d7e-0000-4c2b-9a8d-112233445566 ##vso[task.issue correlationId=2c5dff30-4ee8-474d-9fc5-6cbdf2da3969]"
        f"\nAADSTS7000215: Invalid client secret provided for a secret added to app '{APP}'. "
        f"Trace ID: {TRACE} Correlation ID: {CORRELATION}"
    )
    parsed = parse(text)
    assert parsed.app_id == APP
    assert parsed.trace_id == TRACE
    assert parsed.correlation_id == CORRELATION
    assert parsed.tenant is None


def test_resource_app_id_is_not_the_client() -> None:
    text = (
        "AADSTS650057: Invalid resource. Resource app ID: 00000003-0000-0000-c000-000000000000. "
        f"Client app ID: {APP}(payments-api)."
    )
    assert parse(text).app_id == APP


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Error: AADSTS7000215: Invalid client secret provided ... for a secret added to app '***'.", True),
        ("  client-id: ***\nError: AADSTS700016: Application with identifier '***' was not found", True),
        ("AADSTS700016: Application with identifier '00000000-0000-0000-0000-000000000000' was not found", False),
        ("AADSTS700016: Application with identifier 'a1b2c3d4-1111-2222-3333-4444' was not found", False),
        ("AADSTS700016: Application with identifier 'a1b2c3d4-1111-2222-3333-444455556666x' was not", False),
        ("az login --service-principal -u <appId> -p <secret> --tenant $tenantid", False),
    ],
)
def test_masked_placeholder_truncated_and_mangled_ids_are_not_ids(text: str, masked: bool) -> None:
    parsed = parse(text)
    assert parsed.app_id is None
    assert parsed.app_id_masked is masked
    assert parsed.tenant is None


def test_a_real_id_elsewhere_beats_a_masked_one() -> None:
    parsed = parse(f"Error: AADSTS7000215 for a secret added to app '***'.\nclient_id={APP}")
    assert parsed.app_id == APP
    assert not parsed.app_id_masked


@pytest.mark.parametrize(
    ("url", "tenant"),
    [
        (f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token", TENANT),
        ("https://login.windows.net/contoso.onmicrosoft.com/oauth2/token", "contoso.onmicrosoft.com"),
        (f"https://login.microsoftonline.us/{TENANT}/oauth2/v2.0/authorize?client_id=x", TENANT),
        (f"https://login.partner.microsoftonline.cn/{TENANT}/oauth2/v2.0/token", TENANT),
        ("https://login.microsoftonline.com/common/oauth2/v2.0/token", None),
    ],
)
def test_tenant_from_the_authority_url(url: str, tenant: str | None) -> None:
    parsed = parse(f"AADSTS7000215: Invalid client secret provided. POST {url}")
    assert parsed.tenant == tenant
    assert parsed.common_authority is (tenant is None)


def test_tenant_display_name_is_not_a_tenant() -> None:
    assert parse("AADSTS700016: ... was not found in the directory 'Default Directory'.").tenant is None


def test_bare_guid_is_an_app_id() -> None:
    assert parse(f"  {APP.upper()}\n").app_id == APP


# --- where a GUID stands: a secret's value, or a mention ----------------------------------------

KEY = "dde5a881-1aaf-4366-8999-f49576886726"


@pytest.mark.parametrize(
    "text",
    [
        f"grant_type=client_credentials&client_secret={KEY}&scope=x",
        f"az login --service-principal -u {APP} -p {KEY}",
        f"az login --service-principal -u {APP} --password '{KEY}'",
        f"az ad sp credential reset --client-secret={KEY}",
        f'{{"clientId": "{APP}", "clientSecret": "{KEY}"}}',
        f'"AzureAd": {{"ClientSecret": "{KEY}"}}',
        f"AzureAd__ClientSecret={KEY}",
        f"export AZURE_CLIENT_SECRET={KEY}",
        f'env:\n  ARM_CLIENT_SECRET: "{KEY}"',
        f"client_secret: {KEY}",
        f"Secret Value: {KEY}",
    ],
)
def test_guid_where_the_secret_value_goes(text: str) -> None:
    parsed = parse(text)
    assert parsed.secret_guid == KEY
    assert not parsed.bare_guid


@pytest.mark.parametrize(
    "text",
    [
        f"Is secret {KEY} still valid?",
        f"the secret: {KEY} was created yesterday",
        f"Secret ID: {KEY}",
        f"AADSTS7000215: ... not the client secret ID, for a secret added to app '{KEY}'.",
        f"az login --service-principal -u {KEY} -p <secret>",
        f"client_secret_id={KEY}",
    ],
)
def test_guid_only_mentioned_is_not_in_the_value_place(text: str) -> None:
    parsed = parse(text)
    assert parsed.secret_guid is None
    assert KEY in parsed.guids


def test_a_guid_alone_is_marked_bare() -> None:
    parsed = parse(f"\n {KEY} \n")
    assert parsed.bare_guid and parsed.app_id == KEY and parsed.secret_guid is None
    assert not parse(f"app {KEY}").bare_guid


@pytest.mark.parametrize(
    ("host", "national"),
    [
        ("login.microsoftonline.us", True),
        ("login.chinacloudapi.cn", True),
        ("login.partner.microsoftonline.cn", True),
        ("login.microsoftonline.com", False),
    ],
)
def test_national_cloud_sign_in_host(host: str, national: bool) -> None:
    parsed = parse(f"POST https://{host}/{TENANT}/oauth2/v2.0/token")
    assert parsed.login_host == (host if national else None)


# --- codes, timestamp, error ------------------------------------------------------------------


def test_codes_deduplicated_in_order_of_first_appearance() -> None:
    text = "AADSTS50012 then AADSTS7000215 then AADSTS50012 again; also AADSTS123 and AADSTS12345678"
    assert parse(text).codes == (50012, 7000215)


def test_error_codes_field_comes_first() -> None:
    text = "{ error: 'invalid_client', error_description: 'AADSTS7000215: x', error_codes: [ 7000222 ] }"
    parsed = parse(text)
    assert parsed.codes == (7000222, 7000215)
    assert parsed.error == "invalid_client"


def test_lookup_link_and_sign_in_log_error_code() -> None:
    assert parse("see https://login.microsoftonline.com/error?code=7000222").codes == (7000222,)
    assert parse("Sign-in error code: 7000215\nFailure reason: Invalid client secret").codes == (7000215,)


def test_timestamp_with_fraction_and_t_separator() -> None:
    parsed = parse("AADSTS50011 Request Id: " + TRACE + " Timestamp: 2025-01-05T10:20:30.123Z")
    assert parsed.timestamp == datetime(2025, 1, 5, 10, 20, 30, tzinfo=UTC)
    assert parsed.trace_id == TRACE


def test_nothing_recognised() -> None:
    parsed = parse("the deploy failed, any idea?")
    assert not parsed.recognised
    assert parsed.codes == ()


@pytest.mark.parametrize(
    "text",
    [
        # Terraform azuread/azurerm: labels followed by a quoted value, no separator
        f'Error: building client: authenticating with client ID "{APP}" in tenant ID "{TENANT}": AADSTS7000215',
        # Sign-in error page, "Troubleshooting details"
        f"Request Id: {TRACE}\nCorrelation Id: {CORRELATION}\nTimestamp: 2023-06-05T08:18:52.000Z\n"
        f"Message: AADSTS50105: Your administrator has configured the application Payroll Sync ('{APP}') to "
        f"block users. tenant '{TENANT}'",
        # Go azidentity: the token URL names the tenant, the JSON body is spread over lines
        f"ClientSecretCredential: authentication failed\nPOST https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/"
        f'token\nRESPONSE 401 Unauthorized\n{{\n  "error": "invalid_client",\n  "error_description": "AADSTS7000215: '
        f"Invalid client secret provided for a secret added to app '{APP}'.\","
        '\n  "error_codes": [\n    7000215\n  ]\n}',
        # MSAL Python's result dict printed with repr()
        f"{{'error': 'invalid_client', 'error_description': \"AADSTS7000222: The provided client secret keys for app "
        f"'{APP}' are expired.\", 'error_codes': [7000222], 'tenant_id': '{TENANT}'}}",
    ],
)
def test_more_tools(text: str) -> None:
    parsed = parse(text)
    assert parsed.app_id == APP
    assert parsed.tenant == TENANT
    assert parsed.codes


def test_sign_in_page_request_id_is_the_trace_id() -> None:
    parsed = parse(
        f"AADSTS50011: x\nRequest Id: {TRACE}\nCorrelation Id: {CORRELATION}\nTimestamp: 2023-06-05T08:18:52Z"
    )
    assert (parsed.trace_id, parsed.correlation_id) == (TRACE, CORRELATION)


def test_quoted_and_wrapped_sentences() -> None:
    text = (
        f"> AADSTS700016: Application with\n> identifier '{APP}' was not found in the\n> directory\n> '{TENANT}'. "
        "This can happen if the application has not been installed."
    )
    parsed = parse(text)
    assert (parsed.app_id, parsed.tenant) == (APP, TENANT)
