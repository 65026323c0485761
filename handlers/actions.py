"""The one table of button handlers that every platform adapter dispatches to by verb."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.domain import Diagnosis, Notice, Verb
from handlers.inbound import Deps, InboundAction
from handlers.recheck import recheck

# A handler answers with a new card (Diagnosis) or, when there is nothing to show, a short Notice.
ActionHandler = Callable[[InboundAction, Deps], Awaitable[Diagnosis | Notice]]

ACTIONS: dict[str, ActionHandler] = {Verb.RECHECK: recheck}


def handler_for(verb: str) -> ActionHandler | None:
    return ACTIONS.get(verb)
