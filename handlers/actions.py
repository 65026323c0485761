"""The one table of button handlers that every platform adapter dispatches to by verb."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.domain import Diagnosis, Notice, Verb
from bot.expiry import Digest
from handlers.inbound import Deps, InboundAction
from handlers.recheck import recheck
from handlers.rotation_actions import approve_rotation, reject_rotation, request_rotation, retire_old_secret
from handlers.warning_actions import acknowledge, check_again, snooze_day, snooze_week

# A handler answers with a new card (Diagnosis) or, when there is nothing to show, a short Notice.
ActionHandler = Callable[[InboundAction, Deps], Awaitable[Diagnosis | Notice]]

ACTIONS: dict[str, ActionHandler] = {
    Verb.RECHECK: recheck,
    Verb.ROTATION_REQUEST: request_rotation,
    Verb.ROTATION_APPROVE: approve_rotation,
    Verb.ROTATION_REJECT: reject_rotation,
    Verb.ROTATION_RETIRE: retire_old_secret,
}

# The buttons of a warning digest answer with the digest drawn again (cards.digest_*), or a Notice.
# A table of its own until the adapters render a Digest: then it can join ACTIONS.
WarningActionHandler = Callable[[InboundAction, Deps], Awaitable[Digest | Notice]]

WARNING_ACTIONS: dict[str, WarningActionHandler] = {
    Verb.EXPIRY_ACK: acknowledge,
    Verb.EXPIRY_SNOOZE_DAY: snooze_day,
    Verb.EXPIRY_SNOOZE_WEEK: snooze_week,
    Verb.EXPIRY_RECHECK: check_again,
}


def handler_for(verb: str) -> ActionHandler | None:
    return ACTIONS.get(verb)


def warning_handler_for(verb: str) -> WarningActionHandler | None:
    return WARNING_ACTIONS.get(verb)
