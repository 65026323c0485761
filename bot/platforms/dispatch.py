"""The one way adapters call the use cases: run the handler, count the answer, log facts (never text)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.domain import Diagnosis, Notice
from bot.expiry import Digest
from bot.metrics import Metrics
from handlers.actions import handler_for, warning_handler_for
from handlers.conversation import Asked, answer, answer_asked
from handlers.inbound import Actor, Deps, InboundAction, InboundMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dispatcher:
    deps: Deps
    metrics: Metrics

    async def message(self, message: InboundMessage) -> Diagnosis:
        diagnosis = await answer(message, self.deps)
        self.metrics.diagnosed(message.actor.platform, diagnosis)
        return diagnosis

    async def asked(self, asked: Asked, actor: Actor, conversation_id: str) -> Diagnosis:
        """The answer to a message the web tier has already read (a queued job)."""
        diagnosis = await answer_asked(asked, self.deps, actor, conversation_id)
        self.metrics.diagnosed(actor.platform, diagnosis)
        return diagnosis

    async def action(self, action: InboundAction) -> Diagnosis | Digest | Notice | None:
        """The answer to a button: a card (a diagnosis, or a warning digest drawn again), a Notice when
        there is nothing to show (a question too old to check again), or None for a verb this bot does
        not know (an old card, a forgery)."""
        warning = warning_handler_for(action.verb)
        if warning is not None:
            warned = await warning(action, self.deps)
            if isinstance(warned, Notice):
                self.metrics.errors.labels(f"action_{warned.reason.value}").inc()
            return warned
        handler = handler_for(action.verb)
        if handler is None:
            log.warning("unknown action verb=%s", action.verb[:64])
            self.metrics.errors.labels("unknown_action").inc()
            return None
        answer = await handler(action, self.deps)
        if isinstance(answer, Notice):
            self.metrics.errors.labels(f"action_{answer.reason.value}").inc()
        else:
            self.metrics.diagnosed(action.actor.platform, answer)
        return answer
