"""Delivering a judged scan as warnings: one digest per destination, posted through the platform that
owns it, then the earlier cards updated where reality changed (handlers.expiry does the deciding).

Shared by the server's scan job and `secretbot scan --post`, so both keep the same once-per-threshold
state. Safe to run again after a crash: the ids of the digests about to be claimed are kept in the
job's notes before the claim, which saves the digest in the same Redis step; the next attempt posts
each of them that has no message recorded, after asking the platform whether the card is already in
its channel (Slack: found by the digest id in the message's metadata).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from aiohttp import web

from bot.domain import InventoryCredential, ScannedCredential, StateUnavailable
from bot.expiry import (
    ChannelUnreachable,
    Destination,
    Digest,
    MessageRef,
    Platform,
    Routes,
    ScanSummary,
    Subscription,
    rotation_candidate,
)
from bot.jobs.worker import RunningJob
from bot.metrics import Metrics
from bot.ports import WarningStore
from handlers.expiry import cannot_post, follow_open_digests, plan_digests, release_digest

log = logging.getLogger(__name__)

WhyNotRotatable = Callable[[InventoryCredential], Awaitable[str | None]]
POST_CONCURRENCY = 8  # digests in flight at once; each channel is still paced on its own
PENDING_NOTE = "digests"  # the job note: ids of digests saved but perhaps not posted yet


class DigestPoster(Protocol):
    """One chat platform's way to post and update warning cards."""

    async def prepare(self, digest: Digest) -> Digest:
        """The digest with what the platform needs to draw it (Slack: the owners' user ids)."""
        ...

    async def post(self, digest: Digest) -> str:
        """Post the card; the message id to update it by later."""
        ...

    async def find(self, digest: Digest) -> str | None:
        """The message id of this digest's card if it is already in its channel (a post that the
        platform accepted just before a crash); None when it is not, or the platform cannot tell."""
        ...

    async def update(self, message: MessageRef, digest: Digest) -> None: ...

    async def notice(self, destination: Destination, text: str) -> None:
        """A short message with no buttons (the "could not scan" report)."""
        ...


Posters = dict[Platform, DigestPoster]
# Where each platform's adapter leaves its poster at startup, for the scan job (bot.app).
POSTERS: web.AppKey[Posters] = web.AppKey("digest_posters")


@dataclass
class Delivered:
    posted: int = 0
    failed: int = 0
    updated: int = 0
    # Channels that refused their digest for good (ChannelUnreachable), with the platform's code.
    unreachable: dict[Destination, str] = field(default_factory=dict)


class WarningDelivery:
    def __init__(
        self,
        store: WarningStore,
        routes: Routes,
        posters: Mapping[Platform, DigestPoster],
        metrics: Metrics,
        why_not_rotatable: WhyNotRotatable | None = None,
    ) -> None:
        """`why_not_rotatable(credential)`: None when the bot may rotate that credential's app, else why
        not; without it a digest's Request rotation is offered wherever a row needs one, checked on click."""
        self._store = store
        self._routes = routes
        self._posters = posters
        self._metrics = metrics
        self._why_not_rotatable = why_not_rotatable

    async def subscriptions(self) -> list[Subscription]:
        return await self._store.subscriptions()

    async def save_summary(self, summary: ScanSummary) -> None:
        await self._store.save_scan_summary(summary)

    async def last_counts(self) -> tuple[tuple[str, str, int], ...]:
        """The credential counts of the last scan saved, () when there is none or Redis is down."""
        try:
            previous = await self._store.scan_summary()
        except StateUnavailable:
            return ()
        return previous.credentials if previous else ()

    async def rechecks(self, now: datetime) -> list[tuple[str, float]]:
        return await self._store.rechecks(now)

    async def rechecked(self, items: list[tuple[str, float]]) -> None:
        await self._store.rechecked(items)

    async def deliver(
        self,
        rows: Sequence[ScannedCredential],
        now: datetime,
        job: RunningJob,
        *,
        changed: Collection[str] | None = None,
        claimed: Callable[[], Awaitable[None]] | None = None,
    ) -> Delivered:
        """Raises StateUnavailable (the job is tried again; claimed digests are in its notes).

        `rows` may be some objects' only (`changed`: see `follow_open_digests`); `claimed` runs once
        the warnings are claimed and noted, before anything is posted (the scan moves its index on)."""
        store = self._store
        pending = await self._pending(job, now)
        candidates = []
        for candidate in plan_digests(rows, self._routes, await store.subscriptions(), now):
            if candidate.destination.platform in self._posters:
                candidates.append(candidate)
            else:  # routed to a platform this bot is not configured for: not claimed, warned once it is
                destination = candidate.destination
                log.warning("no %s configured: warnings for %s not posted", destination.platform, destination)
        # The ids go into the notes before anything is claimed: whatever a claim saves, a later
        # attempt of this run finds by them and posts.
        await job.remember(PENDING_NOTE, [d.id for d in pending] + [c.id for c in candidates])
        fresh = []
        for candidate in candidates:
            digest = await store.claim_digest(candidate, now)
            if digest is not None:
                fresh.append(await self._prepare(digest))
        if claimed is not None:
            await claimed()
        delivered = Delivered()
        gate = asyncio.Semaphore(POST_CONCURRENCY)

        async def post(digest: Digest, maybe_posted: bool) -> None:
            async with gate:
                await self._post(digest, delivered, maybe_posted)

        await asyncio.gather(*(post(d, True) for d in pending), *(post(d, False) for d in fresh))
        await self._tell_unreachable(delivered.unreachable, now)

        async def update(digest: Digest) -> None:
            async with gate:
                await self._update(digest, delivered)

        await asyncio.gather(*(update(d) for d in await follow_open_digests(rows, store, changed)))
        return delivered

    async def _pending(self, job: RunningJob, now: datetime) -> list[Digest]:
        """Digests an earlier attempt of this run claimed and saved, but did not see posted, and those
        any other run left unposted for longer than a run lasts (a killed `scan --post`)."""
        found = []
        ids = [*(job.note(PENDING_NOTE) or []), *await self._store.abandoned_digests(now)]
        for digest_id in dict.fromkeys(ids):
            digest = await self._store.digest(digest_id)
            if digest is None:  # expired, or given up
                await self._store.forget_pending(digest_id)
                continue
            if digest.destination.platform not in self._posters:
                continue  # another deployment's platform: it stays pending for a process that has it
            if await self._store.message(digest_id) is None:
                found.append(await self._prepare(digest))
        return found

    async def _prepare(self, digest: Digest) -> Digest:
        digest = await self._with_rotation_offer(digest)
        try:
            digest = await self._posters[digest.destination.platform].prepare(digest)
        except StateUnavailable:
            raise
        except Exception as error:  # e.g. Slack refused a lookup: owners are named in plain text
            log.warning("owners not looked up for %s: %s", digest.destination.platform, type(error).__name__)
        await self._store.save_digest(digest)
        return digest

    async def _with_rotation_offer(self, digest: Digest) -> Digest:
        """The apps of the digest's rows that need a rotation which the bot may rotate, checked once per
        app before the card is posted (no Graph request: tags and owners came with the scan)."""
        check = self._why_not_rotatable
        candidates = {row.credential.app_id.lower(): row.credential for row in digest.rows if rotation_candidate(row)}
        if check is None or not candidates:
            return digest
        allowed, refusals = [], []
        for app_id, credential in candidates.items():
            why_not = await check(credential)
            if why_not is None:
                allowed.append(app_id)
            else:
                refusals.append(why_not)
        more = f" ({len(refusals) - 1} more apps alike.)" if len(refusals) > 1 else ""
        note = None if allowed else refusals[0] + more
        return replace(digest, rotatable=tuple(allowed), rotation_note=note)

    async def _update(self, digest: Digest, delivered: Delivered) -> None:
        message = await self._store.message(digest.id)
        poster = self._posters.get(message.platform) if message else None
        if message is None or poster is None:
            return
        try:
            await poster.update(message, digest)
        except Exception as error:  # the card stays as it was; its rows are marked for its buttons
            log.warning("warning card not updated platform=%s error=%s", message.platform, type(error).__name__)
            self._metrics.digests.labels(message.platform.value, "update_failed").inc()
            return
        delivered.updated += 1
        self._metrics.digests.labels(message.platform.value, "updated").inc()

    async def _post(self, digest: Digest, delivered: Delivered, maybe_posted: bool = False) -> None:
        platform = digest.destination.platform
        poster = self._posters[platform]
        try:
            message_id = await poster.find(digest) if maybe_posted else None
            if message_id is not None:
                log.info("warning digest found already posted platform=%s", platform)
            else:
                message_id = await poster.post(digest)
        except ChannelUnreachable as error:
            log.warning("warning digest not posted platform=%s channel refused it: %s", platform, error.code)
            self._metrics.digests.labels(platform.value, "unreachable").inc()
            delivered.failed += 1
            delivered.unreachable[digest.destination] = error.code
            await release_digest(digest, self._store)  # warned there once people fix it
            return
        except Exception as error:
            # The claims go back: the next scan warns these credentials again rather than never.
            log.warning("warning digest not posted platform=%s error=%s", platform, type(error).__name__)
            self._metrics.digests.labels(platform.value, "failed").inc()
            delivered.failed += 1
            await release_digest(digest, self._store)
            return
        await self._store.record_message(digest.id, MessageRef(platform, digest.destination.channel, message_id))
        await self._store.mark_open(digest.id)
        await self._store.mark_reachable(digest.destination)
        self._metrics.digests.labels(platform.value, "posted").inc()
        delivered.posted += 1

    async def _tell_unreachable(self, unreachable: Mapping[Destination, str], now: datetime) -> None:
        """One notice per refusing channel to the defaults, not one per scan: the store remembers it."""
        for destination, code in sorted(unreachable.items()):
            if await self._store.mark_unreachable(destination, code, now):
                await self._notify_defaults(cannot_post(destination, code), skip=destination)

    async def report_failure(self, text: str) -> None:
        """The "could not scan" message, to the defaults destinations (one each)."""
        await self._notify_defaults(text)

    async def _notify_defaults(self, text: str, skip: Destination | None = None) -> None:
        for destination in self._routes.defaults:
            poster = self._posters.get(destination.platform)
            if poster is None or destination == skip:
                continue
            try:
                await poster.notice(destination, text)
            except Exception as error:
                log.warning("notice not posted platform=%s error=%s", destination.platform, type(error).__name__)
