"""Answer a chat message: an error paste, an app id, or a request for help."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime

from bot.domain import Diagnosis
from bot.ports import Directory
from handlers.diagnose import diagnose
from handlers.inbound import Deps, InboundMessage
from handlers.recheck import remember
from handlers.subscriptions import command_reply, parse_command

_HELP = re.compile(r"\s*/?(?:help|\?|hi|hello|hey|usage)\s*[.!?]?\s*\Z", re.IGNORECASE)


def wants_help(text: str) -> bool:
    return not text.strip() or _HELP.match(text) is not None


async def answer(message: InboundMessage, deps: Deps) -> Diagnosis:
    command = parse_command(message.text)
    if command is not None:  # watch / unwatch / watching: the answer is the command's, not a diagnosis
        nothing = await diagnose("", directory=None, now=deps.now())
        return replace(nothing, command=await command_reply(command, message, deps))
    return await remember(await reply(message.text, directory=deps.directory, now=deps.now()), deps)


async def reply(text: str, *, directory: Directory | None, now: datetime) -> Diagnosis:
    """The welcome for "hi", "help" or nothing at all; anything else is diagnosed, and a paste with
    nothing recognisable in it gets its own answer saying so."""
    if wants_help(text):
        return replace(await diagnose("", directory=None, now=now), asked_for_help=True)
    return await diagnose(text, directory=directory, now=now)
