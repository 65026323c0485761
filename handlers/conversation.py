"""Answer a chat message: an error paste, an app id, or a request for help."""

from __future__ import annotations

import re

from bot.domain import Diagnosis
from handlers.diagnose import diagnose
from handlers.inbound import Deps, InboundMessage
from handlers.recheck import remember

_HELP = re.compile(r"\s*(?:help|\?|hi|hello)\s*[.!?]?\s*\Z", re.IGNORECASE)


def wants_help(text: str) -> bool:
    return not text.strip() or _HELP.match(text) is not None


async def answer(message: InboundMessage, deps: Deps) -> Diagnosis:
    """Help is the "nothing recognised" answer: it says what the bot reads and shows an example."""
    text = "" if wants_help(message.text) else message.text
    return await remember(await diagnose(text, directory=deps.directory, now=deps.now()), deps)
