"""Delivering a judged scan as warnings: one digest per destination, posted through the platform that
owns it, then the earlier cards updated where reality changed (handlers.expiry does the deciding).

Shared by the server's scan job and `secretbot scan --post`, so both keep the same once-per-threshold
state. Safe to run again after a crash: the ids of digests claimed but not yet posted are kept in the
job's notes and posted by the next attempt; a digest already posted (its message recorded) is not.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from aiohttp import web

from bot.domain import ScannedCredential, StateUnavailable
from bot.expiry import Destination, Digest, MessageRef, Platform, Routes, Subscription
from bot.jobs.worker import RunningJob
from bot.metrics import Metrics
from bot.ports import WarningStore
from handlers.expiry import follow_open_digests, prepare_digests, release_digest

log = logging.getLogger(__name__)

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


class WarningDelivery:
    def __init__(
        self, store: WarningStore, routes: Routes, posters: Mapping[Platform, DigestPoster], metrics: Metrics
    ) -> None:
        self._store = store
        self._routes = routes
        self._posters = posters
        self._metrics = metrics

    async def subscriptions(self) -> list[Subscription]:
        return await self._store.subscriptions()

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
        pending = [d for d in [await store.digest(i) for i in job.note(PENDING_NOTE) or []] if d is not None]
        pending = [d for d in pending if await store.message(d.id) is None]
        subscriptions = await store.subscriptions()
        fresh: list[Digest] = []
        for digest in await prepare_digests(rows, self._routes, subscriptions, store, now):
            poster = self._posters.get(digest.destination.platform)
            if poster is None:  # routed to a platform this bot is not configured for
                log.warning(
                    "no %s configured: warnings for %s not posted", digest.destination.platform, digest.destination
                )
                await release_digest(digest, store)
                continue
            try:
                digest = await poster.prepare(digest)
            except StateUnavailable:
                raise
            except Exception as error:  # e.g. Slack refused a lookup: owners are named in plain text
                log.warning("owners not looked up for %s: %s", digest.destination.platform, type(error).__name__)
            await store.save_digest(digest)
            fresh.append(digest)
        todo = pending + fresh
        await job.remember(PENDING_NOTE, [d.id for d in todo])
        if claimed is not None:
            await claimed()
        delivered = Delivered()
        gate = asyncio.Semaphore(POST_CONCURRENCY)

        async def post(digest: Digest) -> None:
            async with gate:
                await self._post(digest, delivered)

        await asyncio.gather(*(post(d) for d in todo))

        async def update(digest: Digest) -> None:
            async with gate:
                await self._update(digest, delivered)

        await asyncio.gather(*(update(d) for d in await follow_open_digests(rows, store, changed)))
        return delivered

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

    async def _post(self, digest: Digest, delivered: Delivered) -> None:
        platform = digest.destination.platform
        poster = self._posters[platform]
        try:
            message_id = await poster.post(digest)
        except Exception as error:
            # The claims go back: the next scan warns these credentials again rather than never.
            log.warning("warning digest not posted platform=%s error=%s", platform, type(error).__name__)
            self._metrics.digests.labels(platform.value, "failed").inc()
            delivered.failed += 1
            await release_digest(digest, self._store)
            return
        await self._store.record_message(digest.id, MessageRef(platform, digest.destination.channel, message_id))
        await self._store.mark_open(digest.id)
        self._metrics.digests.labels(platform.value, "posted").inc()
        delivered.posted += 1

    async def report_failure(self, text: str) -> None:
        """The "could not scan" message, to the defaults destinations (one each)."""
        for destination in self._routes.defaults:
            poster = self._posters.get(destination.platform)
            if poster is None:
                continue
            try:
                await poster.notice(destination, text)
            except Exception as error:
                log.warning(
                    "scan failure not reported platform=%s error=%s", destination.platform, type(error).__name__
                )
