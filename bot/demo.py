"""`secretbot demo`: the server of `serve` on a tenant snapshot, embedded state and the web console.

The bundled sample tenant is judged at the moment its sample errors were written for, so every
sample keeps showing the cause it was written for, whatever today's date is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import webbrowser
from dataclasses import replace
from datetime import datetime

from aiohttp import web

from bot.app import create_app
from bot.edge import LIMITS
from bot.fakegraph import load_snapshot
from bot.fakegraph.samples import sample_errors, sample_reference_time
from bot.logs import configure_logging
from bot.platforms.console import ConsoleOptions, ConsolePerson, Sample, is_loopback
from bot.server import LISTEN_BACKLOG
from bot.settings import LOOPBACK, Settings
from bot.wiring import SAMPLE_SNAPSHOT, snapshot_path

log = logging.getLogger(__name__)

# Two people of the sample tenant (bot/fakegraph/sample_tenant.json), so a rotation can be asked for by
# one and approved by another: Jonas Berg is in no approver group; Sam Keller is an approver through
# security-team, a member of the group secretbot-approvers, found by Graph's transitive membership.
SAMPLE_APPROVERS = ("group:5e8c1a47-2b9d-4f36-a0e7-c4d2f9b6e813",)
SAMPLE_PEOPLE = (
    ConsolePerson("requester", "Jonas Berg", "asks", "console-jonas", "a15f09c8-58b8-413f-8ef5-b163cef350e7"),
    ConsolePerson("approver", "Sam Keller", "approver", "console-sam", "9a4d6f20-1c3e-4b7a-8d52-e6f0b1c9a7d4"),
)
# Any other snapshot: two people known by their console ids, the second an approver in the demo.
OTHER_PEOPLE = (
    ConsolePerson("requester", "Alex", "asks", "console-alex"),
    ConsolePerson("approver", "Sam", "approver", "console-sam"),
)


def run_demo(
    settings: Settings,
    *,
    snapshot: str | None,
    host: str,
    port: int,
    now: datetime | None,
    open_browser: bool,
) -> None:
    """Serve until Ctrl+C. Raises `SnapshotError` or `OSError` (one line each) before serving."""
    configure_logging("WARNING")
    snapshot = snapshot or SAMPLE_SNAPSHOT
    tenant = load_snapshot(snapshot_path(snapshot))  # unreadable: fail now, with the file's problem
    is_sample = snapshot == SAMPLE_SNAPSHOT
    if now is None and is_sample:
        now = sample_reference_time()
    options = ConsoleOptions(
        samples=tuple(Sample(s.cause, s.title, s.text) for s in sample_errors()) if is_sample else (),
        tenant=_tenant_label(tenant.tenant, is_sample),
        clock=f"fixed at {now:%Y-%m-%d %H:%M} UTC" if now else "now",
        loopback_only=is_loopback(host),
        people=SAMPLE_PEOPLE if is_sample else OTHER_PEOPLE,
    )
    # The sample's approvers are its own group; another snapshot's demo approver is added to the settings'.
    approvers = SAMPLE_APPROVERS if is_sample else (*settings.approvers, OTHER_PEOPLE[1].user_id)
    # Embedded state and the snapshot, whatever the environment says: the demo touches nothing real.
    settings = replace(settings, snapshot=snapshot, redis_url=None, host=host, port=port, approvers=approvers)
    app = create_app(settings, console=options, clock=(lambda: now) if now else None)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C is how the demo is meant to stop
        asyncio.run(_serve(app, host, port, open_browser))


async def _serve(app: web.Application, host: str, port: int, open_browser: bool) -> None:
    runner = web.AppRunner(app, access_log=None, **LIMITS.server_options())
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=LISTEN_BACKLOG)
        try:
            await site.start()
        except OSError as error:
            raise OSError(f"cannot listen on {host}:{port} ({error.strerror}); try --port") from None
        url = f"http://{_url_host(host)}:{port}/"
        print(f"secretbot demo: open {url}  (Ctrl+C stops it)", flush=True)
        if not is_loopback(host):
            log.warning("the demo console listens on %s: it has no sign-in, anyone who can reach it can use it", host)
        if open_browser and _has_display():
            webbrowser.open(url)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def _tenant_label(tenant: dict[str, object], is_sample: bool) -> str:
    name = tenant.get("displayName") or tenant.get("defaultDomain") or tenant.get("id") or "tenant snapshot"
    return f"{name} (the bundled sample tenant)" if is_sample else f"{name} (snapshot)"


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::"):
        return LOOPBACK  # listening everywhere; this machine reaches it on loopback
    return f"[{host}]" if ":" in host else host


def _has_display() -> bool:
    """A browser can open here: not on a headless Linux box, where `webbrowser` would start a text
    browser inside this terminal."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
