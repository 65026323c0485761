"""`secretbot serve`: the production server on PORT (Slack, Teams, health, readiness, metrics)."""

from __future__ import annotations

import logging

from aiohttp import web

from bot.app import create_app
from bot.edge import LIMITS
from bot.logs import configure_logging
from bot.settings import INSECURE_TEAMS_FLAG, Settings

log = logging.getLogger(__name__)

# aiohttp's default (128) overflowed under a burst of 200 Slack events and delayed acks by the 1 s SYN
# retransmit (docs/benchmarks.md); the kernel caps it at net.core.somaxconn anyway.
LISTEN_BACKLOG = 1024


def serve(settings: Settings) -> None:
    configure_logging(settings.log_level)
    if not (settings.slack_enabled or settings.teams_enabled):
        log.warning("neither Slack nor Teams is configured: only /healthz, /readyz and /metrics will answer")
    if settings.teams_insecure_no_auth:
        log.warning("%s is set: Teams requests are NOT authenticated; local testing only", INSECURE_TEAMS_FLAG)
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        print=None,
        access_log=None,
        backlog=LISTEN_BACKLOG,
        **LIMITS.server_options(),
    )
