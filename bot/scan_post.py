"""`secretbot scan --post`: the scan's warnings posted through the configured platforms, on the
server's own Redis, so a Kubernetes CronJob can run the scan instead of the server's cron and each
threshold is still warned once per channel, whichever of them runs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.domain import ScannedCredential
from bot.expiry import Platform
from bot.jobs.worker import RunningJob
from bot.metrics import Metrics
from bot.settings import Settings
from bot.state import open_state
from bot.state.redis_store import RedisStateStore
from bot.warnings_post import Delivered, Posters, WarningDelivery

NEEDS_REDIS = (
    "--post needs REDIS_URL, the server's Redis: without it nobody can tell what was already warned, "
    "so every run would warn again"
)
NEEDS_PLATFORM = "--post needs Slack (SLACK_BOT_TOKEN) or Teams (the bot's CLIENTID, CLIENTSECRET, TENANTID)"
NEEDS_DESTINATION = "--post needs a routes file with destinations (SECRETBOT_ROUTES) or channels that `watch` apps"


async def post_warnings(rows: Sequence[ScannedCredential], now: datetime, settings: Settings) -> Delivered:
    """Raises ValueError (one line) when posting is not configured, StateUnavailable without Redis."""
    if not settings.redis_url:
        raise ValueError(NEEDS_REDIS)
    if not (settings.slack_bot_token or settings.teams_enabled):
        raise ValueError(NEEDS_PLATFORM)
    async with open_state(settings.redis_url) as state:
        posters = _posters(settings, state)
        delivery = WarningDelivery(state.warnings, settings.routes, posters, Metrics())
        if not settings.routes.defaults and not settings.routes.routes and not await delivery.subscriptions():
            raise ValueError(NEEDS_DESTINATION)
        return await delivery.deliver(rows, now, RunningJob())


def _posters(settings: Settings, state: RedisStateStore) -> Posters:
    posters: Posters = {}
    if settings.slack_bot_token:
        from slack_sdk.web.async_client import AsyncWebClient

        from bot.platforms.slack_warnings import SlackDigests

        client = AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url)
        posters[Platform.SLACK] = SlackDigests(client, state.warnings)
    if settings.teams_enabled:  # the bot's registration, or the local-testing mode without one
        from bot.platforms.teams_host import proactive
        from bot.platforms.teams_warnings import TeamsDigests

        adapter, identity = proactive(settings)
        posters[Platform.TEAMS] = TeamsDigests(adapter, identity, lambda: state)
    return posters
