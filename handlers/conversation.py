"""Answer a chat message: an error paste, an app id, or a request for help.

Reading a message (`read`) and answering it (`answer_asked`) are separate steps, so the web tier can
read a paste, keep only its facts (never a secret value) and leave the answer to a worker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime

from bot.domain import CommandReply, Diagnosis, ParsedInput
from bot.ports import Directory
from handlers.diagnose import PARSE_IN_THREAD_CHARS, diagnose, diagnose_parsed, diagnose_paste
from handlers.inbound import Actor, Deps, InboundMessage
from handlers.parse import parse, transcript_text
from handlers.recheck import remember
from handlers.rotation_actions import is_rotation_command, offer_rotation, rotation_command
from handlers.subscriptions import command_reply, parse_command

_HELP = re.compile(r"\s*/?(?:help|\?|hi|hello|hey|usage)\s*[.!?]?\s*\Z", re.IGNORECASE)


def wants_help(text: str) -> bool:
    return not text.strip() or _HELP.match(text) is not None


@dataclass(frozen=True)
class Asked:
    """What a message asks: help, a command (watch, unwatch, watching), or the facts of a paste.
    Holds no secret value (the parser cuts values out before reading facts, and a command's text is
    cut the same way), so it may wait in the job queue."""

    parsed: ParsedInput | None = None  # None with no command: the person asked for help (or said nothing)
    command: str | None = None


async def read(text: str) -> Asked:
    if wants_help(text):
        return Asked()
    if parse_command(text) is not None or is_rotation_command(text):
        return Asked(command=transcript_text(text))
    import asyncio  # here, not at the top: the CLI's answers without Graph run no event loop

    # A large paste is parsed off the event loop, as `diagnose` does.
    parsed = await asyncio.to_thread(parse, text) if len(text) > PARSE_IN_THREAD_CHARS else parse(text)
    return Asked(parsed)


async def answer(message: InboundMessage, deps: Deps) -> Diagnosis:
    return await answer_asked(await read(message.text), deps, message.actor, message.conversation_id)


async def answer_asked(asked: Asked, deps: Deps, actor: Actor, conversation_id: str) -> Diagnosis:
    now = deps.now()
    if asked.command is not None and is_rotation_command(asked.command):  # rotate / reject: a rotation's card
        return await _rotation_reply(asked.command, actor, conversation_id, deps)
    command = parse_command(asked.command) if asked.command is not None else None
    if command is not None:  # watch / unwatch / watching: the answer is the command's, not a diagnosis
        message = InboundMessage(asked.command or "", actor, conversation_id)
        return _command_answer(await command_reply(command, message, deps), now)
    if asked.parsed is None:
        diagnosis = _welcome(now)
    else:
        diagnosis = await offer_rotation(await diagnose_parsed(asked.parsed, directory=deps.directory, now=now), deps)
    return await remember(diagnosis, deps)


async def _rotation_reply(text: str, actor: Actor, conversation_id: str, deps: Deps) -> Diagnosis:
    answer = await rotation_command(text, actor, conversation_id, deps)
    if isinstance(answer, Diagnosis):
        return answer
    return _command_answer(CommandReply(answer.text, understood=False), deps.now())


async def reply(text: str, *, directory: Directory | None, now: datetime) -> Diagnosis:
    """The welcome for "hi", "help" or nothing at all; anything else is diagnosed, and a paste with
    nothing recognisable in it gets its own answer saying so."""
    if wants_help(text):
        return _welcome(now)
    return await diagnose(text, directory=directory, now=now)


def reply_from_paste(text: str, *, now: datetime) -> Diagnosis:
    """`reply` with no directory to ask, without an event loop (the CLI without Graph)."""
    return _welcome(now) if wants_help(text) else diagnose_paste(text, now=now)


def _command_answer(reply: CommandReply, now: datetime) -> Diagnosis:
    """A command's answer rides on an empty diagnosis, as the welcome does."""
    return replace(diagnose_paste("", now=now), command=reply)


def _welcome(now: datetime) -> Diagnosis:
    return replace(diagnose_paste("", now=now), asked_for_help=True)
