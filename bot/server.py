"""`secretbot serve` and `secretbot worker`: the production processes.

`serve` listens on PORT (Slack, Teams, health, readiness, metrics) and, unless told otherwise, runs a
job worker inside; `worker` opens no port and runs jobs until SIGTERM.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal

from aiohttp import web

from bot.app import Role, create_app
from bot.edge import LIMITS
from bot.logs import configure_logging
from bot.settings import INSECURE_TEAMS_FLAG, Settings

log = logging.getLogger(__name__)

# aiohttp's default (128) overflowed under a burst of 200 Slack events and delayed acks by the 1 s SYN
# retransmit (docs/benchmarks.md); the kernel caps it at net.core.somaxconn anyway.
LISTEN_BACKLOG = 1024


def serve(settings: Settings, *, role: Role = Role.WEB_AND_WORKER, concurrency: int | None = None) -> None:
    configure_logging(settings.log_level)
    if role is Role.WORKER:
        asyncio.run(_work(settings, concurrency))
        return
    if not (settings.slack_enabled or settings.teams_enabled):
        log.warning("neither Slack nor Teams is configured: only /healthz, /readyz and /metrics will answer")
    if settings.teams_insecure_no_auth:
        log.warning("%s is set: Teams requests are NOT authenticated; local testing only", INSECURE_TEAMS_FLAG)
    app = create_app(settings, role=role, concurrency=concurrency)
    app.on_startup.append(_freeze_after_startup)  # after the app's own start-up: it runs last
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        print=None,
        access_log=None,
        backlog=LISTEN_BACKLOG,
        **LIMITS.server_options(),
    )


async def _work(settings: Settings, concurrency: int | None) -> None:
    """The app's services, platforms' clients and worker, started and stopped like the server's, with
    no listener. SIGTERM/SIGINT stop it: running jobs finish or go back to the queue."""
    if settings.worker_niceness:
        os.nice(settings.worker_niceness)  # acks of a web tier on the same cores come first
    runner = web.AppRunner(create_app(settings, role=Role.WORKER, concurrency=concurrency), handle_signals=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await runner.setup()
    freeze_startup_heap()
    log.info("worker running; SIGTERM stops it")
    try:
        await stop.wait()
    finally:
        log.info("worker stopping")
        await runner.cleanup()


def freeze_startup_heap() -> None:
    """What start-up imported and built lives as long as the process. Frozen, the collector's full
    passes skip it; unfrozen, each of them walked it all (~0.1 s of one core), and when one fell in a
    burst of Slack events every ack behind it waited that long (docs/benchmarks.md)."""
    gc.collect()
    gc.freeze()


async def _freeze_after_startup(_app: web.Application) -> None:
    freeze_startup_heap()
