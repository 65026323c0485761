"""Every card of a rotation request follows its steps, on the Slack wire (signed requests in, the fake
Web API out) and the Teams wire (activities in, the fake connector out): the card answering a `rotate`
command (slash command, mention, Teams message) and its copy in the approvers' channel, which takes
Approve and Reject too, are both updated through approval to done, or to rejected."""

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import unquote, urlencode

from aiohttp.test_utils import TestClient, TestServer

from bot.app import JOBS, SERVICES, create_app
from bot.jobs.payloads import asked_to_json
from bot.jobs.worker import RunningJob
from bot.platforms.slack_jobs import COMMAND, ROTATION_COPY
from bot.rotation_types import RotationState
from bot.settings import Settings
from handlers.conversation import read
from tests.fake_connector import FakeConnector
from tests.fake_slack import BOT_USER, FakeSlack
from tests.rotation_setup import APPROVERS_GROUP, JONAS, LENA, PAYMENTS_APP
from tests.test_rotation_slack import press as press_button
from tests.test_slack import card_text, eventually, post_json, settings, signed

APPROVERS = "C0APPROVERS"
ASKED_IN = "C0PAYMENTS"
_CLICKS = itertools.count(1)
WAIT = 30.0  # seconds: the request looks the app up in the fake Graph, slow on a busy machine


# --- Slack -------------------------------------------------------------------------------------------


async def slash(client: TestClient, fake: FakeSlack, text: str, user: str = "U0JONAS") -> None:
    form = {"command": "/secretbot", "text": text, "user_id": user, "channel_id": ASKED_IN}
    form |= {"response_url": fake.url("/response/command"), "trigger_id": f"7.7.{next(_CLICKS)}"}
    body = urlencode(form)
    headers = signed(body) | {"Content-Type": "application/x-www-form-urlencoded"}
    assert (await client.post("/slack/events", data=body, headers=headers)).status == 200


async def press(client: TestClient, fake: FakeSlack, verb: str, value: str, channel: str, ts: str, user: str) -> None:
    await press_button(client, fake, verb, value, user, user.removeprefix("U0").lower(), channel=channel, ts=ts)


def shown(fake: FakeSlack, channel: str, ts: str) -> list[str]:
    """Every card the message `ts` showed, in order: its post, then its updates."""
    return [
        card_text(c.args.get("blocks") or [])
        for c in fake.calls
        if c.method in ("chat.postMessage", "chat.update") and c.args.get("channel") == channel and c.ts == ts
    ]


def posted_card(fake: FakeSlack, channel: str, title: str) -> tuple[str, str]:
    """(ts, rotation id) of the message in `channel` that a card titled `title` was posted or drawn on."""
    for call in fake.calls:
        blocks = call.args.get("blocks") or []
        if call.args.get("channel") == channel and call.ts and title in card_text(blocks):
            approve = next(e for b in blocks if b["type"] == "actions" for e in b["elements"])
            return call.ts, str(approve["value"])
    raise AssertionError(f"no {title!r} card in {channel}")


def slack_settings(fake: FakeSlack, **overrides: Any) -> Settings:
    chosen = {"approvers": ("U0PRIYA",), "rotation_apps": (PAYMENTS_APP,), "approvers_slack_channel": APPROVERS}
    return settings(fake, **(chosen | overrides))


async def test_a_slash_command_request_is_posted_in_the_channel_and_both_copies_follow_it_to_done(
    fake_slack: FakeSlack,
) -> None:
    app = create_app(slack_settings(fake_slack))
    async with TestClient(TestServer(app)) as client:
        await slash(client, fake_slack, f"rotate {PAYMENTS_APP} leaked in a build log")

        def both_posted() -> bool:
            channels = {c["channel"] for c in fake_slack.called("chat.postMessage")}
            return {ASKED_IN, APPROVERS} <= channels

        await eventually(both_posted, seconds=WAIT)
        asked_ts, rotation_id = posted_card(fake_slack, ASKED_IN, "Rotation requested")
        copy_ts, same_id = posted_card(fake_slack, APPROVERS, "Rotation requested")
        assert same_id == rotation_id
        copy = shown(fake_slack, APPROVERS, copy_ts)[0]
        for line in ("Requested by U0JONAS", "Reason: leaked in a build log", "Replaces the secret", "lifetime"):
            assert line in copy
        # Not ephemeral: the "Checking…" ack is deleted, the request is a message approvers can see.
        await eventually(lambda: bool(fake_slack.called("response_url")), seconds=WAIT)
        assert fake_slack.called("response_url") == [{"delete_original": True}]

        # The approver clicks on the copy in the approvers' channel.
        await press(client, fake_slack, "rotation.approve", rotation_id, APPROVERS, copy_ts, "U0PRIYA")

        def done_in_both() -> bool:
            return all(
                any("Rotation done" in card for card in shown(fake_slack, channel, ts))
                for channel, ts in ((ASKED_IN, asked_ts), (APPROVERS, copy_ts))
            )

        await eventually(done_in_both, seconds=2 * WAIT)
        for channel, ts in ((ASKED_IN, asked_ts), (APPROVERS, copy_ts)):
            cards = shown(fake_slack, channel, ts)
            assert any("approved by priya" in card for card in cards), channel
            assert any("stored in Key Vault" in card for card in cards), channel
            assert "token proven" in cards[-1] and "Rotation done" in cards[-1], channel
        # One post each: every step updated the same two messages.
        assert len([c for c in fake_slack.called("chat.postMessage") if "Rotation" in card_text(c["blocks"])]) == 2
        rotations = app[SERVICES].rotations
        assert rotations is not None
        rotation = await rotations.store.get(rotation_id)
        assert rotation is not None and rotation.state is RotationState.DONE
        assert {(p["channel"], p["message_id"]) for p in rotation.places} == {
            (ASKED_IN, asked_ts),
            (APPROVERS, copy_ts),
        }


async def test_a_mention_request_rejected_from_the_approvers_channel_says_rejected_in_both(
    fake_slack: FakeSlack,
) -> None:
    app = create_app(slack_settings(fake_slack))
    async with TestClient(TestServer(app)) as client:
        mention = {
            "type": "app_mention",
            "user": "U0JONAS",
            "text": f"<@{BOT_USER}> rotate {PAYMENTS_APP}",
            "channel": ASKED_IN,
            "ts": "1699999999.000200",
            "channel_type": "channel",
        }
        body = json.dumps({"type": "event_callback", "team_id": "T0TEAM", "event_id": "EvRotate", "event": mention})
        assert await post_json(client, body) == 200

        await eventually(
            lambda: any(c.get("channel") == APPROVERS for c in fake_slack.called("chat.postMessage")), seconds=WAIT
        )
        await eventually(
            lambda: any("Rotation requested" in card_text(c["blocks"]) for c in fake_slack.called("chat.update")),
            seconds=WAIT,
        )
        [placeholder] = [
            c for c in fake_slack.calls if c.method == "chat.postMessage" and c.args["channel"] == ASKED_IN
        ]
        assert placeholder.args["thread_ts"] == "1699999999.000200"  # the card answers in the thread
        asked_ts = placeholder.ts
        assert asked_ts is not None
        copy_ts, rotation_id = posted_card(fake_slack, APPROVERS, "Rotation requested")

        await press(client, fake_slack, "rotation.reject", rotation_id, APPROVERS, copy_ts, "U0PRIYA")

        def rejected_in_both() -> bool:
            return all(
                "Rotation rejected" in (shown(fake_slack, channel, ts) or [""])[-1]
                for channel, ts in ((ASKED_IN, asked_ts), (APPROVERS, copy_ts))
            )

        await eventually(rejected_in_both, seconds=WAIT)
        for channel, ts in ((ASKED_IN, asked_ts), (APPROVERS, copy_ts)):
            last = shown(fake_slack, channel, ts)[-1]
            assert "rejected by priya" in last and "rotation.approve" not in last, channel


async def test_the_approvers_copy_is_posted_once_however_often_its_job_runs(fake_slack: FakeSlack) -> None:
    app = create_app(slack_settings(fake_slack, approvers_slack_channel=None))
    async with TestClient(TestServer(app)) as client:
        await slash(client, fake_slack, f"rotate {PAYMENTS_APP}")
        await eventually(lambda: bool(fake_slack.called("chat.postMessage")), seconds=WAIT)
        assert {c["channel"] for c in fake_slack.called("chat.postMessage")} == {ASKED_IN}  # no approvers' channel
        _, rotation_id = posted_card(fake_slack, ASKED_IN, "Rotation requested")

        copy = app[JOBS].functions[ROTATION_COPY]
        job = RunningJob()  # one job, run again as after a crash: its notes carry over
        await copy(job, rotation_id=rotation_id, channel=APPROVERS)
        await copy(job, rotation_id=rotation_id, channel=APPROVERS)
        assert len([c for c in fake_slack.called("chat.postMessage") if c["channel"] == APPROVERS]) == 1
        rotations = app[SERVICES].rotations
        assert rotations is not None
        rotation = await rotations.store.get(rotation_id)
        assert rotation is not None and [p["channel"] for p in rotation.places] == [ASKED_IN, APPROVERS]


async def test_a_rotate_command_run_again_opens_no_second_request_and_posts_once(fake_slack: FakeSlack) -> None:
    app = create_app(slack_settings(fake_slack, approvers_slack_channel=None))
    async with TestClient(TestServer(app)):
        command = app[JOBS].functions[COMMAND]
        job = RunningJob()  # one job, run again as after a crash: its notes carry over
        payload = {
            "asked": asked_to_json(await read(f"rotate {PAYMENTS_APP}")),
            "channel": ASKED_IN,
            "user": "U0JONAS",
            "response_url": fake_slack.url("/response/again"),
        }
        await command(job, **payload)
        await command(job, **payload)
        rotations = app[SERVICES].rotations
        assert rotations is not None
        assert len(await rotations.store.recent()) == 1
        assert len([c for c in fake_slack.called("chat.postMessage") if c["channel"] == ASKED_IN]) == 1


async def test_a_slash_command_where_the_bot_may_not_post_answers_privately(fake_slack: FakeSlack) -> None:
    fake_slack.refusing[ASKED_IN] = "not_in_channel"
    app = create_app(slack_settings(fake_slack))
    async with TestClient(TestServer(app)) as client:
        await slash(client, fake_slack, f"rotate {PAYMENTS_APP}")
        await eventually(lambda: bool(fake_slack.called("response_url")), seconds=WAIT)
        [answer] = fake_slack.called("response_url")
        assert answer["response_type"] == "ephemeral" and "Rotation requested" in card_text(answer["blocks"])
        # The approvers still get their copy, which follows the request.
        await eventually(
            lambda: any(c["channel"] == APPROVERS for c in fake_slack.called("chat.postMessage")), seconds=WAIT
        )


async def test_request_rotation_on_a_private_card_posts_the_request_in_the_channel(fake_slack: FakeSlack) -> None:
    """The slash command's answer is private; Request rotation pressed there opens a request that an
    approver must see and the worker must update, so it becomes a message in the channel."""
    app = create_app(slack_settings(fake_slack, approvers_slack_channel=None))
    async with TestClient(TestServer(app)) as client:
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": "U0JONAS", "name": "jonas"},
            "channel": {"id": ASKED_IN},
            "container": {"type": "message", "message_ts": "1700000000.999999", "is_ephemeral": True},
            "actions": [{"action_id": "rotation.request", "value": PAYMENTS_APP, "type": "button", "block_id": "b"}],
            "response_url": fake_slack.url("/response/private"),
            "trigger_id": "5.5.5",
        }
        body = urlencode({"payload": json.dumps(payload)})
        headers = signed(body) | {"Content-Type": "application/x-www-form-urlencoded"}
        assert (await client.post("/slack/events", data=body, headers=headers)).status == 200

        await eventually(lambda: bool(fake_slack.called("response_url")), seconds=WAIT)
        assert fake_slack.called("response_url") == [{"delete_original": True}]
        ts, rotation_id = posted_card(fake_slack, ASKED_IN, "Rotation requested")
        await press(client, fake_slack, "rotation.approve", rotation_id, ASKED_IN, ts, "U0PRIYA")
        await eventually(lambda: "Rotation done" in shown(fake_slack, ASKED_IN, ts)[-1], seconds=2 * WAIT)


# --- Teams -------------------------------------------------------------------------------------------


async def test_a_teams_rotate_message_and_the_approvers_copy_follow_approval_to_done_and_a_rejection(
    connector: FakeConnector,
) -> None:
    from tests.test_teams import fixture, post, text_of

    installed = fixture("conversation_update_bot_added", connector)
    approvers = installed["conversation"]["id"]  # the team's channel the bot was added to
    settings = Settings(
        snapshot="sample",
        teams_insecure_no_auth=True,
        approvers=(f"group:{APPROVERS_GROUP}",),
        rotation_apps=(PAYMENTS_APP,),
        approvers_teams_channel=approvers,
    )

    def rotate(event_id: str) -> dict[str, Any]:
        message = fixture("personal_message", connector, text=f"rotate {PAYMENTS_APP} ci log leak")
        message["from"] = {"id": "29:jonas", "name": "Jonas Berg", "aadObjectId": JONAS}
        message["id"] = event_id
        return message

    def click(verb: str, rotation_id: str, card_id: str) -> dict[str, Any]:
        activity = fixture("invoke_recheck", connector)
        activity["value"]["action"] = {"type": "Action.Execute", "verb": verb, "data": {"id": rotation_id}}
        activity["from"] = {"id": "29:lena", "name": "Lena Fischer", "aadObjectId": LENA}
        activity["conversation"] = installed["conversation"]
        activity["replyToId"] = card_id
        return activity

    def posted(conversation: str, title: str) -> list[tuple[str, str]]:
        """(activity id, rotation id) of each card titled `title` posted or drawn in `conversation`."""
        found = []
        for call in connector.calls:
            if conversation not in unquote(call.path) or title not in text_of(call.body):
                continue
            card = call.body["attachments"][0]["content"]
            [approve] = [a for a in card.get("actions", []) if a.get("verb") == "rotation.approve"]
            found.append((call.id, str(approve["data"]["id"])))
        return found

    async with TestClient(TestServer(create_app(settings))) as client:
        assert (await post(client, installed))[0] == 202  # the bot keeps the channel's reference
        chat = rotate("1763700000001")["conversation"]["id"]

        # 1. Asked in a personal chat, approved by Lena from the approvers' channel: both follow to done.
        assert (await post(client, rotate("1763700000001")))[0] == 202
        await eventually(
            lambda: bool(posted(approvers, "Rotation requested")) and bool(posted(chat, "Rotation requested")),
            seconds=WAIT,
        )
        [(copy_id, rotation_id)] = posted(approvers, "Rotation requested")
        [(answer_id, same_id)] = posted(chat, "Rotation requested")
        assert same_id == rotation_id

        status, body = await post(client, click("rotation.approve", rotation_id, copy_id))
        assert status == 200 and "approved by Lena Fischer" in text_of(body["value"])

        def done(conversation: str, activity_id: str) -> bool:
            return any(
                "Rotation done" in text_of(c.body)
                for c in connector.sent("message", method="PUT")
                if c.path.endswith(f"/activities/{activity_id}") and conversation in unquote(c.path)
            )

        await eventually(lambda: done(chat, answer_id) and done(approvers, copy_id), seconds=2 * WAIT)

        # 2. Asked again, rejected from the approvers' channel: both copies say rejected.
        assert (await post(client, rotate("1763700000002")))[0] == 202
        await eventually(lambda: len(posted(approvers, "Rotation requested")) == 2, seconds=WAIT)
        (copy_id, rotation_id) = posted(approvers, "Rotation requested")[1]
        answer_id = next(a for a, r in posted(chat, "Rotation requested") if r == rotation_id)
        status, body = await post(client, click("rotation.reject", rotation_id, copy_id))
        assert status == 200 and "Rotation rejected" in text_of(body["value"])

        def rejected(conversation: str, activity_id: str) -> bool:
            updates = [
                c
                for c in connector.sent("message", method="PUT")
                if c.path.endswith(f"/activities/{activity_id}") and conversation in unquote(c.path)
            ]
            return bool(updates) and "Rotation rejected" in text_of(updates[-1].body)

        await eventually(lambda: rejected(chat, answer_id) and rejected(approvers, copy_id), seconds=WAIT)
        rotations = client.app[SERVICES].rotations
        assert rotations is not None
        rotation = await rotations.store.get(rotation_id)
        assert rotation is not None and rotation.state is RotationState.REJECTED
        assert {p["message_id"] for p in rotation.places} == {answer_id, copy_id}
