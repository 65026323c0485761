"""`secretbot diagnose --snapshot` with a bare `az ad app list --all` export: it claims only what it holds.

tests/fixtures/az_ad_app_list.json is two elements of `az ad app list --all` output: a bare JSON
array of Graph v1.0 application objects with every key az prints (the shape of
`az_ad_app_list_record` in tests/test_fakegraph.py, taken from Graph's v1.0 application resource
as azure-cli >= 2.37 prints it). Such a file has no tenant, no service principals, no deleted
applications and no logs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

EXPORT = str(Path(__file__).parent / "fixtures" / "az_ad_app_list.json")
INVENTORY_SYNC = "5f2a9c7e-3b1d-4e8f-a6c4-9d0b2e7f1a83"  # in the export, with one valid and one expired secret
MISSING_APP = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"  # not in the export
REAL_TENANT = "0b6a1d4e-2f3c-4d5e-8a7b-9c0d1e2f3a4b"  # the tenant the export came from, named by the paste
NOW = "2026-11-20T09:00:00Z"


def diagnose(paste: str, *, output: str = "json") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "diagnose", "--snapshot", EXPORT, "--now", NOW, "--format", output, "-"],
        input=paste,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def answer(paste: str) -> dict[str, Any]:
    result = diagnose(paste)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def wrong_secret(app_id: str, tenant: str = REAL_TENANT) -> str:
    return (
        f"POST https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token\n"
        '{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Ensure the '
        "secret being sent in the request is the client secret value, not the client secret ID, for a secret added "
        f"to app '{app_id}'.\\r\\nTrace ID: 1e2d3c4b-5a69-4788-9766-554433221100\\r\\nCorrelation ID: "
        '2f3e4d5c-6b7a-4899-8877-665544332211\\r\\nTimestamp: 2026-11-20 08:57:00Z","error_codes":[7000215]}'
    )


def causes(data: dict[str, Any]) -> list[str]:
    return [f["cause"] for f in data["findings"]]


def test_fixture_is_a_bare_array_of_applications() -> None:
    records = json.loads(Path(EXPORT).read_text(encoding="utf-8"))
    assert isinstance(records, list) and len(records) == 2
    assert all({"appId", "id", "passwordCredentials", "publisherDomain"} <= set(r) for r in records)


def test_a_paste_naming_the_real_tenant_is_no_tenant_mismatch() -> None:
    data = answer(wrong_secret(INVENTORY_SYNC))
    assert data["input"]["tenant"] == REAL_TENANT
    assert "tenant_mismatch" not in causes(data)
    assert data["app"]["display_name"] == "inventory-sync" and data["app"]["found_in"] == "tenant"
    assert data["findings"][0]["cause"] == "secret_mismatch"
    assert any("'Wq5'" in line for line in data["findings"][0]["evidence"])


def test_an_app_missing_from_the_export_is_not_in_this_export() -> None:
    data = answer(wrong_secret(MISSING_APP))
    [finding] = [f for f in data["findings"] if f["cause"] == "app_not_found"]
    assert finding["severity"] == "warning"  # not a definitive claim about the tenant
    assert "this export" in finding["summary"] and "tenant" not in finding["summary"].split(";")[0]
    assert any("no service principals and no deleted applications" in line for line in finding["evidence"])
    assert data["app"]["found_in"] == "nowhere"
    assert not {"app_in_other_tenant", "app_deleted", "tenant_mismatch"} & set(causes(data))
    text = diagnose(wrong_secret(MISSING_APP), output="text").stdout
    assert "(not in this export)" in text.splitlines()[0] and "not in this tenant" not in text


def test_the_export_makes_no_service_principal_claims() -> None:
    paste = (
        f"AADSTS7000112: Application '{INVENTORY_SYNC}'(inventory-sync) is disabled. Timestamp: 2026-11-20 08:57:00Z"
    )
    data = answer(paste)
    assert "app_disabled" not in causes(data)
    text = diagnose(paste, output="text").stdout
    assert "enabled now" not in text and "service principal is enabled" not in text.lower()


def test_the_export_gives_no_permission_advice_for_logs_it_never_had() -> None:
    data = answer(wrong_secret(INVENTORY_SYNC))
    assert data["graph"] == {"mode": "snapshot", "round_trips": 1, "missing_permissions": []}  # no log request
    assert "permission_missing" not in causes(data)
    everything = json.dumps(data)
    assert "Grant AuditLog.Read.All" not in everything
    assert any("needs live Graph" in line for line in data["findings"][0]["evidence"])
