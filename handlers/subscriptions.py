"""Chat subscriptions: `watch`, `unwatch` and `watching`, typed in a channel (a mention, the Slack slash
command, a Teams message).

    watch <app id | name glob | tag:NAME | all> [thresholds]    e.g. watch payments-* 30 14 7
    unwatch <the same>
    watching                                                    what this channel receives, and why

A name with spaces is quoted: `watch "Payments API*"`. Thresholds are whole days before the end date
(`30 14 7`, `30,14,7` or `30d`); without them, the routes file's default thresholds. A warning on
expiry is always sent.
"""

from __future__ import annotations

import logging
import re
import shlex
from dataclasses import dataclass
from enum import StrEnum

from bot.domain import CommandReply, StateUnavailable
from bot.expiry import (
    AppMatcher,
    Destination,
    MatchBy,
    Platform,
    Route,
    Stamp,
    Subscription,
    checked_thresholds,
)
from handlers.expiry import cannot_post
from handlers.inbound import Deps, InboundMessage

log = logging.getLogger(__name__)

MAX_PATTERN = 200  # characters of a name glob; display names are at most 120 in Entra ID
_COMMAND = re.compile(r"\s*/?(watch|unwatch|watching)\b(.*)\Z", re.IGNORECASE | re.DOTALL)
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DAYS = re.compile(r"(\d+)(?:d|days?)?")
USAGE = (
    "watch <app id | name glob | tag:NAME | all> [thresholds], for example: watch payments-* 30 14 7",
    'A name with spaces goes in quotes: watch "Payments API*"',
    "unwatch <the same>: stop receiving those warnings here",
    "watching: what this channel receives, and why",
)
_STORE_DOWN = "The bot's state store is not answering, so nothing was changed. Try again in a minute."


class CommandVerb(StrEnum):
    WATCH = "watch"
    UNWATCH = "unwatch"
    WATCHING = "watching"


@dataclass(frozen=True)
class Command:
    verb: CommandVerb
    matcher: AppMatcher | None = None
    thresholds: tuple[int, ...] | None = None  # None: the defaults


@dataclass(frozen=True)
class BadCommand:
    reason: str


def parse_command(text: str) -> Command | BadCommand | None:
    """The command in a message, a reason it cannot be read, or None when the message is no command."""
    found = _COMMAND.match(text)
    if found is None:
        return None
    verb, rest = CommandVerb(found.group(1).lower()), found.group(2).strip()
    if verb is CommandVerb.WATCHING:
        return Command(verb) if not rest else BadCommand("watching takes nothing after it.")
    try:
        words = shlex.split(rest)
    except ValueError:
        return BadCommand("A quote is not closed: put a name with spaces in a pair of quotes.")
    if not words or not words[0].strip():
        return BadCommand(f"{verb.value} what? Give an app id, a name glob, tag:NAME or all.")
    matcher = _matcher(words[0])
    if isinstance(matcher, BadCommand):
        return matcher
    if verb is CommandVerb.UNWATCH:
        if words[1:]:
            return BadCommand("unwatch takes what to stop watching, without thresholds.")
        return Command(verb, matcher)
    if not words[1:]:
        return Command(verb, matcher)
    thresholds = _thresholds(words[1:])
    return thresholds if isinstance(thresholds, BadCommand) else Command(verb, matcher, thresholds)


def _matcher(word: str) -> AppMatcher | BadCommand:
    value = word.strip()
    lowered = value.lower()
    if lowered == "all":
        return AppMatcher(MatchBy.ALL)
    if lowered.startswith("tag:"):
        tag = lowered[4:].strip()
        return AppMatcher(MatchBy.TAG, tag) if tag else BadCommand("tag: needs a tag name, like tag:team-payments.")
    if len(value) > MAX_PATTERN:
        return BadCommand(f"That name pattern is longer than {MAX_PATTERN} characters.")
    if _GUID.fullmatch(lowered):
        return AppMatcher(MatchBy.APP_ID, lowered)
    return AppMatcher(MatchBy.NAME, lowered)


def _thresholds(words: list[str]) -> tuple[int, ...] | BadCommand:
    days: list[int] = []
    for part in (p for word in words for p in word.split(",") if p):
        found = _DAYS.fullmatch(part.strip().lower())
        if found is None:
            return BadCommand(f"Unknown threshold {part!r}: thresholds are whole days, like 30 14 7.")
        days.append(int(found.group(1)))
    try:
        return checked_thresholds(days)
    except ValueError as error:
        return BadCommand(f"{str(error)[0].upper()}{str(error)[1:]}.")


def destination_of(message: InboundMessage) -> Destination | None:
    """The channel a message came from, as a warning destination (None: not a Slack or Teams channel)."""
    try:
        platform = Platform(message.actor.platform)
    except ValueError:
        return None
    if platform is Platform.CONSOLE:  # the demo's channel view receives the defaults' warnings only
        return None
    channel = message.conversation_id
    if platform is Platform.TEAMS:
        channel = channel.split(";messageid=")[0]  # a reply in a channel thread: the channel itself
    return Destination(platform, channel) if channel else None


async def command_reply(command: Command | BadCommand, message: InboundMessage, deps: Deps) -> CommandReply:
    """Carry out a command for the channel it was typed in, and say what happened."""
    if isinstance(command, BadCommand):
        return CommandReply("That command was not understood", (("Why", (command.reason,)), ("How", USAGE)), False)
    destination = destination_of(message)
    if destination is None:
        return CommandReply(
            "Warnings go to Slack and Teams channels",
            (("Why", ("Type watch in the Slack channel or Teams conversation that should receive them.",)),),
            False,
        )
    try:
        if command.verb is CommandVerb.WATCHING:
            return await _watching(destination, deps)
        assert command.matcher is not None  # parse_command gives watch and unwatch a matcher
        if command.verb is CommandVerb.UNWATCH:
            return await _unwatch(destination, command.matcher, deps)
        return await _watch(destination, command, message, deps)
    except StateUnavailable as error:
        log.warning("state store unavailable (%s): %s not carried out", error.reason, command.verb.value)
        return CommandReply("Nothing was changed", (("Why", (_STORE_DOWN,)),), False)


async def _watch(destination: Destination, command: Command, message: InboundMessage, deps: Deps) -> CommandReply:
    assert command.matcher is not None
    thresholds = command.thresholds or deps.routes.thresholds
    stamp = Stamp(message.actor.name or message.actor.user_id, deps.now())
    new = await deps.state.warnings.subscribe(Subscription(destination, command.matcher, thresholds, stamp))
    title = f"Watching {_what(command.matcher)} here" if new else f"Still watching {_what(command.matcher)} here"
    lines = (f"Warnings {_when(thresholds)}.", "Say watching to list everything this channel receives.")
    return CommandReply(title, (("From now on", lines),))


async def _unwatch(destination: Destination, matcher: AppMatcher, deps: Deps) -> CommandReply:
    if await deps.state.warnings.unsubscribe(destination, matcher):
        return CommandReply(f"No longer watching {_what(matcher)} here")
    current = await deps.state.warnings.subscriptions(destination)
    lines = tuple(f"watch {s.matcher}" for s in current) or ("Nothing: this channel watches nothing.",)
    return CommandReply(f"This channel was not watching {_what(matcher)}", (("Watched here", lines),), False)


async def _watching(destination: Destination, deps: Deps) -> CommandReply:
    subscriptions = await deps.state.warnings.subscriptions(destination)
    sections: list[tuple[str, tuple[str, ...]]] = []
    if subscriptions:
        sections.append(("Watched here", tuple(_subscription_line(s) for s in subscriptions)))
    routed = tuple(_route_line(route) for route in deps.routes.routes if destination in route.destinations)
    if destination in deps.routes.defaults:
        routed += (f"Every app no route matches (the defaults), {_when(deps.routes.thresholds)}.",)
    if routed:
        sections.append((f"From the routes file ({deps.routes.source})", routed))
    refused = await deps.state.warnings.unreachable(destination)
    if refused is not None and sections:  # the last scan could not post here
        sections.insert(0, ("Not delivered", (cannot_post(destination, refused, here=True),)))
    if not sections:
        lines = ("Nothing yet.", *USAGE[:2])
        return CommandReply("This channel receives no expiry warnings", (("Watched here", lines),))
    return CommandReply("Expiry warnings this channel receives", tuple(sections))


def _subscription_line(subscription: Subscription) -> str:
    line = f"{_what(subscription.matcher)}, {_when(subscription.thresholds)}"
    added = subscription.added
    return f"{line} (watch {subscription.matcher}, by {added.by} on {added.at:%Y-%m-%d})" if added else line


def _route_line(route: Route) -> str:
    names = " or ".join(_what(m) for m in route.matchers)
    return f"{names}, {_when(route.thresholds)} (the route at line {route.line})"


def _what(matcher: AppMatcher) -> str:
    if matcher.by is MatchBy.ALL:
        return "every app"
    if matcher.by is MatchBy.TAG:
        return f"apps tagged {matcher.pattern}"
    if matcher.by is MatchBy.APP_ID:
        return f"app {matcher.pattern}"
    return f"apps named {matcher.pattern}"


def _when(thresholds: tuple[int, ...]) -> str:
    days = ", ".join(str(t) for t in thresholds)
    return f"{days} {'day' if thresholds == (1,) else 'days'} before the end date and on expiry"
