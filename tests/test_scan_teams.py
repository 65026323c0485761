"""Expiry warnings on Teams: the scan posts the digest proactively into the conversation the bot was
installed in (fake connector at the wire), and the card's Action.Execute buttons answer inside the
invoke with the digest drawn again."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import SCAN_JOB, create_app
from bot.expiry import Destination, Platform, Routes
from bot.fakegraph import FakeGraph, load_snapshot, sample_snapshot_path
from bot.fakegraph.samples import sample_reference_time
from bot.jobs.worker import RunningJob
from bot.platforms import teams_turns
from bot.settings import INSECURE_TEAMS_FLAG, Settings
from tests.fake_connector import FakeConnector
from tests.redis_server import redis_server
from tests.rotation_setup import APPROVERS_GROUP, LENA
from tests.tenant_edits import add_secret, edited
from tests.test_scan_cli import NOW
from tests.test_scan_job import WAREHOUSE_SYNC, Clock, on
from tests.test_teams import eventually, fixture, post

CARD = "application/vnd.microsoft.card.adaptive"


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    async with FakeGraph(load_snapshot(sample_snapshot_path())) as fake:
        yield fake


@pytest.fixture
async def installed(connector: FakeConnector, graph: FakeGraph) -> AsyncIterator[tuple[TestClient, str]]:
    added = fixture("conversation_update_bot_added", connector)
    conversation = added["conversation"]["id"]
    routes = Routes(defaults=(Destination(Platform.TEAMS, conversation),))
    app = create_app(
        Settings(teams_insecure_no_auth=True, routes=routes),
        clock=Clock(sample_reference_time()),
        scan_graph=on(graph),
    )
    async with TestClient(TestServer(app)) as client:
        assert (await post(client, added))[0] == 202  # installed: the reference is kept, a welcome sent
        connector.calls.clear()
        yield client, conversation


def actions(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "Action.Execute":
                found[str(node["verb"])] = node
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card)
    return found


async def test_the_scan_posts_one_card_into_the_installed_conversation_and_acknowledge_answers_in_the_invoke(
    installed: tuple[TestClient, str], connector: FakeConnector
) -> None:
    client, conversation = installed
    await client.app[SCAN_JOB](RunningJob())
    await client.app[SCAN_JOB](RunningJob())  # the same day again: nothing new
    [posted] = connector.sent("message")
    assert posted.path == f"/v3/conversations/{conversation}/activities"
    card = posted.body["attachments"][0]["content"]
    assert posted.body["attachments"][0]["contentType"] == CARD
    assert "warehouse-sync" in json.dumps(card)
    ack = actions(card)["expiry.ack"]
    press = fixture("invoke_recheck", connector)
    press["value"]["action"] = {"type": "Action.Execute", "verb": "expiry.ack", "data": ack["data"]}
    status, body = await post(client, press)
    assert status == 200 and body["type"] == CARD
    assert "Alex Wilber" in json.dumps(body["value"])  # who acknowledged, for everyone
    press["value"]["action"]["verb"] = "rotation.request"
    status, body = await post(client, press)
    assert status == 200 and "rotat" in str(body["value"]).lower()  # an answer, not a dead button


async def test_a_renewal_updates_the_teams_card_in_place(
    installed: tuple[TestClient, str], connector: FakeConnector, graph: FakeGraph
) -> None:
    client, conversation = installed
    await client.app[SCAN_JOB](RunningJob())
    assert len(connector.sent("message")) == 1
    start = sample_reference_time() - timedelta(hours=1)
    graph.use_snapshot(edited(add_secret(WAREHOUSE_SYNC, "wh-2026", "Rn5", start, start + timedelta(days=365))))
    await client.app[SCAN_JOB](RunningJob())
    [updated] = connector.sent("message", method="PUT")
    assert updated.path.startswith(f"/v3/conversations/{conversation}/activities/1700000000")
    assert updated.body["id"] == updated.path.rsplit("/", 1)[1]  # the posted card's own activity
    assert "A newer secret was added since this warning" in json.dumps(updated.body["attachments"][0]["content"])
    assert len(connector.sent("message")) == 1  # updated, not posted again


async def test_scan_post_from_the_command_line_posts_the_teams_digest_once(
    connector: FakeConnector, tmp_path: Path
) -> None:
    """`secretbot scan --post`, as a CronJob runs it, on the server's Redis: the server keeps the
    conversation reference when it is installed; the command posts there through the connector, and
    a second run (or the server's own scan) finds nothing left to warn."""
    added = fixture("conversation_update_bot_added", connector)
    conversation = added["conversation"]["id"]
    routes = tmp_path / "routes.toml"
    routes.write_text(f'[defaults]\nteams_channel = "{conversation}"\n', encoding="utf-8")
    with redis_server() as server:
        app = create_app(Settings(teams_insecure_no_auth=True, redis_url=server.url))
        async with TestClient(TestServer(app)) as client:
            assert (await post(client, added))[0] == 202  # installed: the reference is kept in Redis
        connector.calls.clear()
        env = {
            "PATH": os.environ["PATH"],
            "REDIS_URL": server.url,
            "SECRETBOT_ROUTES": str(routes),
            INSECURE_TEAMS_FLAG: "true",
        }
        command = [sys.executable, "-m", "bot", "scan", "--snapshot", "sample", "--now", NOW, "--post"]
        runs = [
            await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, env=env, timeout=60)
            for _ in range(2)
        ]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    assert "posted 1 warnings" in runs[0].stderr and "posted 0 warnings" in runs[1].stderr
    [posted] = connector.sent("message")
    assert posted.path == f"/v3/conversations/{conversation}/activities"
    assert posted.body["attachments"][0]["contentType"] == CARD
    assert "warehouse-sync" in json.dumps(posted.body["attachments"][0]["content"])


@asynccontextmanager
async def request_pressed_on_a_warning(
    connector: FakeConnector, graph: FakeGraph, approver: str
) -> AsyncIterator[tuple[TestClient, dict[str, Any], dict[str, Any]]]:
    """The bot installed in a Teams channel with rotation set up (`approver` approves), the scan's
    warning posted there, and an invoke pressing its Request rotation, not yet sent: yields the client,
    the warning's card and the invoke. invoice-worker is tagged for rotation and owned by the bot."""
    added = fixture("conversation_update_bot_added", connector)
    conversation = added["conversation"]["id"]
    settings = Settings(
        teams_insecure_no_auth=True,
        snapshot="sample",
        approvers=(approver,),
        routes=Routes(defaults=(Destination(Platform.TEAMS, conversation),)),
    )
    app = create_app(settings, clock=Clock(sample_reference_time()), scan_graph=on(graph))
    async with TestClient(TestServer(app)) as client:
        assert (await post(client, added))[0] == 202
        connector.calls.clear()
        await client.app[SCAN_JOB](RunningJob())
        [warning] = connector.sent("message")
        posted = warning.body["attachments"][0]["content"]
        press = fixture("invoke_recheck", connector)
        data = actions(posted)["rotation.request"]["data"]
        press["value"]["action"] = {"type": "Action.Execute", "verb": "rotation.request", "data": data}
        yield client, posted, press


async def test_a_rotation_requested_from_a_teams_warning_after_the_invokes_budget_takes_its_place_and_follows(
    connector: FakeConnector, graph: FakeGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the request is ready only after Teams stopped waiting for the invoke, there is no invoke
    answer left to redraw the warning: the request card takes the warning's place, and the rotation's
    later steps update it there."""
    monkeypatch.setattr(teams_turns, "ACTION_BUDGET_SECONDS", 0.0)  # as if Graph took longer than Teams waits
    async with request_pressed_on_a_warning(connector, graph, f"group:{APPROVERS_GROUP}") as (client, _, press):
        status, body = await post(client, press)
        assert status == 200 and teams_turns.STILL_CHECKING in json.dumps(body["value"], ensure_ascii=False)

        def shown_in_place() -> list[str]:
            return [
                json.dumps(call.body)
                for call in connector.sent("message", method="PUT")
                if call.path.endswith(f"/activities/{press['replyToId']}")
            ]

        await eventually(lambda: any("rotation.approve" in card for card in shown_in_place()))
        [card] = [card for card in shown_in_place() if "rotation.approve" in card]
        rotation_id = actions(json.loads(card)["attachments"][0]["content"])["rotation.approve"]["data"]["id"]
        approve = fixture("invoke_recheck", connector)
        approve["value"]["action"] = {"type": "Action.Execute", "verb": "rotation.approve", "data": {"id": rotation_id}}
        approve["from"] = {"id": "29:lena", "name": "Lena Fischer", "aadObjectId": LENA}
        assert (await post(client, approve))[0] == 200  # answered later too: the card is updated in place
        await eventually(lambda: any("approved by Lena Fischer" in card for card in shown_in_place()))
        await eventually(lambda: any("Rotation done" in card for card in shown_in_place()), seconds=30)
    assert not connector.sent("message")[1:]  # no second message: the request is where the warning was


async def test_request_rotation_on_a_teams_warning_sends_the_request_beside_it_and_the_warning_points_at_it(
    connector: FakeConnector, graph: FakeGraph
) -> None:
    """invoice-worker is tagged for rotation and owned by the bot in the sample tenant. The invoke is
    answered with the warning drawn again (its rows, and a line naming the request); the request is a
    message of its own."""
    async with request_pressed_on_a_warning(connector, graph, "U0PRIYA") as (client, posted, press):
        status, body = await post(client, press)
        again, second = await post(client, press)  # a second request from the same warning
    assert status == 200 and again == 200 and body["type"] == CARD and second["type"] == CARD
    sent = connector.sent("message")[1:]
    assert len(sent) == 2 and all("rotation.approve" in json.dumps(each.body) for each in sent)
    first_id, second_id = (
        actions(each.body["attachments"][0]["content"])["rotation.approve"]["data"]["id"] for each in sent
    )
    redrawn = json.dumps(body["value"])
    line = f"Rotation requested by {press['from']['name']} for invoice-worker, request {first_id}"
    assert f"{line}: see the request message below." in redrawn
    assert "rotation.request" in redrawn and "rotation.approve" not in redrawn  # the warning, not the request
    rows = [item for item in posted["body"] if item.get("type") == "Container" and item.get("separator")]
    assert rows and all(json.dumps(row) in redrawn for row in rows)  # every row as it was
    both = json.dumps(second["value"])
    assert (
        f"request {first_id}:" in both and f"request {second_id}:" in both and both.count("Rotation requested by") == 2
    )
