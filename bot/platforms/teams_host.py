"""The Agents SDK objects behind `POST /api/messages`, built once at startup, and the endpoint's guard.

`/api` is a sub-application so that the token guard (`teams_auth`) covers this endpoint and nothing
else (health checks and Slack keep their own rules). The turn handlers live in `teams_turns`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web
from microsoft_agents.authentication.msal import MsalConnectionManager
from microsoft_agents.hosting.aiohttp import CloudAdapter, start_agent_process
from microsoft_agents.hosting.core import (
    AgentApplication,
    AgentAuthConfiguration,
    ApplicationOptions,
    ClaimsIdentity,
    MemoryStorage,
    TurnContext,
    TurnState,
)
from yarl import URL

from bot.expiry import Platform
from bot.jobs.queue import JobQueue
from bot.jobs.worker import JobTable
from bot.platforms import teams_auth
from bot.platforms.dispatch import Dispatcher
from bot.platforms.teams_jobs import TeamsJobs
from bot.platforms.teams_turns import Turns
from bot.platforms.teams_warnings import TeamsDigests
from bot.ports import StateStore
from bot.settings import INSECURE_TEAMS_FLAG, Settings
from bot.warnings_post import POSTERS

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 10.0  # card updates still running at shutdown get this long to finish


class TeamsHost:
    """What one running server holds for Teams: the SDK's adapter and the agent with our routes."""

    def __init__(self, adapter: CloudAdapter, agent: AgentApplication[TurnState]) -> None:
        self.adapter = adapter
        self.agent = agent


TEAMS = web.AppKey("teams", TeamsHost)


def mount(
    app: web.Application,
    settings: Settings,
    dispatcher: Callable[[], Dispatcher],
    state: Callable[[], StateStore],
    jobs: Callable[[], JobQueue],
    table: JobTable,
    *,
    receive: bool = True,
) -> None:
    config = _auth_configuration(settings)
    keys = teams_auth.SigningKeys(endpoint=teams_auth.key_endpoint_for_tests)
    if receive:
        api = web.Application(middlewares=[teams_auth.guard(config, keys)])
        api.router.add_post("/messages", _messages)
        app.add_subapp("/api", api)
    # On the root app, after the shared services: on shutdown it finishes first, while Graph and
    # the state store are still open for card updates in flight.
    app.cleanup_ctx.append(_lifecycle(settings, config, keys, dispatcher, state, jobs, table))


def proactive(settings: Settings) -> tuple[CloudAdapter, ClaimsIdentity]:
    """An adapter and the bot's identity for posts nobody asked for (`secretbot scan --post`)."""
    connections = MsalConnectionManager(
        connections_configurations={"SERVICE_CONNECTION": _auth_configuration(settings)}
    )
    adapter = CloudAdapter(connection_manager=connections)
    identity = adapter.create_claims_identity(settings.teams_app_id) if settings.teams_app_id else ClaimsIdentity()
    return adapter, identity


def _auth_configuration(settings: Settings) -> AgentAuthConfiguration:
    """The bot's Azure registration: validates inbound tokens and gets outbound ones from Entra."""
    return AgentAuthConfiguration(
        client_id=settings.teams_app_id,
        tenant_id=settings.teams_tenant_id,
        client_secret=settings.teams_app_secret,
        connection_name="SERVICE_CONNECTION",
        # Without a token the SDK lets a request through only when this is on. Issuer checking is
        # opt-in in the SDK; Teams traffic always comes from the Bot Framework issuer, so turn it on.
        anonymous_allowed=settings.teams_insecure_no_auth,
        validate_issuer=True,
    )


def _lifecycle(
    settings: Settings,
    config: AgentAuthConfiguration,
    keys: teams_auth.SigningKeys,
    dispatcher: Callable[[], Dispatcher],
    state: Callable[[], StateStore],
    jobs: Callable[[], JobQueue],
    table: JobTable,
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        connections = MsalConnectionManager(connections_configurations={"SERVICE_CONNECTION": config})
        adapter = CloudAdapter(connection_manager=connections)
        adapter.on_turn_error = _last_resort  # the default one posts the exception text into the chat
        # The SDK's conversation/user state is not used (ours is in Redis), so it stays in memory,
        # empty. No typing timer: the message handler sends one typing activity itself.
        options = ApplicationOptions(storage=MemoryStorage(), start_typing_timer=False)
        agent = AgentApplication[TurnState](options, connection_manager=connections)
        turns = Turns(adapter, dispatcher, state, jobs)
        turns.route(agent)
        # Proactive turns carry the bot's own identity (no caller's token); none without an app id
        # (the local-testing flag), as for the incoming turns.
        identity = adapter.create_claims_identity(settings.teams_app_id) if settings.teams_app_id else ClaimsIdentity()
        table.functions.update(TeamsJobs(adapter, identity, dispatcher).table())
        if POSTERS in app:
            app[POSTERS][Platform.TEAMS] = TeamsDigests(adapter, identity, state)
        app[TEAMS] = TeamsHost(adapter, agent)
        _log_auth_mode(settings)
        yield
        await turns.finish(SHUTDOWN_GRACE_SECONDS)
        await keys.close()

    return context


def _log_auth_mode(settings: Settings) -> None:
    if settings.teams_insecure_no_auth:
        log.warning(
            "Teams authentication is OFF (%s): /api/messages accepts requests without a Bot Framework "
            "token. For local testing only, never on a reachable server.",
            INSECURE_TEAMS_FLAG,
        )


async def _messages(request: web.Request) -> web.StreamResponse:
    host = request.config_dict[TEAMS]
    claims: ClaimsIdentity | None = request.get("claims_identity")
    body = await _json(request)
    if not _service_url_matches_token(claims, body):
        log.warning("teams request refused: serviceUrl is not the one the token was issued for")
        return web.json_response({"error": "serviceUrl does not match the token"}, status=401)
    # One line per activity; `auth=anonymous` marks requests let in only by the local-testing flag.
    log.info(
        "teams activity type=%s name=%s auth=%s",
        _field(body, "type")[:32],
        _field(body, "name")[:64],
        "jwt" if claims is not None and claims.claims else "anonymous",
    )
    try:
        response = await start_agent_process(request, host.agent, host.adapter)
    except Exception as error:
        # The type only: messages of pydantic and connector errors can quote the activity, and the
        # activity can hold a pasted secret.
        log.error("teams request failed error=%s", type(error).__name__)
        return web.json_response({"error": "internal error"}, status=500)
    return response if response is not None else web.Response(status=202)


def _service_url_matches_token(claims: ClaimsIdentity | None, body: Any) -> bool:
    """A Bot Framework token names the service the bot must answer; the activity must name the same.

    The SDK checks this only when its outbound host allow-list is on, and merely logs otherwise.
    Without this check, a captured token could send the bot's replies, and its own Entra token,
    to another host.
    """
    claimed = claims.get_claim_value("serviceurl") if claims is not None else None
    if not claimed:
        return True  # anonymous (local testing), or a token that names no service (agent to agent)
    actual = _field(body, "serviceUrl")
    return bool(actual) and _origin(str(claimed)) == _origin(actual)


def _origin(url: str) -> tuple[str, str, int | None] | None:
    try:
        parsed = URL(url)
    except ValueError:
        return None
    return (parsed.scheme.lower(), (parsed.host or "").lower().rstrip("."), parsed.port)


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()  # aiohttp keeps the body, so the SDK can read it again
    except ValueError:
        return None  # the SDK answers 400 itself


def _field(body: Any, name: str) -> str:
    value = body.get(name) if isinstance(body, dict) else None
    return value if isinstance(value, str) else ""


async def _last_resort(context: TurnContext, error: Exception) -> None:
    """Errors that escape the agent's own error handler: logged by type, nothing sent."""
    log.error("teams turn failed outside the agent error=%s", type(error).__name__)
