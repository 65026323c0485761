"""Owners as Slack users: each owner's mail (else UPN) looked up once a day (users.lookupByEmail, which
the Slack adapter calls), so a digest can mention them. Teams needs no lookup: it mentions by the
owner's Entra object id."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

from bot.domain import Owner, StateUnavailable
from bot.expiry import owner_address
from bot.ports import WarningStore

log = logging.getLogger(__name__)

# A Slack lookup by address: the user id, or None when no Slack account has that address.
SlackLookup = Callable[[str], Awaitable[str | None]]


async def slack_users(owners: Iterable[Owner], lookup: SlackLookup, store: WarningStore) -> tuple[tuple[str, str], ...]:
    """(address, Slack user id) for every owner with a Slack account, for `Digest.slack_users`.

    Answers are cached (a miss too, as ""), so a daily scan asks Slack once per owner however many
    digests name them. Without the store the lookups still happen, uncached."""
    found: dict[str, str] = {}
    cache = True
    for address in sorted({a for a in (owner_address(o) for o in owners) if a}):
        cached: str | None = None
        if cache:
            try:
                cached = await store.slack_user(address)
            except StateUnavailable as error:
                log.warning("state store unavailable (%s): Slack users looked up without the cache", error.reason)
                cache = False
        user = cached if cached is not None else await lookup(address) or ""
        if cached is None and cache:
            try:
                await store.save_slack_user(address, user)
            except StateUnavailable:
                cache = False
        if user:
            found[address] = user
    return tuple(sorted(found.items()))
