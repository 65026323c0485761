"""The scheduled expiry scan end to end: the real scan job (inventory sync through msgraph-sdk and the
fake Graph, judging, the warning ledger in Redis) posting to a fake Slack, over simulated days.

Warnings are counted as Slack receives them: each threshold once per channel, acknowledge and snooze
respected, a renewal updating the old card in place, faults reported once and nothing lost.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import SCAN_JOB, Role, create_app
from bot.domain import DirectoryError, GraphMode, StateUnavailable
from bot.expiry import DEFAULT_THRESHOLDS, AppMatcher, Destination, MatchBy, Platform, Route, Routes, threshold_for
from bot.fakegraph import FakeGraph, LocalTokenCredential, load_snapshot, sample_snapshot_path
from bot.fakegraph.samples import sample_reference_time
from bot.jobs.worker import RunningJob
from bot.scan_job import TenantGraph, tenant_graph_at
from bot.state import keys
from tests.fake_slack import FakeSlack
from tests.redis_server import redis_server
from tests.tenant_edits import PAYMENTS_APP, add_secret, edited, owners_like
from tests.test_jobs import running, wait_for_log
from tests.test_slack import card_text, event, eventually, post_json, settings, signed

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = "C0WARN"  # every app no route claims
TEAM = "C0APPS"  # the route for the four apps that cross one threshold each at the demo's clock
# (app name, end of its warned credential), from bot/fakegraph/README.md's sample tenant table.
CROSSING = {
    "warehouse-sync": datetime.fromisoformat("2026-12-15T12:00:00+00:00"),
    "expense-portal": datetime.fromisoformat("2026-12-02T12:00:00+00:00"),
    "shipping-api": datetime.fromisoformat("2026-11-25T18:00:00+00:00"),
    "legacy-reports": datetime.fromisoformat("2026-11-21T06:00:00+00:00"),
}
WAREHOUSE_SYNC = "5f8a2d6c-9e1b-4c3a-a7d5-3b6e9f1c4a28"
SHIPPING_API = "c7d2e9f4-3a1b-4c5d-8e6f-1a2b3c4d5e6f"
ROUTES = Routes(
    defaults=(Destination(Platform.SLACK, DEFAULTS),),
    routes=(
        Route(
            matchers=tuple(AppMatcher(MatchBy.NAME, name) for name in CROSSING),
            destinations=(Destination(Platform.SLACK, TEAM),),
            thresholds=DEFAULT_THRESHOLDS,
        ),
    ),
)
_PRESSES = iter(range(10_000))
JobError = (DirectoryError, StateUnavailable)


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    async with FakeGraph(load_snapshot(sample_snapshot_path())) as fake:
        yield fake


def on(graph: FakeGraph) -> Callable[[], AbstractAsyncContextManager[TenantGraph | None]]:
    return lambda: tenant_graph_at(graph.base_url, LocalTokenCredential(), GraphMode.SNAPSHOT)


@asynccontextmanager
async def bot(fake: FakeSlack, graph: FakeGraph, clock: Clock, **overrides: Any) -> AsyncIterator[TestClient]:
    app = create_app(settings(fake, routes=ROUTES, **overrides), clock=clock, scan_graph=on(graph))
    async with TestClient(TestServer(app)) as client:
        yield client


async def scan(client: TestClient, job: RunningJob | None = None) -> None:
    await client.app[SCAN_JOB](job or RunningJob())


def posts(fake: FakeSlack, channel: str) -> list[dict[str, Any]]:
    return [m for m in fake.delivered("chat.postMessage") if m["channel"] == channel]


def mentions(fake: FakeSlack, channel: str, app: str) -> int:
    return sum(app in card_text(m["blocks"]) for m in posts(fake, channel))


def button(message: dict[str, Any], verb: str) -> str:
    for block in message["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id") == verb:
                return str(element["value"])
    raise AssertionError(f"no {verb} button")


async def press(
    client: TestClient,
    fake: FakeSlack,
    message: dict[str, Any],
    verb: str,
    user: tuple[str, str] = ("U0ALICE", "alice"),
) -> None:
    payload = {
        "type": "block_actions",
        "user": {"id": user[0], "name": user[1]},
        "channel": {"id": message["channel"]},
        "container": {"type": "message", "message_ts": message["ts"], "channel_id": message["channel"]},
        "message": {"ts": message["ts"]},
        "actions": [{"action_id": verb, "value": button(message, verb), "type": "button", "block_id": "b"}],
        "response_url": fake.url("/response/warn"),
        "trigger_id": f"9.9.{next(_PRESSES)}",
    }
    body = urlencode({"payload": json.dumps(payload)})
    headers = signed(body) | {"Content-Type": "application/x-www-form-urlencoded"}
    before = len(fake.called("chat.update")) + len(fake.called("response_url"))
    assert (await client.post("/slack/events", data=body, headers=headers)).status == 200
    await eventually(lambda: len(fake.called("chat.update")) + len(fake.called("response_url")) > before)


def with_ts(fake: FakeSlack, channel: str) -> list[dict[str, Any]]:
    """Posted messages with the ts Slack gave them (the fake numbers them in order)."""
    calls = [c for c in fake.calls if c.method == "chat.postMessage" and c.answered and c.args["channel"] == channel]
    return [c.args | {"ts": c.ts} for c in calls]


def thresholds_crossed(end: datetime, days: list[datetime]) -> int:
    return len({t for now in days if (t := threshold_for((end - now).days, DEFAULT_THRESHOLDS)) is not None})


# --- once per threshold per destination -------------------------------------------------------


async def test_each_threshold_is_warned_once_per_channel_over_simulated_days(
    fake_slack: FakeSlack, graph: FakeGraph
) -> None:
    start = sample_reference_time()
    days = [start + timedelta(days=n) for n in range(31)]
    clock = Clock(start)
    async with bot(fake_slack, graph, clock) as client:
        for day in days:
            clock.now = day
            await scan(client)
            await scan(client)  # a second scan the same day (a retry, another replica) warns nothing new
    for app, end in CROSSING.items():
        assert mentions(fake_slack, TEAM, app) == thresholds_crossed(end, days), app
        assert mentions(fake_slack, DEFAULTS, app) == 0  # a route claimed it: not the defaults' business
    first = posts(fake_slack, TEAM)[0]
    assert all(app in card_text(first["blocks"]) for app in CROSSING)  # one digest, not one per credential
    assert "ownerless" in card_text(first["blocks"]).lower() or "no owner" in card_text(first["blocks"]).lower()
    assert len(posts(fake_slack, DEFAULTS)) >= 1  # the other apps' expired credentials went to the defaults
    stamps = [c.at for c in fake_slack.calls if c.method == "chat.postMessage"]
    assert stamps == sorted(stamps)


async def test_a_credential_added_inside_a_threshold_is_warned_at_the_next_scan(
    fake_slack: FakeSlack, graph: FakeGraph
) -> None:
    """The delta marks what it changed as due at once: nothing waits for a threshold moment."""
    clock = Clock(sample_reference_time())
    async with bot(fake_slack, graph, clock) as client:
        await scan(client)
        before = len(posts(fake_slack, DEFAULTS))
        start = clock.now - timedelta(hours=1)
        graph.use_snapshot(edited(add_secret(PAYMENTS_APP, "ci-hotfix", "Hf1", start, clock.now + timedelta(days=5))))
        clock.now += timedelta(hours=1)
        await scan(client)
        await scan(client)  # nothing new since: nothing posted
    later = posts(fake_slack, DEFAULTS)[before:]
    assert len(later) == 1 and "ci-hotfix" in card_text(later[0]["blocks"])


async def test_a_channel_that_starts_watching_gets_what_is_already_due(
    fake_slack: FakeSlack, graph: FakeGraph, caplog: pytest.LogCaptureFixture
) -> None:
    """A new subscription changes who receives what: the next scan judges every object once."""
    clock = Clock(sample_reference_time())
    caplog.set_level(logging.INFO)
    async with bot(fake_slack, graph, clock) as client:
        await scan(client)
        with caplog.at_level(logging.INFO, logger="bot.scan_job"):
            await scan(client)  # nothing changed and nothing is due: nothing judged
        assert "full=False objects=0 rows=0" in caplog.text
        assert await post_json(client, event("message", "watch all", channel="D0NEW")) == 200
        await eventually(lambda: any(u["channel"] == "D0NEW" for u in fake_slack.called("chat.update")))  # answered
        answered = len(posts(fake_slack, "D0NEW"))
        clock.now += timedelta(hours=1)
        await scan(client)
    [digest] = posts(fake_slack, "D0NEW")[answered:]
    assert all(app in card_text(digest["blocks"]) for app in ("warehouse-sync", "legacy-reports"))


async def test_owners_with_a_slack_account_are_mentioned_and_looked_up_once(
    fake_slack: FakeSlack, graph: FakeGraph
) -> None:
    fake_slack.users["mei.zhou@northwind-ops.example"] = "U0MEI"
    clock = Clock(sample_reference_time())
    async with bot(fake_slack, graph, clock) as client:
        await scan(client)
        clock.now += timedelta(days=6)  # shipping-api (Mei Zhou's) crosses 1 day, then expires
        await scan(client)
    [first, *_] = posts(fake_slack, TEAM)
    assert "<@U0MEI>" in card_text(first["blocks"])
    asked = [c["email"] for c in fake_slack.called("users.lookupByEmail")]
    assert len(asked) == len(set(asked))  # cached: each owner asked once however many scans


async def test_an_owner_change_reaches_the_next_warning_though_the_app_did_not_change(
    fake_slack: FakeSlack, graph: FakeGraph
) -> None:
    """Graph's application delta does not report owner changes: a warning reads owners a day old again."""
    shipping = CROSSING["shipping-api"]
    clock = Clock(shipping - timedelta(days=1, hours=23))  # threshold 1: Mei Zhou's app
    async with bot(fake_slack, graph, clock) as client:
        await scan(client)
        graph.use_snapshot(edited(owners_like(SHIPPING_API, PAYMENTS_APP)))  # handed over to Priya Raman
        clock.now = shipping + timedelta(hours=1)  # expired, 2 days later
        await scan(client)
    cards = [card_text(m["blocks"]) for m in posts(fake_slack, TEAM)]
    first, later = [card for card in cards if "shipping-api" in card]
    assert "Mei Zhou" in first and "Priya Raman" not in first
    assert "Priya Raman" in later and "Mei Zhou" not in later


async def test_without_the_email_scope_owners_are_named_in_plain_text_and_the_warning_goes_out(
    fake_slack: FakeSlack, graph: FakeGraph
) -> None:
    fake_slack.lookup_error = "missing_scope"  # an install from before users:read.email
    async with bot(fake_slack, graph, Clock(sample_reference_time())) as client:
        await scan(client)
    [digest] = posts(fake_slack, TEAM)
    assert "Mei Zhou" in card_text(digest["blocks"]) and "<@" not in card_text(digest["blocks"])


async def test_acknowledge_is_shown_to_everyone_and_the_next_threshold_still_warns(
    fake_slack: FakeSlack, graph: FakeGraph
) -> None:
    clock = Clock(sample_reference_time())
    async with bot(fake_slack, graph, clock) as client:
        await scan(client)
        [digest] = with_ts(fake_slack, TEAM)
        await press(client, fake_slack, digest, "expiry.ack")
        update = fake_slack.called("chat.update")[-1]
        assert update["ts"] == digest["ts"] and "alice" in card_text(update["blocks"])
        await scan(client)
        assert len(posts(fake_slack, TEAM)) == 1
        clock.now += timedelta(days=2)  # legacy-reports expires: threshold 0 is new
        await scan(client)
    later = posts(fake_slack, TEAM)[1:]
    assert [("legacy-reports" in card_text(m["blocks"])) for m in later] == [True]


async def test_snooze_holds_warnings_back_then_reminds_once(fake_slack: FakeSlack, graph: FakeGraph) -> None:
    clock = Clock(sample_reference_time())
    async with bot(fake_slack, graph, clock) as client:
        await scan(client)
        [digest] = with_ts(fake_slack, TEAM)
        await press(client, fake_slack, digest, "expiry.snooze.7d")
        for _ in range(6):  # legacy-reports expires and shipping-api crosses 1 day meanwhile: held back
            clock.now += timedelta(days=1)
            await scan(client)
        assert len(posts(fake_slack, TEAM)) == 1
        clock.now += timedelta(days=1, hours=1)  # the snooze is over: one reminder
        await scan(client)
        await scan(client)
    reminders = posts(fake_slack, TEAM)[1:]
    assert len(reminders) == 1
    assert "legacy-reports" in card_text(reminders[0]["blocks"])


async def test_a_renewal_updates_the_old_card_in_place(fake_slack: FakeSlack, graph: FakeGraph) -> None:
    clock = Clock(sample_reference_time())
    async with bot(fake_slack, graph, clock) as client:
        await scan(client)
        [digest] = with_ts(fake_slack, TEAM)
        assert "warehouse-sync" in card_text(digest["blocks"])
        start = clock.now - timedelta(hours=1)
        graph.use_snapshot(edited(add_secret(WAREHOUSE_SYNC, "wh-2026", "Rn5", start, start + timedelta(days=365))))
        clock.now += timedelta(hours=2)
        await scan(client)
    updates = [u for u in fake_slack.called("chat.update") if u["ts"] == digest["ts"]]
    assert len(updates) == 1
    assert "A newer secret was added since this warning" in card_text(updates[0]["blocks"])
    assert len(posts(fake_slack, TEAM)) == 1  # updated, not posted again


async def test_without_rotation_set_up_a_warning_says_so_instead_of_a_dead_button(
    fake_slack: FakeSlack, graph: FakeGraph
) -> None:
    clock = Clock(sample_reference_time())
    async with bot(fake_slack, graph, clock) as client:  # no approvers: rotation is not set up
        await scan(client)
    [digest] = with_ts(fake_slack, TEAM)
    assert "rotation.request" not in verbs(digest)
    assert "Rotating from chat is not set up for this bot" in card_text(digest["blocks"])


# --- faults ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retry_after", "times", "named"),
    [
        (403, None, 3, "Application.Read.All"),  # refused: the permission is named
        (429, 0, 3 * 6, "throttling"),  # throttled beyond the reader's five retries, in each attempt
    ],
)
async def test_graph_refusing_the_scan_reports_once_per_run_and_loses_nothing(
    fake_slack: FakeSlack, graph: FakeGraph, status: int, retry_after: float | None, times: int, named: str
) -> None:
    clock = Clock(sample_reference_time())
    graph.add_fault(r"/applications/delta", status, times=times, retry_after=retry_after)
    async with bot(fake_slack, graph, clock) as client:
        for attempt in (1, 2, 3):  # one run: the queue tries it three times; only the last reports
            job = Attempt(last=attempt == 3)
            with pytest.raises(JobError) if attempt < 3 else nullcontext():
                await scan(client, job)
        reports = posts(fake_slack, DEFAULTS)
        assert len(reports) == 1
        assert "Could not scan" in reports[0]["text"] and named in reports[0]["text"]
        await scan(client)  # Graph answers again: every warning that was due is posted
    assert mentions(fake_slack, TEAM, "warehouse-sync") == 1


async def test_a_failed_post_gives_the_claims_back_so_the_next_scan_warns(
    fake_slack: FakeSlack, graph: FakeGraph
) -> None:
    clock = Clock(sample_reference_time())
    fake_slack.hold("chat.postMessage", count=2)
    async with bot(fake_slack, graph, clock) as client:
        running = asyncio.create_task(scan(client))
        await eventually(lambda: len(fake_slack.called("chat.postMessage")) == 2)
        fake_slack.drop()  # Slack never answers: both posts fail
        await running
        assert fake_slack.delivered("chat.postMessage") == []
        fake_slack._applied = True  # Slack is back
        await scan(client)
    assert mentions(fake_slack, TEAM, "warehouse-sync") == 1


async def test_a_failed_post_then_a_retry_of_the_run_warns_once(fake_slack: FakeSlack, graph: FakeGraph) -> None:
    """The run's digests fail to post, then the run is tried again (same notes): the failed digests
    are not posted from the notes besides the new digests that claim their credentials again."""
    clock = Clock(sample_reference_time())
    fake_slack.hold("chat.postMessage", count=2)
    job = RunningJob()  # one run, its notes kept across attempts
    async with bot(fake_slack, graph, clock) as client:
        running = asyncio.create_task(scan(client, job))
        await eventually(lambda: len(fake_slack.called("chat.postMessage")) == 2)
        fake_slack.drop()
        await running
        fake_slack._applied = True
        await scan(client, job)
    assert mentions(fake_slack, TEAM, "warehouse-sync") == 1
    assert len(fake_slack.delivered("chat.postMessage")) == 2  # the route's and the defaults', once each


async def test_redis_down_reports_and_does_not_crash(fake_slack: FakeSlack, graph: FakeGraph) -> None:
    clock = Clock(sample_reference_time())
    with redis_server() as server:
        async with bot(fake_slack, graph, clock, redis_url=server.url) as client:
            server.stop()
            await scan(client)  # the last attempt: reports instead of raising
    [report] = posts(fake_slack, DEFAULTS)
    assert "Could not scan" in report["text"] and "Redis" in report["text"]


@pytest.mark.parametrize("refusal", ["not_in_channel", "channel_not_found", "is_archived"])
async def test_a_channel_that_refuses_posts_is_named_to_the_defaults_once_and_its_warnings_wait(
    fake_slack: FakeSlack, graph: FakeGraph, refusal: str
) -> None:
    fake_slack.refusing[TEAM] = refusal  # the route's channel: the bot was never invited, or it is gone
    clock = Clock(sample_reference_time())
    async with bot(fake_slack, graph, clock) as client:
        for _ in range(3):  # three scans the same day: each tries the route's channel again
            await scan(client)
        notices = [m for m in posts(fake_slack, DEFAULTS) if f"<#{TEAM}>" in m.get("text", "")]
        assert len(notices) == 1 and "I cannot post expiry warnings to" in notices[0]["text"]
        assert len(fake_slack.called("chat.postMessage")) - len(fake_slack.delivered("chat.postMessage")) == 3
        listing = await slash(client, fake_slack, "watching", TEAM)
        assert "I cannot post expiry warnings here" in listing
        del fake_slack.refusing[TEAM]  # invited (or the route fixed): nothing was lost meanwhile
        await scan(client)
        assert "cannot post" not in await slash(client, fake_slack, "watching", TEAM)  # posted: forgotten
    assert mentions(fake_slack, TEAM, "warehouse-sync") == 1


async def slash(client: TestClient, fake: FakeSlack, text: str, channel: str) -> str:
    """`/secretbot <text>` typed in `channel` (works where the bot is no member): the answer's words."""
    before = len(fake.called("response_url"))
    form = {"command": "/secretbot", "text": text, "user_id": "U0ALICE", "channel_id": channel}
    form["response_url"] = fake.url(f"/response/{next(_PRESSES)}")
    body = urlencode(form)
    headers = signed(body) | {"Content-Type": "application/x-www-form-urlencoded"}
    assert (await client.post("/slack/events", data=body, headers=headers)).status == 200
    await eventually(lambda: len(fake.called("response_url")) > before)
    return card_text(fake.called("response_url")[-1]["blocks"])


# --- replicas and crashes ----------------------------------------------------------------------


async def test_three_workers_at_the_same_tick_run_one_scan(fake_slack: FakeSlack, graph: FakeGraph) -> None:
    clock = Clock(sample_reference_time())
    with redis_server() as server:
        apps = [
            create_app(
                settings(fake_slack, routes=ROUTES, redis_url=server.url, scan_cron="* * * * * *"),
                clock=clock,
                scan_graph=on(graph),
                role=Role.WORKER,
            )
            for _ in range(3)
        ]
        clients = [TestClient(TestServer(app)) for app in apps]
        for client in clients:
            await client.start_server()
        started = time.monotonic()
        await asyncio.sleep(3.5)
        for client in clients:
            await client.close()
        elapsed = time.monotonic() - started
    # Every scan starts with one delta round of the applications (the sample tenant fits one page).
    rounds = sorted(r.time for r in graph.requests if "/applications/" in r.path and "delta" in r.path)
    assert 1 <= len(rounds) <= elapsed + 1
    assert all(b - a > 0.5 for a, b in itertools.pairwise(rounds))  # never two scans in one tick
    assert len(posts(fake_slack, TEAM)) == 1


@contextmanager
def worker_process(
    redis_url: str, fake: FakeSlack, log: Path, env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """`secretbot worker` in its own process on the sample tenant, judged at the real clock (every
    sample credential that has expired by then is warned at threshold 0)."""
    environment = (
        os.environ
        | env
        | {
            "REDIS_URL": redis_url,
            "SLACK_BOT_TOKEN": "xoxb-test-token",
            "SLACK_SIGNING_SECRET": "test-signing-secret",
            "SLACK_API_URL": fake.url("/api/"),
            "SECRETBOT_SNAPSHOT": "sample",
            "SECRETBOT_LOG_LEVEL": "info",
        }
    )
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "worker", "--concurrency", "4"],
            cwd=ROOT,
            env=environment,
            stderr=sink,
            stdout=sink,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


class Attempt(RunningJob):
    def __init__(self, *, last: bool) -> None:
        super().__init__()
        self._last = last

    @property
    def is_last_attempt(self) -> bool:
        return self._last


async def test_a_worker_killed_mid_scan_is_replaced_and_nobody_is_warned_twice(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    routes = tmp_path / "routes.toml"
    routes.write_text(f'[defaults]\nslack_channel = "{DEFAULTS}"\n', encoding="utf-8")
    fake_slack.hold("chat.postMessage")  # the first worker's digest never reaches Slack: it is killed first
    log = tmp_path / "workers.log"
    env = {"SECRETBOT_ROUTES": str(routes), "SECRETBOT_SCAN_CRON": "* * * * * *"}
    with redis_server() as server, worker_process(server.url, fake_slack, log, env) as first:
        await wait_for_log(log, "worker running")
        await eventually(lambda: bool(fake_slack.called("chat.postMessage")), 30)  # mid-scan, held
        with worker_process(server.url, fake_slack, log, env) as second:
            first.send_signal(signal.SIGKILL)
            first.wait()
            # The sweep gives the scan up once its heartbeat stops; its next attempt posts the
            # digests the dead worker had claimed (kept in the job's notes).
            await eventually(lambda: bool(fake_slack.delivered("chat.postMessage")), 60)
            await asyncio.sleep(2.5)  # more ticks: room for a duplicate, if there were one
            assert second.poll() is None
            fake_slack.drop()
    delivered = fake_slack.delivered("chat.postMessage")
    assert [m["channel"] for m in delivered] == [DEFAULTS]  # one digest, posted once
    assert len(fake_slack.called("chat.postMessage")) == 2  # the dead worker's, never answered, and this one


async def kill_the_scan_at(fake: FakeSlack, tmp_path: Path, method: str, *, applied: bool) -> None:
    """A worker's scan held at Slack's `method` and killed there; Slack acts on the held call (or not,
    `applied`) after the kill; a second worker runs the scan's next attempt, and a few more ticks."""
    routes = tmp_path / "routes.toml"
    routes.write_text(f'[defaults]\nslack_channel = "{DEFAULTS}"\n', encoding="utf-8")
    fake.hold(method)
    log = tmp_path / "workers.log"
    env = {"SECRETBOT_ROUTES": str(routes), "SECRETBOT_SCAN_CRON": "* * * * * *"}
    with redis_server() as server, worker_process(server.url, fake, log, env) as first:
        await wait_for_log(log, "worker running")
        await eventually(lambda: bool(fake.called(method)), 30)  # the scan is held there
        with worker_process(server.url, fake, log, env) as second:
            first.send_signal(signal.SIGKILL)
            first.wait()
            fake.release() if applied else fake.drop()
            await wait_for_log(log, "expiry scan done", 60)  # the second worker's attempt
            await asyncio.sleep(2.5)  # more ticks: room for a duplicate, if there were one
            assert second.poll() is None


async def test_a_worker_killed_between_claiming_and_posting_loses_no_warning(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    """Killed while looking up the owners: the warnings are claimed, nothing is posted yet. The claim
    saved the digest with it, so the next attempt posts it."""
    await kill_the_scan_at(fake_slack, tmp_path, "users.lookupByEmail", applied=False)
    delivered = fake_slack.delivered("chat.postMessage")
    assert [m["channel"] for m in delivered] == [DEFAULTS]
    assert "expired" in card_text(delivered[0]["blocks"]).lower()


async def test_a_worker_killed_after_slack_accepted_the_post_does_not_post_it_again(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    """Killed while Slack holds the post, which Slack then accepts: the next attempt finds the card in
    the channel by the digest id in its metadata, records it, and posts nothing."""
    await kill_the_scan_at(fake_slack, tmp_path, "chat.postMessage", applied=True)
    [posted] = fake_slack.called("chat.postMessage")
    assert posted["channel"] == DEFAULTS and posted["metadata"]["event_payload"]["digest_id"]
    [looked] = fake_slack.called("conversations.history")
    assert looked["channel"] == DEFAULTS and looked["include_all_metadata"] in ("1", "true", True)


async def test_digests_a_killed_scan_post_left_are_posted_by_a_later_scan(
    fake_slack: FakeSlack, graph: FakeGraph, tmp_path: Path
) -> None:
    """`secretbot scan --post` (no queue, no next attempt) killed while Slack holds its posts: once
    the lease is over, the server's next scan posts those digests, each once."""
    routes = tmp_path / "routes.toml"
    names = ", ".join(f'"{name}"' for name in CROSSING)
    routes.write_text(
        f'[defaults]\nslack_channel = "{DEFAULTS}"\n\n[[route]]\nname = [{names}]\nslack_channel = "{TEAM}"\n',
        encoding="utf-8",
    )
    fake_slack.hold("chat.postMessage", count=2)
    start = sample_reference_time()
    with redis_server() as server:
        env = os.environ | {
            "REDIS_URL": server.url,
            "SLACK_BOT_TOKEN": "xoxb-test-token",
            "SLACK_SIGNING_SECRET": "test-signing-secret",
            "SLACK_API_URL": fake_slack.url("/api/"),
            "SECRETBOT_ROUTES": str(routes),
        }
        command = ["-m", "bot", "scan", "--snapshot", "sample", "--now", start.isoformat(), "--post"]
        with (tmp_path / "cli.log").open("wb") as log:
            cli = await asyncio.create_subprocess_exec(sys.executable, *command, cwd=ROOT, env=env, stderr=log)
        await eventually(lambda: len(fake_slack.called("chat.postMessage")) == 2, 30)
        cli.kill()
        await cli.wait()
        fake_slack.drop()  # Slack never acted on them
        calls = fake_slack.called("chat.postMessage")
        held = {c["channel"]: c["metadata"]["event_payload"]["digest_id"] for c in calls}
        fake_slack._applied = True
        clock = Clock(start + keys.PENDING_DIGEST_LEASE + timedelta(minutes=1))
        async with bot(fake_slack, graph, clock, redis_url=server.url) as client:
            await scan(client)
            await scan(client)
    for channel in (TEAM, DEFAULTS):
        ids = [m["metadata"]["event_payload"]["digest_id"] for m in posts(fake_slack, channel)]
        assert ids.count(held[channel]) == 1  # the killed run's digest, posted once
    assert mentions(fake_slack, TEAM, "warehouse-sync") == 1


async def test_many_channels_are_posted_and_updated_at_slacks_pace(fake_slack: FakeSlack, graph: FakeGraph) -> None:
    """Every channel gets its digest, then its update in place, never two messages within Slack's one
    second per channel (the fake answers 429 to that); the 500-channel timing is in benchmarks."""
    channels = [f"C{n:04d}" for n in range(40)]
    fake_slack.per_channel_seconds = 1.0
    clock = Clock(sample_reference_time())
    routes = Routes(defaults=tuple(Destination(Platform.SLACK, c) for c in channels))
    app = create_app(settings(fake_slack, routes=routes), clock=clock, scan_graph=on(graph))
    async with TestClient(TestServer(app)) as client:
        await scan(client)
        start = clock.now - timedelta(hours=1)
        graph.use_snapshot(edited(add_secret(WAREHOUSE_SYNC, "wh-2026", "Rn5", start, start + timedelta(days=365))))
        await scan(client)
    assert fake_slack.refused == 0
    for channel in channels:
        [post] = [c for c in fake_slack.calls if c.method == "chat.postMessage" and c.args["channel"] == channel]
        [update] = [c for c in fake_slack.calls if c.method == "chat.update" and c.args["channel"] == channel]
        assert update.args["ts"] == post.ts and update.at - post.at >= 0.99


async def test_slack_throttling_beyond_the_channel_pace_is_waited_out_and_nothing_is_lost_or_doubled(
    fake_slack: FakeSlack, graph: FakeGraph
) -> None:
    """Slack's other limits (per workspace, per method) answer 429 with Retry-After whatever our pace:
    the post waits as long as Slack says, then goes through; the ledger sees it posted once."""
    fake_slack.throttle("chat.postMessage", times=2, retry_after=2)
    clock = Clock(sample_reference_time())
    async with bot(fake_slack, graph, clock) as client:
        await scan(client)
        await scan(client)  # the same day again: nothing new, nothing re-posted
    assert fake_slack.refused == 2
    for channel in (TEAM, DEFAULTS):
        tries = [c for c in fake_slack.calls if c.method == "chat.postMessage" and c.args["channel"] == channel]
        [posted] = [c for c in tries if c.answered]
        assert all(posted.at - c.at >= 1.9 for c in tries if not c.answered)  # waited as Slack said
    assert mentions(fake_slack, TEAM, "warehouse-sync") == 1
    assert len(fake_slack.delivered("chat.postMessage")) == 2


def assert_a_scan_just_ran(before: str, after: str) -> None:
    """/metrics before and after the sample tenant's scan: no scan, then one just now with its counts."""
    assert "secretbot_scan_last_success_timestamp_seconds 0.0" in before
    [last] = [line for line in after.splitlines() if line.startswith("secretbot_scan_last_success_timestamp_seconds ")]
    assert abs(float(last.split()[1]) - time.time()) < 60
    assert 'secretbot_scan_credentials{state="expiring",threshold="30"} 1.0' in after  # warehouse-sync
    assert 'secretbot_scan_credentials{state="expired",threshold="0"}' in after


async def test_metrics_show_the_last_scan_its_duration_and_credentials_by_state_and_threshold(
    fake_slack: FakeSlack, graph: FakeGraph
) -> None:
    clock = Clock(sample_reference_time())
    async with bot(fake_slack, graph, clock) as client:
        before = await (await client.get("/metrics")).text()
        await scan(client)
        after = await (await client.get("/metrics")).text()
    assert_a_scan_just_ran(before, after)
    assert "secretbot_scan_duration_seconds" in after
    assert 'secretbot_digests_total{outcome="posted",platform="slack"} 2.0' in after  # the route's and the defaults'


async def test_a_scan_run_on_a_worker_shows_in_the_web_tiers_metrics(fake_slack: FakeSlack, graph: FakeGraph) -> None:
    clock = Clock(sample_reference_time())
    with redis_server() as server:
        shared = settings(fake_slack, routes=ROUTES, redis_url=server.url)
        web_tier = create_app(shared, clock=clock, scan_graph=on(graph), role=Role.WEB)
        worker = create_app(shared, clock=clock, scan_graph=on(graph), role=Role.WORKER)
        async with TestClient(TestServer(web_tier)) as client, running(worker):
            before = await (await client.get("/metrics")).text()
            await worker[SCAN_JOB](RunningJob())
            after = await (await client.get("/metrics")).text()
    assert_a_scan_just_ran(before, after)
    [duration] = [line for line in after.splitlines() if line.startswith("secretbot_scan_duration_seconds ")]
    assert float(duration.split()[1]) > 0


def verbs(message: dict[str, Any]) -> list[str]:
    return [e.get("action_id", "") for block in message["blocks"] for e in block.get("elements", [])]


async def test_request_rotation_is_offered_on_a_digest_only_for_an_app_the_bot_may_rotate(
    fake_slack: FakeSlack, graph: FakeGraph
) -> None:
    """Checked before the card is posted, from the tags and owners the scan read (and again at the click)."""
    clock = Clock(CROSSING["warehouse-sync"] - timedelta(days=20))  # its secret needs a rotation
    approvers = ("U0PRIYA",)  # rotation is set up; which apps it may touch is the question
    async with bot(fake_slack, graph, clock, approvers=approvers) as client:
        await scan(client)
    [unlisted] = [m for m in posts(fake_slack, TEAM) if "warehouse-sync" in card_text(m["blocks"])]
    assert "rotation.request" not in verbs(unlisted)
    assert "is not set up for rotation by the bot. To enable it" in card_text(unlisted["blocks"])  # why, and how

    graph.use_snapshot(edited(owners_like(WAREHOUSE_SYNC, PAYMENTS_APP)))  # owned by the bot too, and listed:
    async with bot(fake_slack, graph, clock, approvers=approvers, rotation_apps=(WAREHOUSE_SYNC,)) as client:
        await scan(client)
        offered = [m for m in with_ts(fake_slack, TEAM) if "warehouse-sync" in card_text(m["blocks"])][-1]
        assert "rotation.request" in verbs(offered)
        assert "not set up for rotation" not in card_text(offered["blocks"])


INVOICE_WORKER = "95814675-5260-4ba9-9362-3b53b93e295f"  # tagged for rotation, owned by the bot


async def test_request_rotation_on_a_warning_posts_the_request_in_its_thread_and_the_warning_points_at_it(
    fake_slack: FakeSlack, graph: FakeGraph
) -> None:
    """invoice-worker is tagged for rotation and owned by the bot in the sample tenant. The warning keeps
    its rows (it lists other credentials, later scans update it) and gains a line per request."""
    clock = Clock(sample_reference_time())
    async with bot(fake_slack, graph, clock, approvers=("U0PRIYA",)) as client:
        await scan(client)
        [warning] = [m for m in with_ts(fake_slack, DEFAULTS) if "rotation.request" in verbs(m)]

        def in_thread() -> list[dict[str, Any]]:
            return [m for m in with_ts(fake_slack, DEFAULTS) if m.get("thread_ts") == warning["ts"]]

        def warning_now() -> str:
            return card_text([u for u in fake_slack.called("chat.update") if u["ts"] == warning["ts"]][-1]["blocks"])

        await press(client, fake_slack, warning, "rotation.request", ("U0ALICE", "alice"))
        await eventually(lambda: len(in_thread()) == 1, 30)
        [first] = in_thread()
        assert "invoice-worker" in card_text(first["blocks"]) and "rotation.approve" in verbs(first)
        first_id = button(first, "rotation.approve")
        pointed = warning_now()
        assert f"Rotation requested by alice for invoice-worker, request {first_id}: see the thread." in pointed
        assert "rotation.request" in pointed and "rotation.approve" not in pointed  # still the warning
        rows = [block for block in warning["blocks"] if block["type"] == "section"]
        assert rows and all(card_text([row])[1:-1] in pointed for row in rows)  # every row as it was

        await press(client, fake_slack, warning, "rotation.request", ("U0BOB", "bob"))  # a second request
        await eventually(lambda: len(in_thread()) == 2, 30)
        second_id = button(in_thread()[1], "rotation.approve")
        assert second_id != first_id
        await eventually(lambda: f"request {second_id}" in warning_now(), 30)
        twice = warning_now()
        assert twice.count("Rotation requested by") == 2 and twice.count(f"request {first_id}") == 1
        assert "Rotation requested by bob for invoice-worker" in twice

        # An approval moves the request's card in the thread, never the warning.
        def on_first() -> str:
            return card_text([u["blocks"] for u in fake_slack.called("chat.update") if u["ts"] == first["ts"]])

        await press(client, fake_slack, first, "rotation.approve", ("U0PRIYA", "priya"))
        await eventually(lambda: "approved by priya" in on_first() and "stored in Key Vault" in on_first(), 60)

        # A later scan updates the warning (invoice-worker got a newer secret meanwhile): the lines stay.
        start = clock.now - timedelta(hours=1)
        graph.use_snapshot(edited(add_secret(INVOICE_WORKER, "iw-2027", "Nw7", start, start + timedelta(days=365))))
        clock.now += timedelta(hours=2)
        before = len(fake_slack.called("chat.update"))
        await scan(client)
    rescanned = warning_now()
    assert len(fake_slack.called("chat.update")) > before and "A newer secret was added" in rescanned
    assert f"request {first_id}: see the thread" in rescanned and f"request {second_id}: see the thread" in rescanned
    warning_cards = [u for u in fake_slack.called("chat.update") if u["ts"] == warning["ts"]]
    assert all("approved by" not in card_text(u["blocks"]) for u in warning_cards)  # never the request's card
