"""The buttons of a warning digest: Acknowledge, Snooze 1 day / 7 days, Request rotation.

Each answers with the digest drawn again, now saying who acknowledged or snoozed it and when, for
everyone in the channel; or with a Notice when there is nothing to act on (a card too old, a store
that does not answer, rotation not set up yet).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta

from bot.domain import Notice, NoticeReason, StateUnavailable
from bot.expiry import Digest, Snooze, Stamp
from handlers.inbound import Deps, InboundAction

log = logging.getLogger(__name__)

_Act = Callable[[Digest, Stamp], Awaitable[Digest]]  # what a button does to a digest, given who and when

MAX_ID = 64  # longer button values are not ours: answered without asking the store
TOO_OLD = (
    "This warning is too old to act on (warnings are kept for 45 days), or it was never kept. "
    "Its credentials are in the next scan's warning if they still need attention."
)
UNREACHABLE = "The bot's state store is not answering, so nothing was recorded. Try again in a minute."
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
