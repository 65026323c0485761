"""Rotation on Slack and Teams. Slack: through the signed HTTP endpoint, Bolt, the queue and the fake Slack Web API:
Request rotation on a card turns it into the request card, the requester's own Approve is refused to
them alone (ephemeral, the card unchanged), an approver's Approve moves it, and the worker updates
the same message step by step to done. Teams: the same through Action.Execute invokes answered with
the card, and the worker's updates of the clicked card. No chat API call carries the secret's value."""

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import urlencode

from aiohttp.test_utils import TestClient, TestServer

from bot.app import SERVICES, create_app
from bot.rotation_types import RotationState
from bot.settings import Settings
from bot.vault import MemoryVault
from tests.fake_connector import FakeConnector
from tests.fake_slack import FakeSlack
from tests.rotation_setup import PAYMENTS_APP
from tests.test_slack import card_text, eventually, settings, signed

CARD_TS = "1700000000.000100"
_PRESSES = itertools.count(1)


async def press(
    client: TestClient,
    fake: FakeSlack,
    verb: str,
    value: str,
    user: str,
    name: str,
    *,
    channel: str = "C0PAYMENTS",
    ts: str = CARD_TS,
) -> None:
    """A signed click of a button on the message `ts` in `channel`."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user, "name": name},
        "channel": {"id": channel},
        "container": {"type": "message", "message_ts": ts, "channel_id": channel},
        "message": {"ts": ts},
        "actions": [{"action_id": verb, "value": value, "type": "button", "block_id": "b"}],
        "response_url": fake.url("/response/press"),
        "trigger_id": f"9.8.{next(_PRESSES)}",
    }
    body = urlencode({"payload": json.dumps(payload)})
    headers = signed(body) | {"Content-Type": "application/x-www-form-urlencoded"}
    assert (await client.post("/slack/events", data=body, headers=headers)).status == 200


def updates(fake: FakeSlack) -> list[str]:
    return [card_text(call["blocks"]) for call in fake.called("chat.update") if call.get("ts") == CARD_TS]


async def test_a_rotation_on_slack_from_request_to_done(fake_slack: FakeSlack) -> None:
    app = create_app(settings(fake_slack, approvers=("U0PRIYA",), rotation_apps=(PAYMENTS_APP,)))
    async with TestClient(TestServer(app)) as client:
        await press(client, fake_slack, "rotation.request", PAYMENTS_APP, "U0JONAS", "jonas")
        await eventually(lambda: any("Rotation requested" in text for text in updates(fake_slack)))
        [request_card] = [c for c in fake_slack.called("chat.update") if "Rotation requested" in card_text(c["blocks"])]
        approve = next(e for b in request_card["blocks"] if b["type"] == "actions" for e in b["elements"])
        assert approve["action_id"] == "rotation.approve"
        rotation_id = approve["value"]

        await press(client, fake_slack, "rotation.approve", rotation_id, "U0JONAS", "jonas")
        await eventually(lambda: bool(fake_slack.called("response_url")))
        [notice] = fake_slack.called("response_url")
        assert "You asked for this rotation" in notice["text"] and notice["response_type"] == "ephemeral"
        assert len(fake_slack.called("chat.update")) == 1  # the card did not change

        await press(client, fake_slack, "rotation.approve", rotation_id, "U0PRIYA", "priya")
        await eventually(lambda: any("Rotation done" in text for text in updates(fake_slack)), seconds=60)
        texts = updates(fake_slack)
        assert any("approved by priya" in text for text in texts)
        assert any("stored in Key Vault" in text for text in texts)
        done = texts[-1]
        assert "token proven" in done and "Rotation done" in done

        rotations = app[SERVICES].rotations
        assert rotations is not None and isinstance(rotations.vault, MemoryVault)
        rotation = await rotations.store.get(rotation_id)
        assert rotation is not None and rotation.state is RotationState.DONE
        value = rotations.vault.versions(rotation.vault_name)[-1].value.reveal()
        every_call = json.dumps([fake_slack.called(m) for m in ("chat.update", "chat.postMessage", "response_url")])
        assert value not in every_call


async def test_readyz_says_rotation_is_on_with_local_fakes_in_snapshot_mode(fake_slack: FakeSlack) -> None:
    app = create_app(settings(fake_slack, approvers=("U0PRIYA",)))
    async with TestClient(TestServer(app)) as client:
        ready = await (await client.get("/readyz")).json()
        assert ready["rotation"] == "on, with local fakes for: token endpoint, Key Vault"
    async with TestClient(TestServer(create_app(settings(fake_slack)))) as client:
        assert (await (await client.get("/readyz")).json())["rotation"] == "not offered"


async def test_a_slack_approver_is_matched_to_entra_by_email_and_group_membership(fake_slack: FakeSlack) -> None:
    from tests.rotation_setup import APPROVERS_GROUP

    fake_slack.emails = {"U0PRIYA": "priya.raman@northwind-ops.example", "U0JONAS": "jonas.berg@northwind-ops.example"}
    groups = (f"group:{APPROVERS_GROUP}",)
    app = create_app(settings(fake_slack, approvers=groups, rotation_apps=(PAYMENTS_APP,)))
    async with TestClient(TestServer(app)) as client:
        rotations = app[SERVICES].rotations
        await press(client, fake_slack, "rotation.request", PAYMENTS_APP, "U0JONAS", "jonas")
        await eventually(lambda: any("Rotation requested" in text for text in updates(fake_slack)))
        assert rotations is not None
        [rotation] = await rotations.store.recent()
        await press(client, fake_slack, "rotation.approve", rotation.id, "U0PRIYA", "priya")
        await eventually(lambda: any("approved by priya" in text for text in updates(fake_slack)))
        await press(client, fake_slack, "rotation.retire", rotation.id, "U0SOMEONE", "someone")  # no email: refused
        await eventually(lambda: bool(fake_slack.called("response_url")))
        assert "not an approver" in fake_slack.called("response_url")[0]["text"]


# --- Teams -------------------------------------------------------------------------------------------


async def test_a_rotation_on_teams_refused_then_approved_and_the_card_follows_to_done(
    connector: FakeConnector,
) -> None:
    from bot.platforms import teams_jobs
    from bot.rotation_posts import TEAMS_ROTATION_CARD
    from tests.rotation_setup import APPROVERS_GROUP, JONAS, LENA
    from tests.test_teams import fixture, post, text_of

    assert TEAMS_ROTATION_CARD == teams_jobs.ROTATION_CARD
    settings = Settings(
        snapshot="sample",
        teams_insecure_no_auth=True,
        approvers=(f"group:{APPROVERS_GROUP}",),
        rotation_apps=(PAYMENTS_APP,),
    )

    def click(verb: str, item: str, who: str, name: str) -> dict[str, Any]:
        activity = fixture("invoke_recheck", connector)
        activity["value"]["action"] = {"type": "Action.Execute", "verb": verb, "data": {"id": item}}
        activity["from"] = {"id": f"29:{name}", "name": name, "aadObjectId": who}
        return activity

    async with TestClient(TestServer(create_app(settings))) as client:
        status, body = await post(client, click("rotation.request", PAYMENTS_APP, JONAS, "Jonas Berg"))
        assert status == 200 and "Rotation requested" in text_of(body["value"])
        [approve] = [a for a in body["value"]["actions"] if a["verb"] == "rotation.approve"]
        rotation_id = approve["data"]["id"]

        status, body = await post(client, click("rotation.approve", rotation_id, JONAS, "Jonas Berg"))
        assert status == 200 and "You asked for this rotation" in text_of(body["value"])
        assert "Rotation requested" not in text_of(body["value"])  # a note for that person, not the card

        status, body = await post(client, click("rotation.approve", rotation_id, LENA, "Lena Fischer"))
        assert status == 200 and "approved by Lena Fischer" in text_of(body["value"])

        def done_update() -> bool:
            return any("Rotation done" in text_of(c.body) for c in connector.sent("message", method="PUT"))

        await eventually(done_update, seconds=60)
        card_id = fixture("invoke_recheck", connector)["replyToId"]
        assert all(c.path.endswith(f"/activities/{card_id}") for c in connector.sent("message", method="PUT"))
        rotations = client.app[SERVICES].rotations
        assert rotations is not None and isinstance(rotations.vault, MemoryVault)
        rotation = await rotations.store.get(rotation_id)
        assert rotation is not None
        value = rotations.vault.versions(rotation.vault_name)[-1].value.reveal()
        assert value not in json.dumps([c.body for c in connector.calls])
