"""Teams adapter (placeholder until the Agents SDK adapter lands): registers nothing."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from bot.platforms.dispatch import Dispatcher
from bot.ports import StateStore
from bot.settings import Settings


def register(
    app: web.Application,
    settings: Settings,
    dispatcher: Callable[[], Dispatcher],
    state: Callable[[], StateStore],
) -> None:
    return None
