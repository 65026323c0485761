"""Edits to the bundled sample tenant, as someone in the Entra admin center would make them while the
bot runs; a test hands the result to `FakeGraph.use_snapshot`."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.fakegraph import Snapshot, parse_snapshot, sample_snapshot_path

Json = dict[str, Any]
Edit = Callable[[Json], None]

PAYMENTS_APP = "dc36fc90-2248-4d70-aca4-a1a9f5b19f71"  # payments-api: ci-2025 expired, ci-2026 valid
NIGHTLY_EXPORT = "0db317d9-4c8e-4fa3-969a-73bf4c83cf3b"  # nightly-export: every secret expired
REPORTING_BOT = "04948682-4233-4b55-bff9-59b7c7fda173"  # reporting-bot: service principal disabled
NEW_KEY_ID = "9e3b1c55-0a7d-4f2e-8b6c-3d5f7a9e1b20"


def edited(*edits: Edit) -> Snapshot:
    data: Json = json.loads(sample_snapshot_path().read_text("utf-8"))
    for edit in edits:
        edit(data)
    return parse_snapshot(data)


def add_secret(app_id: str, name: str, hint: str, start: datetime, end: datetime, key_id: str = NEW_KEY_ID) -> Edit:
    def edit(data: Json) -> None:
        _app(data, app_id)["passwordCredentials"].append(
            {
                "customKeyIdentifier": None,
                "displayName": name,
                "endDateTime": _iso(end),
                "hint": hint,
                "keyId": key_id,
                "secretText": None,
                "startDateTime": _iso(start),
            }
        )

    return edit


def remove_secret(app_id: str, name: str) -> Edit:
    def edit(data: Json) -> None:
        app = _app(data, app_id)
        app["passwordCredentials"] = [c for c in app["passwordCredentials"] if c["displayName"] != name]

    return edit


def remove_application(app_id: str) -> Edit:
    """Delete an app registration for good (with its owners; its service principal stays)."""

    def edit(data: Json) -> None:
        app = _app(data, app_id)
        data["applications"].remove(app)
        data["owners"].pop(app["id"], None)

    return edit


def owners_like(app_id: str, other_app_id: str) -> Edit:
    """The app's owners become another app's (an owner handed it over): only the owners change, not
    the application object, so a delta round of the applications does not report it."""

    def edit(data: Json) -> None:
        data["owners"][_app(data, app_id)["id"]] = list(data["owners"][_app(data, other_app_id)["id"]])

    return edit


def enable_service_principal(app_id: str) -> Edit:
    def edit(data: Json) -> None:
        next(sp for sp in data["servicePrincipals"] if sp["appId"] == app_id)["accountEnabled"] = True

    return edit


def _app(data: Json, app_id: str) -> Json:
    app: Json = next(a for a in data["applications"] if a["appId"] == app_id)
    return app


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
