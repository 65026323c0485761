"""The `secretbot` command line. Usage errors are one line and exit 2; never a traceback."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from bot.fakegraph.samples import sample_errors, sample_reference_time
from bot.preview.assets import PreviewError
from bot.settings import LOOPBACK, Settings

if TYPE_CHECKING:
    from bot.domain import Diagnosis

# Each command imports what it needs when it runs: the server, the demo, Redis, the Graph SDK and the
# picture taker cost about 0.4 s to import, and `secretbot diagnose` without a snapshot needs none
# of them (tests/test_cli.py checks which modules a plain diagnosis loads).

USAGE_ERROR = 2
CARD_PROBLEMS = 1  # `render`: a card is invalid or does not fit its width
DEFAULT_LIMIT = 50  # `rotations`: the newest requests shown
# json: the firm contract; adaptive: the Teams card (attachment content) for the Adaptive Cards
# designer; blockkit: the Slack message ({"text", "blocks"}) for Block Kit Builder.
FORMATS = ("text", "json", "adaptive", "blockkit")


class UsageError(Exception):
    """A mistake in how the command was called; its message is printed as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="secretbot", description="Diagnose Entra ID app credential errors.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("diagnose", help="explain a pasted AADSTS error or an app id")
    run.add_argument("text", nargs="?", default="-", help="the error text; '-' or nothing reads stdin")
    run.add_argument("--snapshot", help="diagnose against this tenant snapshot (a JSON file, or 'sample')")
    run.add_argument("--now", type=_instant, help="reference time, ISO 8601 (default: now)")
    run.add_argument("--format", choices=FORMATS, default="text")
    _add_render(commands)
    _add_demo(commands)
    _add_scan(commands)
    _add_rotations(commands)
    serve = commands.add_parser(
        "serve", help="run the Slack and Teams server on $PORT, with a job worker (configuration from the environment)"
    )
    serve.add_argument(
        "--no-worker",
        action="store_true",
        help="receive and queue only; `secretbot worker` runs the jobs (needs REDIS_URL)",
    )
    work = commands.add_parser(
        "worker", help="run a job worker alone: answers, button work, schedules (needs REDIS_URL)"
    )
    work.add_argument(
        "--concurrency", type=_concurrency, help="jobs run at once (default: SECRETBOT_WORKER_CONCURRENCY or 16)"
    )
    pkg = commands.add_parser("teams-package", help="build the Teams app package (zip) for your bot's app id")
    pkg.add_argument("--bot-id", required=True, help="the Azure Bot's Microsoft App ID (a GUID)")
    pkg.add_argument(
        "--host",
        required=True,  # without it the package would link Teams to YOUR-HOST
        help="the public host name that serves the bot, e.g. bot.example.com (fills URLs and validDomains)",
    )
    pkg.add_argument("--out", type=Path, default=Path("secretbot-teams.zip"), help="zip to write")
    pkg.add_argument("--manifest-dir", type=Path, help="the manifest/teams folder to use (default: the checkout's)")
    return parser


def _add_render(commands: Any) -> None:
    run = commands.add_parser("render", help="draw the Teams cards of the sample errors (or of a paste) as PNG files")
    causes = tuple(s.cause for s in sample_errors())
    run.add_argument("--cause", action="append", choices=causes, metavar="CAUSE", help="only this sample (repeatable)")
    run.add_argument("--text", help="draw this paste's card as text-<width>.png instead ('-' reads stdin)")
    run.add_argument("--width", action="append", type=_width, metavar="N", help="card width in px (repeatable; 560)")
    run.add_argument("--out", default="cards-out", metavar="DIR", help="where the pictures go (default: ./cards-out)")
    run.add_argument("--snapshot", default="sample", metavar="FILE", help="tenant snapshot, or 'sample' (the default)")
    run.add_argument("--now", type=_instant, metavar="ISO", help="reference time (default: the samples' one)")


def _add_demo(commands: Any) -> None:
    run = commands.add_parser("demo", help="try secretbot in a browser: a local chat console on a sample tenant")
    run.add_argument("--snapshot", default="sample", metavar="FILE", help="tenant snapshot, or 'sample' (the default)")
    run.add_argument("--port", type=_port, help="port to listen on (default: $PORT or 3978)")
    run.add_argument(
        "--host",
        default=LOOPBACK,
        help=f"address to listen on (default: {LOOPBACK}, this machine only); the console has no sign-in",
    )
    run.add_argument("--now", type=_instant, metavar="ISO", help="reference time (default: the samples' one)")
    run.add_argument("--no-browser", action="store_true", help="do not open a browser window")


def _add_scan(commands: Any) -> None:
    run = commands.add_parser("scan", help="report the tenant's app credentials that have expired or end soon")
    run.add_argument("--snapshot", metavar="FILE", help="scan this tenant snapshot (a JSON file, or 'sample')")
    run.add_argument(
        "--now", type=_instant, metavar="ISO", help="judge at this time (default: now; 'sample': its time)"
    )
    run.add_argument("--within", type=_days, default=30, metavar="DAYS", help="rows ending within DAYS (default 30)")
    run.add_argument("--format", choices=("text", "json", "csv"), default="text")
    run.add_argument("--fail-on", type=_days, metavar="DAYS", help="exit 1 when a credential ends within DAYS")
    run.add_argument("--post", action="store_true", help="also post the warnings to the configured channels")


def _add_rotations(commands: Any) -> None:
    run = commands.add_parser("rotations", help="list secret rotation requests, their states and history (REDIS_URL)")
    run.add_argument("--format", choices=("text", "json"), default="text")
    run.add_argument("--limit", type=_limit, default=DEFAULT_LIMIT, help=f"newest N requests (default {DEFAULT_LIMIT})")


def _days(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"not a number of days: {value!r}")
    return int(value)


def _concurrency(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 1000:
        raise argparse.ArgumentTypeError(f"a whole number from 1 to 1000, got {value!r}")
    return int(value)


def _limit(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 1000:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 1000, got {value!r}")
    return int(value)


def _port(value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}")
    return int(value)


def _width(value: str) -> int:
    if not value.isdigit() or not 100 <= int(value) <= 2000:
        raise argparse.ArgumentTypeError(f"not a card width between 100 and 2000 px: {value!r}")
    return int(value)


def _instant(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        settings = Settings.from_env()
        if args.command == "render":
            return _render(args, settings)
        if args.command == "rotations":
            from bot.rotations_cli import run_rotations

            return run_rotations(args, settings)
        if args.command == "demo":
            from bot.demo import run_demo

            run_demo(
                settings,
                snapshot=args.snapshot,
                host=args.host,
                port=args.port or settings.port,
                now=args.now,
                open_browser=not args.no_browser,
            )
            return 0
        if args.command == "scan":
            from bot.scan_command import run_scan

            return run_scan(args, settings)
        if args.command in ("serve", "worker"):
            from bot.app import Role
            from bot.server import serve

            role = Role.WORKER if args.command == "worker" else Role.WEB if args.no_worker else Role.WEB_AND_WORKER
            if role is not Role.WEB_AND_WORKER and not settings.redis_url:
                what = "`worker`" if role is Role.WORKER else "`serve --no-worker`"
                raise UsageError(
                    f"{what} needs a shared Redis: set REDIS_URL (without it the queue lives inside one process, "
                    "so only `secretbot serve` can run its jobs)"
                )
            serve(settings, role=role, concurrency=getattr(args, "concurrency", None))
            return 0
        if args.command == "teams-package":
            from bot.teams_package import build_teams_package

            print(build_teams_package(args.bot_id, args.out, host=args.host, manifest_dir=args.manifest_dir))
            return 0
        text = sys.stdin.read() if args.text == "-" else args.text
        result = _diagnose(text, args.snapshot, args.now, settings)
    # A bad --snapshot raises SnapshotError, a ValueError: naming it would import the snapshot reader.
    except (UsageError, PreviewError, ValueError, OSError) as error:
        print(f"secretbot: {error}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        return 130
    rendered = _renderer(args.format)(result)
    if isinstance(rendered, str):
        print(rendered, end="")
    else:
        print(json.dumps(rendered, indent=2, ensure_ascii=False))
    return 0


def _renderer(name: str) -> Callable[[Diagnosis], str | dict[str, Any]]:
    if name == "json":
        from cards.jsonview import render_json

        return render_json
    if name == "adaptive":
        from cards.adaptive import render_adaptive

        return render_adaptive
    if name == "blockkit":
        from cards.blockkit import render_blockkit

        return render_blockkit
    from cards.text import render_text

    return render_text


def _diagnose(text: str, snapshot: str | None, now: datetime | None, settings: Settings) -> Diagnosis:
    from bot.wiring import has_directory

    if not has_directory(settings, snapshot):
        # The paste alone answers: no event loop, so no asyncio to import.
        from handlers.conversation import reply_from_paste

        return reply_from_paste(text, now=now or datetime.now(UTC))
    import asyncio

    return asyncio.run(_ask_directory(text, snapshot, now, settings))


async def _ask_directory(text: str, snapshot: str | None, now: datetime | None, settings: Settings) -> Diagnosis:
    from bot.wiring import open_directory
    from handlers.conversation import reply

    async with open_directory(settings, snapshot) as directory:
        return await reply(text, directory=directory, now=now or datetime.now(UTC))


def _render(args: argparse.Namespace, settings: Settings) -> int:
    """`secretbot render`: one line per picture; exit 1 when any card is invalid or does not fit.
    --text alone replaces the samples; with --cause, both are drawn."""
    import asyncio

    from bot.pictures import sample_pastes, shot_line, take_pictures

    pastes = sample_pastes(args.cause) if args.cause or args.text is None else {}
    if args.text is not None:
        pastes["text"] = sys.stdin.read() if args.text == "-" else args.text
    now = args.now or sample_reference_time()
    shots = asyncio.run(
        take_pictures(pastes, args.out, args.width or [560], snapshot=args.snapshot, now=now, settings=settings)
    )
    for shot in shots:
        print(shot_line(shot))
    return 0 if all(shot.ok for shot in shots) else CARD_PROBLEMS
