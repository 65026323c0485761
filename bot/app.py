"""The composition root: `create_app(settings)` builds every client once and closes them on shutdown.

Nothing happens at import time; each platform adapter adds its routes and its own clients.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web
from aiohttp.typedefs import Middleware

import bot.platforms.console as console_page
import bot.platforms.slack as slack
import bot.platforms.teams as teams
from bot import edge, install_pages, logs
from bot.metrics import MeteredDirectory, Metrics
from bot.platforms.dispatch import Dispatcher
from bot.ports import Directory, StateStore
from bot.settings import Settings
from bot.state import open_state
from bot.wiring import open_directory
from handlers.inbound import Deps

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    settings: Settings
    state: StateStore
    directory: Directory | None
    metrics: Metrics
    dispatcher: Dispatcher


SERVICES = web.AppKey("services", Services)
METRICS = web.AppKey("metrics", Metrics)
_PLATFORM_BY_ROUTE = {
    "/slack/events": "slack",
    "/api/messages": "teams",
    "/console/api/messages": "console",
    "/console/api/actions": "console",
}
Clock = Callable[[], datetime]


def create_app(
    settings: Settings,
    *,
    console: console_page.ConsoleOptions | None = None,
    clock: Clock | None = None,
    directory: Directory | None = None,
    limits: edge.Limits = edge.LIMITS,
) -> web.Application:
    """The server. `console` adds the demo's web console at `/`; `clock` fixes "now" (the demo's
    sample tenant is judged at the moment its samples were written for); `directory`, owned by the
    caller, replaces the one the settings pick (tests that change their fake tenant while it runs).
    Run it with `limits.server_options()`, the same limits' bounds for the headers."""
    metrics = Metrics()
    middlewares: list[Middleware] = [_request_context]
    if console is not None and console.loopback_only:
        middlewares.append(console_page.loopback_only)  # every route: the whole server is on loopback
    middlewares.append(edge.bounded_body(limits))
    app = web.Application(middlewares=middlewares, client_max_size=limits.max_body_bytes)
    app[METRICS] = metrics
    app.cleanup_ctx.append(_services(settings, metrics, clock or (lambda: datetime.now(UTC)), directory))
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    install_pages.register(app)
    slack.register(app, settings, lambda: app[SERVICES].dispatcher, lambda: app[SERVICES].state)
    teams.register(app, settings, lambda: app[SERVICES].dispatcher, lambda: app[SERVICES].state)
    if console is not None:
        console_page.register(app, console, lambda: app[SERVICES].dispatcher)
    return app


def _services(
    settings: Settings, metrics: Metrics, clock: Clock, given: Directory | None
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            state = await stack.enter_async_context(open_state(settings.redis_url))
            directory = given or await stack.enter_async_context(open_directory(settings))
            metered = MeteredDirectory(directory, metrics) if directory else None
            deps = Deps(directory=metered, state=state, now=clock)
            app[SERVICES] = Services(settings, state, metered, metrics, Dispatcher(deps, metrics))
            log.info("started graph=%s", directory.mode.value if directory else "none")
            yield

    return context


@web.middleware
async def _request_context(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    logs.request_id.set(logs.request_id_from(request.headers.get("X-Request-Id")))
    logs.platform.set(_PLATFORM_BY_ROUTE.get(request.path))
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as error:
        status = error.status
        raise
    finally:
        route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unknown"
        request.app[METRICS].requests.labels(route, str(status)).inc()
        log.debug("request %s %s %d %.1f ms", request.method, route, status, (time.perf_counter() - started) * 1000)


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def _readyz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    redis_ok = await services.state.ping()
    body = {
        "ready": redis_ok,
        "redis": "ok" if redis_ok else "unreachable",
        "graph": services.directory.mode.value if services.directory else "none",
        "slack": services.settings.slack_enabled,
        "teams": services.settings.teams_enabled,
    }
    return web.json_response(body, status=200 if redis_ok else 503)


async def _metrics(request: web.Request) -> web.Response:
    return web.Response(body=request.app[METRICS].exposition(), content_type="text/plain", charset="utf-8")
