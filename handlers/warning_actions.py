"""The buttons of a warning digest: Acknowledge, Snooze 1 day / 7 days, Check again, Request rotation.

Each answers with the digest drawn again, now saying who acknowledged or snoozed it and when, for
everyone in the channel; or with a Notice when there is nothing to act on (a card too old, a store
that does not answer, rotation not set up yet).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta

from bot.domain import Application, DirectoryError, Notice, NoticeReason, ObjectType, StateUnavailable
from bot.expiry import Digest, Outcome, Snooze, Stamp, WarningRow
from handlers.inbound import Deps, InboundAction

log = logging.getLogger(__name__)

_Act = Callable[[Digest, Stamp], Awaitable[Digest]]  # what a button does to a digest, given who and when

MAX_ID = 64  # longer button values are not ours: answered without asking the store
TOO_OLD = (
    "This warning is too old to act on (warnings are kept for 45 days), or it was never kept. "
    "Its credentials are in the next scan's warning if they still need attention."
)
UNREACHABLE = "The bot's state store is not answering, so nothing was recorded. Try again in a minute."
MAX_RECHECK_APPS = 20  # apps asked about per press: a button answers in seconds; the next scan sees the rest
RECHECK_CONCURRENCY = 5  # lookups in flight at once (each is one Graph $batch)
NO_GRAPH = "Graph access is not configured for this bot, so the credentials cannot be checked again."
GRAPH_DOWN = "Microsoft Graph could not be asked just now, so nothing on the card changed."
ROTATION_NOT_SET_UP = (
    "Rotation is not set up for this bot yet, so nothing was requested. Rotate the credential in the "
    "Entra admin center (App registrations > Certificates & secrets), update the clients, then remove the old one."
)


async def acknowledge(action: InboundAction, deps: Deps) -> Digest | Notice:
    """Record who acknowledged and when: these credentials are not warned here again at these thresholds."""

    async def act(digest: Digest, stamp: Stamp) -> Digest:
        items = [(row.key, row.threshold) for row in digest.rows]
        await deps.state.warnings.acknowledge(digest.destination, items, stamp)
        return replace(digest, acknowledged=stamp, snoozed=None)

    return await _on_digest(action, deps, act)


async def snooze_day(action: InboundAction, deps: Deps) -> Digest | Notice:
    return await _snooze(action, deps, timedelta(days=1))


async def snooze_week(action: InboundAction, deps: Deps) -> Digest | Notice:
    return await _snooze(action, deps, timedelta(days=7))


async def _snooze(action: InboundAction, deps: Deps, length: timedelta) -> Digest | Notice:
    """No warning for these credentials here until then; one reminder once the time is up."""

    async def act(digest: Digest, stamp: Stamp) -> Digest:
        until = stamp.at + length
        await deps.state.warnings.snooze(digest.destination, sorted({row.key for row in digest.rows}), until, stamp)
        return replace(digest, snoozed=Snooze(until, stamp))

    return await _on_digest(action, deps, act)


async def check_again(action: InboundAction, deps: Deps) -> Digest | Notice:
    """Ask Graph now about the digest's app registrations: rows whose credential was removed, replaced
    or renewed since are marked so. Service principals' credentials (SAML certificates) are left to
    the next scan: the lookup reads app registrations."""
    directory = deps.directory
    if directory is None:
        return Notice(NoticeReason.NOT_SET_UP, NO_GRAPH)

    async def act(digest: Digest, stamp: Stamp) -> Digest:
        app_ids = list(dict.fromkeys(r.credential.app_id for r in digest.rows if _is_app(r)))[:MAX_RECHECK_APPS]
        import asyncio  # here: the CLI's paste-only answers import this table and need no event loop

        gate = asyncio.Semaphore(RECHECK_CONCURRENCY)

        async def lookup(app_id: str) -> tuple[str, Application | None]:
            async with gate:
                return app_id, (await directory.lookup(app_id)).application

        found = dict(await asyncio.gather(*(lookup(app_id) for app_id in app_ids)))
        rows = tuple(_rechecked(row, found) for row in digest.rows)
        return replace(digest, rows=rows, rechecked=stamp)

    try:
        return await _on_digest(action, deps, act)
    except DirectoryError as error:
        log.warning("check again: Graph did not answer (%s)", type(error).__name__)
        return Notice(NoticeReason.UNAVAILABLE, f"{GRAPH_DOWN} {error}")


def _is_app(row: WarningRow) -> bool:
    return row.credential.object_type is ObjectType.APPLICATION


def _rechecked(row: WarningRow, found: dict[str, Application | None]) -> WarningRow:
    if not _is_app(row) or row.credential.app_id not in found or row.outcome is not None:
        return row
    application = found[row.credential.app_id]
    credentials = application.credentials if application is not None else ()
    mine = row.credential
    same_kind = [c for c in credentials if c.kind is mine.kind and c.key_id.lower() != mine.key_id.lower()]
    newer = any(mine.end is not None and c.end is not None and c.end > mine.end for c in same_kind)
    if not any(c.key_id.lower() == mine.key_id.lower() for c in credentials):
        return replace(row, outcome=Outcome.REPLACED if newer else Outcome.REMOVED)
    if newer and row.scanned.replaced_by is None:
        return replace(row, outcome=Outcome.RENEWED)
    return row


async def request_rotation(_action: InboundAction, _deps: Deps) -> Notice:
    """Until the rotation flow exists, a clear answer (never a dead button)."""
    return Notice(NoticeReason.NOT_SET_UP, ROTATION_NOT_SET_UP)


async def _on_digest(action: InboundAction, deps: Deps, act: _Act) -> Digest | Notice:
    if not action.id or len(action.id) > MAX_ID:
        return Notice(NoticeReason.EXPIRED, TOO_OLD)
    store = deps.state.warnings
    try:
        digest = await store.digest(action.id)
        if digest is None:
            return Notice(NoticeReason.EXPIRED, TOO_OLD)
        updated = await act(digest, Stamp(action.actor.name or action.actor.user_id, deps.now()))
        await store.save_digest(updated)
    except StateUnavailable as error:
        log.warning("state store unavailable (%s): %s not recorded", error.reason, action.verb)
        return Notice(NoticeReason.UNAVAILABLE, UNREACHABLE)
    return updated
