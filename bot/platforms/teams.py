"""Teams adapter: `POST /api/messages` served by the Microsoft 365 Agents SDK, only when Teams is configured.

The pieces: `teams_host` builds the SDK objects once at startup and guards the endpoint (Bot
Framework JWT), `teams_turns` translates activities to Inbound objects and answers with Adaptive
Cards.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from bot.jobs.queue import JobQueue
from bot.jobs.worker import JobTable
from bot.platforms.dispatch import Dispatcher
from bot.ports import StateStore
from bot.settings import Settings


def register(
    app: web.Application,
    settings: Settings,
    dispatcher: Callable[[], Dispatcher],
    state: Callable[[], StateStore],
    jobs: Callable[[], JobQueue],
    table: JobTable,
    *,
    receive: bool = True,
) -> None:
    """Teams' jobs join `table`; with `receive`, the app also serves `POST /api/messages`."""
    if not settings.teams_enabled:
        return  # no route: /api/messages answers 404
    # Imported here: the SDK takes ~0.7 s to import, which the CLI and Slack-only servers never need.
    from bot.platforms import teams_host

    teams_host.mount(app, settings, dispatcher, state, jobs, table, receive=receive)
