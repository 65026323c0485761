"""`secretbot rotations`: the rotation requests kept in Redis, newest first, with their states and each
transition (who, when, the Graph and Key Vault ids). Never a value: the records hold none."""

from __future__ import annotations

import argparse
import json
import sys

from bot.rotation_types import Rotation
from bot.settings import Settings

# Its options are in bot.cli: building the parser should not import this module for every command.


def run_rotations(args: argparse.Namespace, settings: Settings) -> int:
    """Print the requests; 2 when there is no shared Redis to read them from."""
    if not settings.redis_url:
        print("secretbot: rotations are kept in Redis: set REDIS_URL to the bot's Redis", file=sys.stderr)
        return 2
    import asyncio  # here: every other command imports this module, and a paste-only diagnosis needs no loop

    rotations = asyncio.run(_recent(settings.redis_url, args.limit))
    if args.format == "json":
        print(json.dumps([json.loads(r.to_json()) for r in rotations], indent=2, ensure_ascii=False))
    else:
        print(render_rotations(rotations), end="")
    return 0


def render_rotations(rotations: list[Rotation]) -> str:
    if not rotations:
        return "No rotation requests.\n"
    blocks = []
    for r in rotations:
        lines = [
            f"{r.id}  {r.state.value}  {r.app_name} ({r.app_id})",
            f"  requested by {r.requester.shown}: {r.reason}",
        ]
        if r.problem:
            lines.append(f"  problem: {r.problem}")
        for entry in r.history:
            ids = " ".join(f"{k}={v}" for k, v in sorted(entry.ids.items()))
            detail = f" - {entry.detail}" if entry.detail else ""
            lines.append(
                f"  {entry.at:%Y-%m-%d %H:%M:%S} UTC  {entry.state.value:<9} by {entry.by}{detail}"
                + (f"  [{ids}]" if ids else "")
            )
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


async def _recent(redis_url: str, limit: int) -> list[Rotation]:
    from bot.state import open_state

    async with open_state(redis_url) as state:
        return await state.rotations.recent(limit)
