"""The one table of button handlers that every platform adapter dispatches to by verb."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.domain import Diagnosis, Verb
from handlers.diagnose import diagnose
from handlers.inbound import Deps, InboundAction

ActionHandler = Callable[[InboundAction, Deps], Awaitable[Diagnosis]]


async def recheck(action: InboundAction, deps: Deps) -> Diagnosis:
    """Diagnose the app as it is now, e.g. after someone replaced its secret."""
    return await diagnose(action.id, directory=deps.directory, now=deps.now())


ACTIONS: dict[str, ActionHandler] = {Verb.RECHECK: recheck}


def handler_for(verb: str) -> ActionHandler | None:
    return ACTIONS.get(verb)
