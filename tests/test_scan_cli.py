"""The `secretbot scan` contract (ARCHITECTURE.md): JSON keys, types and order, CSV, text, --within,
--fail-on exit codes, and one-line usage errors (exit 2), run as a user runs it."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

NOW = "2026-11-20T09:00:00Z"
KEYS = {
    "object_type", "app_id", "object_id", "display_name", "kind", "usage", "key_id", "name", "hint", "start", "end",
    "days_left", "state", "threshold", "replaced_by", "owners", "last_used",
}  # fmt: skip


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "scan", *args], capture_output=True, text=True, timeout=60, check=False, env=env
    )


def scan_json(*args: str) -> dict[str, Any]:
    result = run("--snapshot", "sample", "--format", "json", *args)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return scan_json("--now", NOW)


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in report["credentials"]}


def test_json_follows_the_contract(report: dict[str, Any]) -> None:
    assert set(report) == {"scanned_at", "tenant", "counts", "credentials"}
    assert report["scanned_at"] == NOW and report["tenant"] == "6f1c3a52-8d4e-4b7a-9c21-3e5f7a9b0c14"
    assert report["counts"] == {"applications": 13, "service_principals": 14, "credentials": 20}
    for row in report["credentials"]:
        assert set(row) == KEYS
        assert row["object_type"] in {"application", "servicePrincipal"} and row["kind"] in {"secret", "certificate"}
        assert row["state"] in {"expired", "expiring", "valid", "no_end"}
        assert isinstance(row["days_left"], int) and (row["threshold"] is None or isinstance(row["threshold"], int))
        assert row["key_id"] == row["key_id"].lower()
        assert all(set(owner) == {"id", "display_name", "upn", "mail"} for owner in row["owners"])
    ends = [row["end"] for row in report["credentials"]]
    assert ends == sorted(ends)


def test_the_sample_crosses_every_threshold_once_and_expired_ones_are_zero(report: dict[str, Any]) -> None:
    rows = by_name(report)
    assert (rows["wh-2025"]["days_left"], rows["wh-2025"]["threshold"]) == (25, 30)
    assert (rows["CN=Microsoft Azure Federated SSO Certificate"]["threshold"]) == 14
    assert (rows["worker-2024"]["days_left"], rows["worker-2024"]["threshold"]) == (9, 14)
    assert (rows["ship-2025"]["days_left"], rows["ship-2025"]["threshold"]) == (5, 7)
    assert (rows["reports-key"]["days_left"], rows["reports-key"]["threshold"], rows["reports-key"]["state"]) == (
        0,
        1,
        "expiring",
    )
    expired = [row for row in report["credentials"] if row["state"] == "expired"]
    assert expired and all(row["threshold"] == 0 and row["days_left"] < 0 for row in expired)


def test_rotated_saml_ownerless_and_last_use_rows(report: dict[str, Any]) -> None:
    rows = by_name(report)
    assert rows["ship-2025"]["replaced_by"] == "e1f4a7c2-5b8d-4e3f-9a6c-2d7b1e8f4a95"
    assert rows["wh-2025"]["replaced_by"] is None
    saml = rows["CN=Microsoft Azure Federated SSO Certificate"]
    assert (saml["object_type"], saml["kind"], saml["usage"]) == ("servicePrincipal", "certificate", "Sign")
    assert [owner["display_name"] for owner in saml["owners"]] == ["Aisha Okafor"]  # the app registration's owners
    assert rows["reports-key"]["owners"] == []
    assert rows["worker-2024"]["last_used"] == "2026-11-20T07:30:18Z"
    assert rows["ci-2025"]["last_used"] is None  # it only ever failed
    assert not any(secret in json.dumps(report) for secret in ("secretText", "customKeyIdentifier"))


def test_within_limits_rows_but_keeps_expired_ones(report: dict[str, Any]) -> None:
    narrow = scan_json("--now", NOW, "--within", "5")
    names = [row["name"] for row in narrow["credentials"]]
    assert "ship-2025" in names and "reports-key" in names
    assert "worker-2024" not in names and "wh-2025" not in names
    assert sum(row["state"] == "expired" for row in narrow["credentials"]) == sum(
        row["state"] == "expired" for row in report["credentials"]
    )
    assert narrow["counts"] == report["counts"]


def test_now_moves_the_clock() -> None:
    later = scan_json("--now", "2026-11-26T09:00:00Z")
    assert by_name(later)["ship-2025"]["state"] == "expired" and by_name(later)["ship-2025"]["threshold"] == 0


def test_csv_has_the_json_fields_one_line_per_credential(report: dict[str, Any]) -> None:
    result = run("--snapshot", "sample", "--now", NOW, "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert set(rows[0]) == KEYS
    assert [row["key_id"] for row in rows] == [row["key_id"] for row in report["credentials"]]
    payments = next(row for row in rows if row["name"] == "ci-2025")
    assert payments["owners"] == (  # the last is the bot's own service principal: the app is one it may rotate
        "Priya Raman <priya.raman@northwind-ops.example>; Jonas Berg <jonas.berg@northwind-ops.example>; secretbot"
    )


def test_text_summarises_and_names_the_ownerless_app() -> None:
    result = run("--snapshot", "sample", "--now", NOW)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Scanned tenant 6f1c3a52-8d4e-4b7a-9c21-3e5f7a9b0c14 at 2026-11-20T09:00:00Z:")
    block = result.stdout.split("legacy-reports", 1)[1].split("\n\n", 1)[0]
    assert "owners: none (ownerless)" in block
    assert "replaced by e1f4a7c2-5b8d-4e3f-9a6c-2d7b1e8f4a95" in result.stdout
    assert result.stderr == ""  # no progress bar for a snapshot, nor when stderr is not a terminal


def test_fail_on_gates_a_pipeline(tmp_path: Path) -> None:
    assert run("--snapshot", "sample", "--now", NOW, "--fail-on", "3", "--format", "csv").returncode == 1
    healthy = tmp_path / "healthy.json"
    healthy.write_text(
        json.dumps(
            [
                {
                    "id": "0a1b2c3d-0000-4000-8000-000000000001",
                    "appId": "0a1b2c3d-0000-4000-8000-000000000002",
                    "displayName": "fresh-app",
                    "passwordCredentials": [
                        {
                            "keyId": "0a1b2c3d-0000-4000-8000-000000000003",
                            "displayName": "fresh",
                            "hint": "Ab1",
                            "startDateTime": "2026-11-01T00:00:00Z",
                            "endDateTime": "2027-01-10T00:00:00Z",
                        }
                    ],
                }
            ]
        )
    )
    passed = run("--snapshot", str(healthy), "--now", NOW, "--fail-on", "30", "--format", "json")
    assert passed.returncode == 0, passed.stderr
    assert json.loads(passed.stdout)["credentials"] == []  # 50 days left: outside the default 30
    # An export without sign-ins: last use cannot be known, and stderr says so once (stdout stays JSON).
    assert passed.stderr.count("\n") == 1 and "AuditLog.Read.All" in passed.stderr
    failed = run("--snapshot", str(healthy), "--now", NOW, "--fail-on", "60", "--format", "json")
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["credentials"] == []  # the gate looks further than the rows shown


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--snapshot", "/nonexistent/tenant.json"), "cannot read snapshot /nonexistent/tenant.json"),
        (("--snapshot", "sample", "--within", "soon"), "not a number of days"),
        (("--snapshot", "sample", "--fail-on", "-1"), "not a number of days"),
        (("--snapshot", "sample", "--format", "xml"), "invalid choice"),
        (("--snapshot", "sample", "--now", "yesterday"), "not an ISO 8601 time"),
        (("--snapshot", "sample", "--post"), "--post needs REDIS_URL"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and message in result.stderr and "Traceback" not in result.stderr


def test_an_unreadable_snapshot_is_exit_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"applications": [{"displayName": "no ids"}]}')
    result = run("--snapshot", str(broken))
    assert (
        result.returncode == 2 and result.stderr.startswith("secretbot: snapshot ") and "has no appId" in result.stderr
    )


def test_without_graph_credentials_or_a_snapshot_it_says_what_to_set() -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}
    result = run(env=env)
    assert result.returncode == 2
    assert "AZURE_" in result.stderr and "--snapshot" in result.stderr and "Traceback" not in result.stderr
