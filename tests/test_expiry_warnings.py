"""Expiry warnings over simulated days: each threshold warned exactly once per destination, across
scans and replicas; Acknowledge and Snooze respected; a renewal or a replacement updates the card it
was warned on; the buttons answer with the card drawn again. The ledger is the real Redis store, on
fakeredis and on a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import fakeredis
import pytest
from redis.asyncio import Redis

from bot.domain import CredentialKind, InventoryCredential, Notice, NoticeReason, ObjectType, Verb
from bot.expiry import (
    AppMatcher,
    Destination,
    Digest,
    MatchBy,
    MessageRef,
    Outcome,
    Platform,
    Problem,
    Route,
    Routes,
    Subscription,
    credential_key,
)
from bot.state import RedisStateStore
from cards.digest_blockkit import render_digest_blockkit
from handlers.actions import handler_for, warning_handler_for
from handlers.expiry import follow_reality, outcomes, prepare_digests, release_digest
from handlers.inbound import Actor, Deps, InboundAction
from handlers.mentions import slack_users
from tests.cardcheck import blockkit_problems, slack_text_objects
from tests.conftest import SampleTenant
from tests.redis_server import free_port
from tests.tenant_edits import PAYMENTS_APP, add_secret, edited, remove_secret
from tests.warning_fixtures import (
    ALICE,
    BACKENDS,
    BOB,
    NO_CHAT,
    NOW,
    Backend,
    credential,
    judge,
    open_backend,
    real_redis,  # noqa: F401  (a fixture: the real redis-server)
)

DAY = timedelta(days=1)
SLACK = Destination(Platform.SLACK, "C0PAYMENTS")
TEAMS = Destination(Platform.TEAMS, "19:ops@thread.tacv2")
ROUTES = Routes(
    defaults=(Destination(Platform.SLACK, "C0DEFAULT"),),
    routes=(Route((AppMatcher(MatchBy.NAME, "payments-*"),), (SLACK,), (30, 14, 7, 1), line=5),),
)
WATCH_OPS = Subscription(TEAMS, AppMatcher(MatchBy.TAG, "critical"), (7,))
# Ends mid-day, so the daily 07:00 scan never lands on the end itself.
SECRET = credential("payments-api", NOW + 35 * DAY + timedelta(hours=12), tags=("critical",), owners=(ALICE, BOB))


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    async with open_backend(request) as opened:
        yield opened


@dataclass
class Tenant:
    """A scan loop over simulated days: two replicas (separate clients on one Redis), one clock."""

    backend: Backend
    credentials: list[InventoryCredential]
    now: datetime = NOW
    posted: list[tuple[int, Destination, int]] = field(default_factory=list)  # (day, destination, threshold)
    digests: list[Digest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.replicas = [self.backend.store(), self.backend.store()]
        self.previous = judge(self.credentials, self.now)

    @property
    def day(self) -> int:
        return (self.now - NOW).days

    def deps(self) -> Deps:
        return Deps(directory=None, state=self.replicas[0], now=lambda: self.now, routes=ROUTES)

    async def scan(self) -> list[Digest]:
        """Both replicas scan at the same tick; what either claims is posted."""
        rows = judge(self.credentials, self.now)
        results = await asyncio.gather(
            *(prepare_digests(rows, ROUTES, [WATCH_OPS], r.warnings, self.now) for r in self.replicas)
        )
        found = [digest for digests in results for digest in digests]
        for digest in found:
            await self.replicas[0].warnings.save_digest(digest)
            await self.replicas[0].warnings.record_message(
                digest.id, MessageRef(digest.destination.platform, digest.destination.channel, f"m{len(self.digests)}")
            )
            self.digests.append(digest)
            self.posted += [(self.day, digest.destination, row.threshold) for row in digest.rows]
        self.previous = rows
        return found

    async def days(self, count: int) -> None:
        for _ in range(count):
            self.now += DAY
            await self.scan()
            await self.scan()  # a second scan the same day (a retry, `scan --post` from a CronJob): nothing new

    async def press(self, verb: Verb, digest: Digest, name: str = "Alice Example") -> Digest | Notice:
        handler = warning_handler_for(verb)
        assert handler is not None
        action = InboundAction(verb, digest.id, Actor("slack", "U0ALICE", name), digest.destination.channel)
        return await handler(action, self.deps())


def warned(tenant: Tenant, destination: Destination) -> list[tuple[int, int]]:
    return [(day, threshold) for day, where, threshold in tenant.posted if where == destination]


async def test_each_threshold_is_warned_exactly_once_per_destination(backend: Backend) -> None:
    tenant = Tenant(backend, [SECRET])
    await tenant.scan()
    await tenant.days(40)

    assert warned(tenant, SLACK) == [(5, 30), (21, 14), (28, 7), (34, 1), (36, 0)]
    assert warned(tenant, TEAMS) == [(28, 7), (36, 0)]  # the `watch tag:critical 7` subscription
    assert warned(tenant, ROUTES.defaults[0]) == []  # a route matched: not the defaults


async def test_snooze_holds_warnings_then_reminds_once_and_acknowledge_stops_the_reminder(backend: Backend) -> None:
    tenant = Tenant(backend, [SECRET])
    await tenant.days(5)
    thirty = tenant.digests[-1]
    assert (thirty.destination, thirty.rows[0].threshold) == (SLACK, 30)

    answer = await tenant.press(Verb.EXPIRY_SNOOZE_WEEK, thirty)
    assert isinstance(answer, Digest) and answer.snoozed is not None
    assert answer.snoozed.until == tenant.now + 7 * DAY and answer.snoozed.stamp.by == "Alice Example"
    await tenant.days(7)
    assert warned(tenant, SLACK) == [(5, 30), (12, 30)]  # nothing for a week, then one reminder

    reminder = tenant.digests[-1]
    await tenant.press(Verb.EXPIRY_SNOOZE_DAY, reminder, "Bob Example")
    tenant.now += timedelta(hours=2)
    acked = await tenant.press(Verb.EXPIRY_ACK, reminder)  # acknowledged before the snooze ends
    assert isinstance(acked, Digest) and acked.acknowledged is not None and acked.acknowledged.by == "Alice Example"
    tenant.now -= timedelta(hours=2)
    await tenant.days(30)
    assert warned(tenant, SLACK) == [(5, 30), (12, 30), (21, 14), (28, 7), (34, 1), (36, 0)]  # no 1-day reminder

    stored = await tenant.replicas[1].warnings.digest(reminder.id)  # the card as anyone pressing later sees it
    assert stored is not None and stored.acknowledged == acked.acknowledged
    assert await tenant.replicas[1].warnings.acknowledged(SLACK, credential_key(SECRET), 30) == acked.acknowledged


async def test_snooze_one_day_reminds_the_next_day(backend: Backend) -> None:
    tenant = Tenant(backend, [SECRET])
    await tenant.days(28)
    seven = next(d for d in reversed(tenant.digests) if d.destination == SLACK)
    await tenant.press(Verb.EXPIRY_SNOOZE_DAY, seven)
    await tenant.days(10)
    assert warned(tenant, SLACK)[2:] == [(28, 7), (29, 7), (34, 1), (36, 0)]
    assert warned(tenant, TEAMS) == [(28, 7), (36, 0)]  # snoozed in Slack only


async def test_an_acknowledged_card_shows_who_and_when_and_keeps_within_slack_limits(backend: Backend) -> None:
    tenant = Tenant(backend, [SECRET])
    await tenant.days(5)
    tenant.now += timedelta(hours=3, minutes=12)
    acked = await tenant.press(Verb.EXPIRY_ACK, tenant.digests[-1])
    assert isinstance(acked, Digest)
    message = render_digest_blockkit(acked)
    assert blockkit_problems(message) == []
    words = "\n".join(node["text"] for node in slack_text_objects(message))
    assert "Acknowledged by Alice Example at 2026-11-25 10:12 UTC." in words
    verbs = [e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert verbs == [Verb.EXPIRY_RECHECK, Verb.ROTATION_REQUEST]


async def test_a_renewal_and_then_a_replacement_update_the_card_in_place(backend: Backend) -> None:
    tenant = Tenant(backend, [SECRET, credential("billing", NOW + 6 * DAY, app=2, owners=(NO_CHAT,))])
    await tenant.days(5)
    card = next(d for d in tenant.digests if d.destination == SLACK)
    assert await tenant.replicas[1].warnings.message(card.id) is not None  # where to update it

    renewed = credential("payments-api", NOW + 400 * DAY, number=2, start=tenant.now, tags=("critical",))
    tenant.credentials.append(renewed)
    updated = await follow_reality(tenant.previous, judge(tenant.credentials, tenant.now), tenant.replicas[0].warnings)
    assert [(d.id, [r.outcome for r in d.rows]) for d in updated] == [(card.id, [Outcome.RENEWED])]

    tenant.previous = judge(tenant.credentials, tenant.now)
    tenant.credentials.remove(SECRET)
    updated = await follow_reality(tenant.previous, judge(tenant.credentials, tenant.now), tenant.replicas[0].warnings)
    assert [(d.id, [r.outcome for r in d.rows]) for d in updated] == [(card.id, [Outcome.REPLACED])]
    stored = await tenant.replicas[1].warnings.digest(card.id)
    assert stored is not None and stored.rows[0].outcome is Outcome.REPLACED
    words = "\n".join(n["text"] for n in slack_text_objects(render_digest_blockkit(stored)))
    assert "Replaced since this warning" in words and "Resolved" in words

    # The same change seen again (a rerun) updates nothing; the new secret is not warned for a year.
    assert (
        await follow_reality(tenant.previous, judge(tenant.credentials, tenant.now), tenant.replicas[0].warnings) == []
    )
    await tenant.days(30)
    assert [t for t in warned(tenant, SLACK) if t[0] > 5] == []


async def test_a_removed_credential_is_marked_removed() -> None:
    rows = judge([SECRET], NOW)
    assert outcomes(rows, []) == {credential_key(SECRET): Outcome.REMOVED}
    other_kind = credential("payments-api", NOW + 400 * DAY, number=2, kind=CredentialKind.CERTIFICATE)
    assert outcomes(rows, judge([other_kind], NOW)) == {credential_key(SECRET): Outcome.REMOVED}


async def test_a_digest_that_could_not_be_posted_is_warned_again(backend: Backend) -> None:
    store = backend.store().warnings
    now = NOW + 5 * DAY
    rows = judge([SECRET], now)
    first = await prepare_digests(rows, ROUTES, [], store, now)
    assert [(d.destination, d.rows[0].threshold) for d in first] == [(SLACK, 30)]
    await release_digest(first[0], store)  # Slack answered 500
    again = await prepare_digests(rows, ROUTES, [], store, now + timedelta(hours=1))
    assert [(d.destination, d.rows[0].threshold) for d in again] == [(SLACK, 30)]
    assert await prepare_digests(rows, ROUTES, [], store, now + timedelta(hours=2)) == []


async def test_problems_follow_the_credentials_of_the_object(backend: Backend) -> None:
    store = backend.store().warnings
    now = NOW + 40 * DAY
    old = credential("payments-api", NOW + 5 * DAY, number=1, start=NOW - 300 * DAY)
    new = credential("payments-api", NOW + 300 * DAY, number=2, start=NOW)
    lonely = credential("payments-lonely", NOW + 2 * DAY, app=3)
    [digest] = await prepare_digests(judge([old, new, lonely], now), ROUTES, [], store, now)
    assert [(row.credential.display_name, row.problem) for row in digest.rows] == [
        ("payments-lonely", Problem.EXPIRED_ONLY),
        ("payments-api", Problem.EXPIRED_REPLACED),
    ]


# --- the buttons ------------------------------------------------------------------------------


def _deps(store: RedisStateStore) -> Deps:
    return Deps(directory=None, state=store, now=lambda: NOW, routes=ROUTES)


@pytest.mark.parametrize("verb", [Verb.EXPIRY_ACK, Verb.EXPIRY_SNOOZE_DAY, Verb.EXPIRY_SNOOZE_WEEK])
async def test_a_button_on_an_unknown_or_forged_digest_answers_a_notice(backend: Backend, verb: Verb) -> None:
    handler = warning_handler_for(verb)
    assert handler is not None
    for digest_id in ("never-posted", "x" * 500, ""):
        answer = await handler(InboundAction(verb, digest_id, Actor("teams", "29:1"), "19:x"), _deps(backend.store()))
        assert isinstance(answer, Notice) and answer.reason is NoticeReason.EXPIRED and "too old" in answer.text


async def test_a_button_with_redis_down_answers_a_notice() -> None:
    client = Redis(port=free_port(), socket_connect_timeout=0.5)
    handler = warning_handler_for(Verb.EXPIRY_ACK)
    assert handler is not None
    answer = await handler(
        InboundAction(Verb.EXPIRY_ACK, "dg1", Actor("slack", "U1"), "C1"), _deps(RedisStateStore(client))
    )
    await client.aclose()
    assert isinstance(answer, Notice) and answer.reason is NoticeReason.UNAVAILABLE


async def test_request_rotation_says_it_is_not_set_up(backend: Backend) -> None:
    handler = handler_for(Verb.ROTATION_REQUEST)
    assert handler is not None
    answer = await handler(
        InboundAction(Verb.ROTATION_REQUEST, "dg1", Actor("slack", "U1"), "C1"), _deps(backend.store())
    )
    assert isinstance(answer, Notice) and answer.reason is NoticeReason.NOT_SET_UP
    assert "Rotation is not set up" in answer.text


# --- owners in Slack ----------------------------------------------------------------------------


async def test_slack_lookups_are_cached_across_digests(backend: Backend) -> None:
    asked: list[str] = []

    async def lookup(address: str) -> str | None:
        asked.append(address)
        return {"alice@contoso.example": "U0ALICE"}.get(address)

    store = backend.store().warnings
    owners = [ALICE, BOB, NO_CHAT, ALICE]
    assert await slack_users(owners, lookup, store) == (("alice@contoso.example", "U0ALICE"),)
    assert await slack_users(owners, lookup, store) == (("alice@contoso.example", "U0ALICE"),)
    assert sorted(asked) == ["alice@contoso.example", "bob@contoso.example", "carol@partner.example"]  # once each


# --- Check again --------------------------------------------------------------------------------


async def test_check_again_asks_graph_and_marks_what_changed(sample_tenant: SampleTenant) -> None:
    lookup = await sample_tenant.directory.lookup(PAYMENTS_APP)
    app = lookup.application
    assert app is not None
    inventory = [
        InventoryCredential(
            ObjectType.APPLICATION,
            app.app_id,
            app.object_id,
            app.display_name,
            c.kind,
            c.key_id,
            c.display_name,
            c.hint,
            c.start,
            c.end,
        )
        for c in app.credentials
    ]
    current = max((c for c in inventory if c.end), key=lambda c: c.end or NOW)
    assert current.end is not None
    now = current.end - 5 * DAY
    store = RedisStateStore(fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer()))
    [digest] = await prepare_digests(
        judge(inventory, now), ROUTES, [Subscription(SLACK, AppMatcher(MatchBy.ALL), (30,))], store.warnings, now
    )
    await store.warnings.save_digest(digest)
    problems = {row.credential.name: row.problem for row in digest.rows}
    assert problems[current.name] is Problem.ROTATION_NEEDED

    handler = warning_handler_for(Verb.EXPIRY_RECHECK)
    assert handler is not None
    deps = Deps(directory=sample_tenant.directory, state=store, now=lambda: now, routes=ROUTES)
    press = InboundAction(Verb.EXPIRY_RECHECK, digest.id, Actor("teams", "29:1", "Bob Example"), TEAMS.channel)

    unchanged = await handler(press, deps)
    assert isinstance(unchanged, Digest) and [r.outcome for r in unchanged.rows] == [None] * len(digest.rows)
    assert unchanged.rechecked is not None and unchanged.rechecked.by == "Bob Example"

    sample_tenant.graph.use_snapshot(
        edited(
            add_secret(PAYMENTS_APP, "ci-2027", "Zz9", now, now + 365 * DAY),
            remove_secret(PAYMENTS_APP, current.name or ""),
        )
    )
    changed = await handler(press, deps)
    assert isinstance(changed, Digest)
    assert {row.credential.name: row.outcome for row in changed.rows}[current.name] is Outcome.REPLACED
    stored = await store.warnings.digest(digest.id)
    assert stored == changed  # everyone pressing later sees the same card
    words = "\n".join(n["text"] for n in slack_text_objects(render_digest_blockkit(changed)))
    assert "Replaced since this warning" in words and "Checked again with Microsoft Graph by Bob Example" in words


async def test_check_again_without_graph_says_so(backend: Backend) -> None:
    handler = warning_handler_for(Verb.EXPIRY_RECHECK)
    assert handler is not None
    answer = await handler(
        InboundAction(Verb.EXPIRY_RECHECK, "dg1", Actor("slack", "U1"), "C1"), _deps(backend.store())
    )
    assert isinstance(answer, Notice) and answer.reason is NoticeReason.NOT_SET_UP and "Graph" in answer.text


async def test_rows_come_most_urgent_first_then_nearest_to_now(backend: Backend) -> None:
    now = NOW
    creds = [
        credential("payments-a", now + 20 * DAY, app=1),
        credential("payments-b", now + 2 * DAY, app=2),
        credential("payments-c", now - 300 * DAY, app=3),
        credential("payments-d", now - 2 * DAY, app=4),
    ]
    [digest] = await prepare_digests(judge(creds, now), ROUTES, [], backend.store().warnings, now)
    assert [row.credential.display_name for row in digest.rows] == [
        "payments-d",
        "payments-c",
        "payments-b",
        "payments-a",
    ]
    assert [row.problem for row in digest.rows] == [Problem.EXPIRED_ONLY] * 2 + [Problem.ROTATION_NEEDED] * 2
