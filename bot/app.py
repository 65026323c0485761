"""The composition root: `create_app(settings)` builds every client once and closes them on shutdown.

Nothing happens at import time; each platform adapter adds its routes, its own clients and its jobs.
One app serves any role: the web tier with a worker inside (the default), the web tier alone, or a
worker alone (no routes, no port: `bot.server.work`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum

from aiohttp import web
from aiohttp.typedefs import Middleware

import bot.platforms.console as console_page
import bot.platforms.slack as slack
import bot.platforms.teams as teams
from bot import edge, install_pages, logs
from bot.domain import StateUnavailable
from bot.expiry import Destination, Platform
from bot.jobs.queue import JobQueue
from bot.jobs.worker import JobTable, JobWorker, RunningJob, Schedule
from bot.metrics import MeteredDirectory, MeteredWriter, Metrics
from bot.platforms.dispatch import Dispatcher
from bot.ports import Directory, RotationStore, StateStore
from bot.rotation_posts import RotationPosts
from bot.rotation_wiring import RotationParts, open_rotation_parts
from bot.scan_job import SCAN, ScanJob, TenantOpener, tenant_graph
from bot.settings import Settings
from bot.state import keys, open_redis
from bot.state.inventory import InventoryStore
from bot.warnings_post import POSTERS, Posters, WarningDelivery
from bot.wiring import OpenGraph, open_graph
from handlers.inbound import Deps
from handlers.rotation import Observer, RotationPolicy, Rotations
from handlers.rotation_actions import why_not_rotatable

log = logging.getLogger(__name__)


class Role(StrEnum):
    WEB_AND_WORKER = "web+worker"  # `secretbot serve`: one container is enough
    WEB = "web"  # `secretbot serve --no-worker`: receives, queues and acks
    WORKER = "worker"  # `secretbot worker`: runs the queue's jobs, no port


@dataclass(frozen=True)
class Services:
    settings: Settings
    state: StateStore
    directory: Directory | None
    metrics: Metrics
    dispatcher: Dispatcher
    jobs: JobQueue
    inventory: Callable[[str], InventoryStore]  # a tenant's credential inventory, on the same Redis
    rotations: Rotations | None = None  # None: rotation is not offered here (no Graph, or no Key Vault)
    rotation_fakes: tuple[str, ...] = ()  # the rotation parts that are local stand-ins (snapshot mode)


SERVICES = web.AppKey("services", Services)
JOBS = web.AppKey("job_table", JobTable)
# Housekeeping once a day, at a quiet hour; the expiry scan and rotation add their own schedules.
HOUSEKEEPING_CRON = "17 3 * * *"
METRICS = web.AppKey("metrics", Metrics)
SCAN_JOB = web.AppKey("scan_job", ScanJob)  # the demo's "Run the scan now" runs it directly
ROTATION_JOB = "rotation.advance"  # add, store, prove; or retire (handlers/rotation.py)
# Requests nobody approved within SECRETBOT_APPROVAL_TTL are expired (and their cards say so) by this
# sweep, at most a minute late; it reads only the due ids (keys.ROTATION_DEADLINES_KEY).
ROTATION_EXPIRY = "rotation.expire"
ROTATION_EXPIRY_CRON = "* * * * *"
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
    role: Role = Role.WEB_AND_WORKER,
    concurrency: int | None = None,
    scan_graph: TenantOpener | None = None,
) -> web.Application:
    """The server. `console` adds the demo's web console at `/`; `clock` fixes "now" (the demo's
    sample tenant is judged at the moment its samples were written for); `directory`, owned by the
    caller, replaces the one the settings pick (tests that change their fake tenant while it runs).
    Run it with `limits.server_options()`, the same limits' bounds for the headers. `role` says
    whether it receives requests, runs jobs, or both; `concurrency` is the worker's (default: the
    settings'); `scan_graph` is the Graph the expiry scan reads (default: the settings')."""
    metrics = Metrics()
    middlewares: list[Middleware] = [_request_context]
    if console is not None and console.loopback_only:
        middlewares.append(console_page.loopback_only)  # every route: the whole server is on loopback
    middlewares.append(edge.bounded_body(limits))
    app = web.Application(middlewares=middlewares, client_max_size=limits.max_body_bytes)
    app[METRICS] = metrics
    posters: Posters = {}  # each platform adds its own at startup
    app[POSTERS] = posters
    table = app[JOBS] = JobTable(schedules=[Schedule("housekeeping", HOUSEKEEPING_CRON, _housekeeping(app))])
    now = clock or (lambda: datetime.now(UTC))
    routes = settings.routes
    if console is not None:  # the demo's channel view receives what the defaults receive
        routes = replace(routes, defaults=(*routes.defaults, Destination(Platform.CONSOLE, console_page.CHANNEL)))
    scan = ScanJob(
        scan_graph or tenant_graph(settings),
        lambda tenant: app[SERVICES].inventory(tenant),
        lambda: WarningDelivery(
            app[SERVICES].state.warnings,
            routes,
            posters,
            metrics,
            lambda credential: why_not_rotatable(credential, app[SERVICES].rotations),
        ),
        now,
        metrics,
        routes,
    )
    app[SCAN_JOB] = scan
    table.schedules.append(Schedule(SCAN, settings.scan_cron, scan, timeout=keys.SCAN_TIMEOUT))
    table.functions[ROTATION_JOB] = _rotation_job(app)
    table.schedules.append(Schedule(ROTATION_EXPIRY, ROTATION_EXPIRY_CRON, _rotation_expiry(app)))
    app.cleanup_ctx.append(_services(settings, metrics, now, directory))
    receive = role is not Role.WORKER
    if receive:
        app.router.add_get("/healthz", _healthz)
        app.router.add_get("/readyz", _readyz)
        app.router.add_get("/metrics", _metrics)
        install_pages.register(app)
    dispatcher, state, jobs = lambda: app[SERVICES].dispatcher, lambda: app[SERVICES].state, lambda: app[SERVICES].jobs
    slack.register(app, settings, dispatcher, state, jobs, table, receive=receive)
    teams.register(app, settings, dispatcher, state, jobs, table, receive=receive)
    if console is not None:
        console_page.register(
            app, console, dispatcher, lambda: scan(RunningJob()), posters, lambda: _rotation_readiness(app[SERVICES])
        )
    if role is not Role.WEB:
        # Last: it starts after every platform has added its jobs, and on shutdown stops first, while
        # the clients its running jobs use are still open.
        app.cleanup_ctx.append(_worker(concurrency or settings.worker_concurrency, beside_web=receive))
    return app


def _services(
    settings: Settings, metrics: Metrics, clock: Clock, given: Directory | None
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            redis = await stack.enter_async_context(open_redis(settings.redis_url))
            jobs = JobQueue.on(redis)
            stack.push_async_callback(jobs.close)
            # The snapshot's fake tenant keeps the app's clock (the demo's is fixed at its samples' moment).
            opened = OpenGraph(given) if given else await stack.enter_async_context(open_graph(settings, clock=clock))
            directory = opened.directory
            metered = MeteredDirectory(directory, metrics) if directory else None
            parts = await stack.enter_async_context(open_rotation_parts(settings, opened))
            rotations = _rotations(settings, parts, metered, redis.state.rotations, jobs, metrics, clock)
            deps = Deps(directory=metered, state=redis.state, now=clock, routes=settings.routes, rotations=rotations)
            fakes = parts.fakes if parts else ()
            app[SERVICES] = Services(
                settings,
                redis.state,
                metered,
                metrics,
                Dispatcher(deps, metrics),
                jobs,
                redis.state.inventory,
                rotations,
                fakes,
            )
            log.info("started graph=%s", directory.mode.value if directory else "none")
            yield

    return context


def _rotations(
    settings: Settings,
    parts: RotationParts | None,
    directory: Directory | None,
    store: RotationStore,
    jobs: JobQueue,
    metrics: Metrics,
    clock: Clock,
) -> Rotations | None:
    if parts is None or directory is None:
        return None
    if not settings.approvers:  # nobody could approve a request: not offered (the cards say what enables it)
        log.info("rotation: not offered (SECRETBOT_APPROVERS is not set)")
        return None

    async def enqueue(rotation_id: str, phase: str) -> bool:
        return await later(rotation_id, phase, 0.0)

    async def later(rotation_id: str, phase: str, delay: float) -> bool:
        key = keys.rotation_job_key(rotation_id, phase)
        limit = keys.ROTATION_JOB_TIMEOUT
        return await jobs.enqueue(ROTATION_JOB, key=key, delay=delay, run_limit=limit, rotation_id=rotation_id)

    policy = RotationPolicy(
        approvers=settings.approvers,
        approval_ttl=settings.approval_ttl,
        lifetime_days=settings.secret_lifetime_days,
        retire_grace=settings.retire_grace,
        apps=settings.rotation_apps,
    )
    observer = Observer(
        finished=lambda outcome: metrics.rotations.labels(outcome).inc(),
        approved=metrics.approval_seconds.observe,
    )

    writer = MeteredWriter(parts.writer, metrics)
    people, prover, vault = parts.people, parts.prover, parts.vault
    return Rotations(
        store,
        writer,
        people,
        prover,
        vault,
        directory,
        enqueue,
        clock,
        policy,
        observer,
        on_change=RotationPosts.of(settings, jobs),
        lease_wait=(keys.ROTATION_LEASE + keys.ROTATION_LEASE_RENEW).total_seconds(),
        lease_renew=keys.ROTATION_LEASE_RENEW.total_seconds(),
        identity=parts.identity,
        later=later,
    )


def _rotation_job(app: web.Application) -> Callable[..., Awaitable[None]]:
    async def advance(job: RunningJob, *, rotation_id: str) -> None:
        rotations = app[SERVICES].rotations
        if rotations is None:
            log.warning("rotation %s: rotation is not set up on this worker; left for one that has it", rotation_id)
            raise RuntimeError("rotation not set up")
        try:
            await rotations.advance(rotation_id)
        except Exception as error:
            if job.is_last_attempt:  # no run follows: end it cleanly rather than leave it half done
                await rotations.give_up(rotation_id, f"{type(error).__name__} from Graph, Key Vault or the store")
            raise

    return advance


def _rotation_expiry(app: web.Application) -> Callable[..., Awaitable[None]]:
    async def expire(_job: RunningJob) -> None:
        rotations = app[SERVICES].rotations
        if rotations is None:
            return
        expired = await rotations.expire_overdue()
        if expired:
            log.info("rotation: %d request(s) expired, nobody approved them in time", expired)

    return expire


def _worker(concurrency: int, *, beside_web: bool) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        services, table = app[SERVICES], app[JOBS]
        worker = JobWorker(
            services.jobs,
            table.functions,
            schedules=table.schedules,
            concurrency=concurrency,
            metrics=services.metrics,
            beside_web=beside_web,
        )
        running = asyncio.create_task(worker.run())
        log.info("worker started concurrency=%d jobs=%s", concurrency, ",".join(sorted(table.functions)))
        yield
        await worker.stop()  # running jobs finish or go back to the queue (bot.jobs.worker)
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running

    return context


def _housekeeping(app: web.Application) -> Callable[..., Awaitable[None]]:
    async def housekeeping(_job: RunningJob) -> None:
        state = app[SERVICES].state
        for platform in ("teams", "slack"):
            dropped = await state.forget_lost_conversations(platform)
            if dropped:
                log.info("housekeeping: dropped %d lost %s conversation references", dropped, platform)

    return housekeeping


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
    queue_ok = await services.jobs.ping()
    body = {
        "ready": redis_ok and queue_ok,
        "redis": "ok" if redis_ok else "unreachable",
        "queue": "ok" if queue_ok else "unreachable",
        "graph": services.directory.mode.value if services.directory else "none",
        "slack": services.settings.slack_enabled,
        "teams": services.settings.teams_enabled,
        "rotation": _rotation_readiness(services),
    }
    return web.json_response(body, status=200 if body["ready"] else 503)


def _rotation_readiness(services: Services) -> str:
    if services.rotations is None:
        return "not offered"
    if services.rotation_fakes:
        return "on, with local fakes for: " + ", ".join(services.rotation_fakes)
    return "on"


async def _metrics(request: web.Request) -> web.Response:
    services, metrics = request.app[SERVICES], request.app[METRICS]
    depth = await services.jobs.depth()
    metrics.queue_depth.set(-1 if depth is None else depth)
    try:  # the scan ran on whichever worker: its summary is in Redis
        summary = await services.state.warnings.scan_summary()
    except StateUnavailable:
        summary = None  # Redis is down: the gauges keep what this process last knew
    if summary is not None:
        metrics.show_scan(summary)
    return web.Response(body=request.app[METRICS].exposition(), content_type="text/plain", charset="utf-8")
