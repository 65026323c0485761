"""Posting expiry warnings to many Slack channels: the real scan job (sample tenant behind the local
fake Graph, embedded state) posts one digest to each of N channels, then, after a renewal, updates
each card in place. A small fake Slack Web API in this script answers like Slack: after `--latency`
seconds per call, and with 429 + `Retry-After: 1` to a channel's second message within one second.

Printed: wall and CPU time of the posting scan and of the updating scan, messages per second, the
429s Slack had to send (the bot paces each channel, so none are expected), and the shortest gap
between two messages to one channel.

A figure-printing script, not a test: it asserts nothing about time; it exits 1 when a channel did
not get exactly one post and one update (then the figures mean nothing).

    .venv/bin/python benchmarks/warning_posting.py [--channels 500] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import SCAN_JOB, create_app
from bot.domain import GraphMode
from bot.expiry import Destination, Platform, Routes
from bot.fakegraph import FakeGraph, LocalTokenCredential, load_snapshot, parse_snapshot, sample_snapshot_path
from bot.fakegraph.samples import sample_reference_time
from bot.jobs.worker import RunningJob
from bot.scan_job import tenant_graph_at
from bot.settings import Settings

WAREHOUSE_SYNC = "5f8a2d6c-9e1b-4c3a-a7d5-3b6e9f1c4a28"  # a sample app whose secret is warned


@dataclass
class Slack:
    latency: float
    calls: dict[str, list[tuple[str, float]]] = field(default_factory=lambda: defaultdict(list))
    refused: int = 0
    _last: dict[str, float] = field(default_factory=dict)
    _ts: int = 0

    async def api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query) if request.method == "GET" else dict(parse_qsl(await request.text()))
        if request.content_type == "application/json":
            args = await request.json()
        await asyncio.sleep(self.latency)
        if method == "users.lookupByEmail":
            return web.json_response({"ok": False, "error": "users_not_found"})
        channel, now = str(args.get("channel")), time.monotonic()
        if channel in self._last and now - self._last[channel] < 1.0:
            self.refused += 1
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "1"})
        self._last[channel] = now
        self.calls[method].append((channel, now))
        self._ts += 1
        return web.json_response({"ok": True, "channel": channel, "ts": args.get("ts") or f"1700000000.{self._ts:06d}"})


def renewed_tenant() -> Any:
    import json

    data = json.loads(sample_snapshot_path().read_text("utf-8"))
    start = sample_reference_time() - timedelta(hours=1)
    app = next(a for a in data["applications"] if a["appId"] == WAREHOUSE_SYNC)
    app["passwordCredentials"].append(
        {
            "customKeyIdentifier": None,
            "displayName": "wh-2026",
            "endDateTime": (start + timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "hint": "Rn5",
            "keyId": "9e3b1c55-0a7d-4f2e-8b6c-3d5f7a9e1b20",
            "secretText": None,
            "startDateTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    )
    return parse_snapshot(data)


async def timed(client: TestClient) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    await client.app[SCAN_JOB](RunningJob())
    return time.perf_counter() - wall, time.process_time() - cpu


async def main(channels: int, latency: float) -> int:
    logging.disable(logging.WARNING)
    slack = Slack(latency)
    fake = web.Application()
    fake.router.add_route("*", "/api/{method}", slack.api)
    async with (
        TestServer(fake, host="127.0.0.1") as slack_server,
        FakeGraph(load_snapshot(sample_snapshot_path())) as graph,
    ):
        routes = Routes(defaults=tuple(Destination(Platform.SLACK, f"C{n:05d}") for n in range(channels)))
        settings = Settings(
            slack_bot_token="xoxb-bench",
            slack_signing_secret="bench",
            slack_api_url=str(slack_server.make_url("/api/")),
            routes=routes,
        )
        now = sample_reference_time()
        app = create_app(
            settings,
            clock=lambda: now,
            scan_graph=lambda: tenant_graph_at(graph.base_url, LocalTokenCredential(), GraphMode.SNAPSHOT),
        )
        async with TestClient(TestServer(app)) as client:
            post_wall, post_cpu = await timed(client)
            graph.use_snapshot(renewed_tenant())
            update_wall, update_cpu = await timed(client)
    posts, updates = slack.calls["chat.postMessage"], slack.calls["chat.update"]
    by_channel: dict[str, list[float]] = defaultdict(list)
    for channel, at in posts + updates:
        by_channel[channel].append(at)
    gaps = [max(ats) - min(ats) for ats in by_channel.values() if len(ats) == 2]
    print(f"channels {channels}, Slack latency {latency * 1000:.0f} ms per call, one process")
    print(f"post scan:   wall {post_wall:6.2f} s  cpu {post_cpu:5.2f} s  {len(posts) / post_wall:6.1f} posts/s")
    print(
        f"update scan: wall {update_wall:6.2f} s  cpu {update_cpu:5.2f} s  {len(updates) / update_wall:6.1f} updates/s"
    )
    print(f"429s sent by Slack: {slack.refused}; shortest gap post -> update in one channel: {min(gaps):.2f} s")
    if len(posts) != channels or len(updates) != channels or len(gaps) != channels:
        print(f"error: {len(posts)} posts and {len(updates)} updates for {channels} channels", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.05)
    arguments = parser.parse_args()
    sys.exit(asyncio.run(main(arguments.channels, arguments.latency)))
