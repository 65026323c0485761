"""`secretbot rotations` lists the requests kept in Redis with their states and history, as text or
JSON, and never a value."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from bot.cli import main
from bot.rotation_types import Rotation
from tests.redis_server import redis_server
from tests.rotation_setup import APPROVER_TEAMS, PAYMENTS_APP, REQUESTER, rig


async def _rotate(redis_url: str) -> tuple[Rotation, str]:
    async with rig(redis_url=redis_url) as r:
        requested = await r.rotations.request(REQUESTER, PAYMENTS_APP, "leaked in a log")
        assert isinstance(requested, Rotation)
        assert isinstance(await r.rotations.approve(APPROVER_TEAMS, requested.id), Rotation)
        done = await r.rotations.advance(requested.id)
        assert done is not None
        r.later(timedelta(minutes=5))  # a later request: listed first
        rejected = await r.rotations.request(REQUESTER, PAYMENTS_APP, "second thoughts")
        assert isinstance(rejected, Rotation)
        await r.rotations.reject(APPROVER_TEAMS, rejected.id, "not now")
        return done, r.vault.versions(done.vault_name)[-1].value


def test_rotations_lists_states_and_history_as_json_and_text(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with redis_server() as server:
        done, value = asyncio.run(_rotate(server.url))
        monkeypatch.setenv("REDIS_URL", server.url)
        assert main(["rotations", "--format", "json"]) == 0
        listed = json.loads(capsys.readouterr().out)
        assert [r["state"] for r in listed] == ["rejected", "done"]  # newest first
        assert listed[1]["id"] == done.id and listed[1]["new_key_id"] == done.new_key_id
        assert [e["state"] for e in listed[1]["history"]] == [
            "requested",
            "approved",
            "added",
            "stored",
            "proven",
            "done",
        ]
        assert listed[1]["history"][1]["by"] == "Lena Fischer"
        assert main(["rotations"]) == 0
        text = capsys.readouterr().out
        assert f"{done.id}  done  payments-api ({PAYMENTS_APP})" in text
        assert f"new_key_id={done.new_key_id}" in text and "problem: rejected: not now" in text
        assert value not in text and value not in json.dumps(listed)


def test_rotations_without_redis_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert main(["rotations"]) == 2
    assert "REDIS_URL" in capsys.readouterr().err
