"""Slack latency on loopback: how fast the bot acks an event, and how long a paste waits for its card.

The real app (`create_app`: Bolt mounted at POST /slack/events, the sample tenant behind the local
fake Graph with injected latency, the embedded fakeredis state store) is served by aiohttp on
127.0.0.1 with `secretbot serve`'s listen backlog (bot.server.LISTEN_BACKLOG; `--backlog 128` is
aiohttp's default, which serve used before). A small fake Slack Web API in this script answers
auth.test, chat.postMessage and chat.update and notes when each call arrived and on which connection.
Signed `event_callback` message events (DMs, each with its own event_id and channel, text = the seed
error) are sent by an aiohttp client, one new connection per request (as Slack's deliveries arrive):

- ack: request sent -> its HTTP response (Slack retries an event that is not acked within 3 s);
- placeholder: request sent -> the fake Slack receives the "Checking…" chat.postMessage;
- card: request sent -> the fake Slack receives the chat.update that replaces that placeholder.

One untimed warm-up event first (Bolt's auth.test, lazy imports), then a baseline of single events
sent one at a time (each waits for its card), then a burst of concurrent events sent at once with
asyncio.gather (with `--rate R`, the same events sent at a steady R per second instead, each on the
clock: event i leaves i / R seconds after the first). By default the bot, the fake Graph, the fake
Slack and the client share one process and event loop; `--bot-process` serves the bot (and its fake
Graph) from a child process instead. `--bare-app-id` sends only the seed error's app id (no code, so
no log queries), for the paste vs bare app id comparison.

A figure-printing script, not a test: it asserts nothing about time. It exits 1 only when an answer
is missing or wrong (then the figures mean nothing), 2 when the whole run overran --timeout.

    .venv/bin/python benchmarks/slack_latency.py [--events 200] [--repeats 10] [--latency 0.1]
        [--rate 200] [--bare-app-id] [--backlog 1024] [--bot-process] [--timeout 120]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import logging
import math
import multiprocessing
import os
import platform
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web
from slack_bolt.version import __version__ as slack_bolt_version
from slack_sdk.signature import SignatureVerifier
from slack_sdk.version import __version__ as slack_sdk_version

from bot.app import create_app
from bot.fakegraph import FakeGraph
from bot.fakegraph.samples import sample_errors
from bot.server import LISTEN_BACKLOG
from bot.settings import Settings

SIGNING_SECRET = "bench-signing-secret"
BOT_TOKEN = "xoxb-bench"
BOT_USER = "U0SECRETBOT"
SEED = next(s for s in sample_errors() if s.cause == "expired_secret_in_use")
SEED_HEADLINE = "The client still sends an old, expired secret"  # the seed error's card says this
SEED_APP_ID = "dc36fc90-2248-4d70-aca4-a1a9f5b19f71"  # its app; `--bare-app-id` sends only this
SEED_APP_NAME = "payments-api"  # which every card about that app names
SLACK_ACK_LIMIT = 3.0  # seconds
FAKE_SLACK_BACKLOG = 4096  # the stand-in for Slack should never be the one refusing connections


# --- a fake Slack Web API that notes arrival times ------------------------------------------------


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    at: float  # time.perf_counter() once the call had been read
    connection: int  # which TCP connection it came on: 1, 2, … in order of arrival


@dataclass
class FakeSlackApi:
    """Answers like Slack's Web API (as tests/fake_slack.py does) and notes when every call arrived."""

    calls: list[Call] = field(default_factory=list)
    posted: dict[str, Call] = field(default_factory=dict)  # channel -> its first chat.postMessage
    updated: dict[str, Call] = field(default_factory=dict)  # channel -> its first chat.update
    url: str = ""
    update_seen: asyncio.Event = field(default_factory=asyncio.Event)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    _connections: dict[Any, int] = field(default_factory=dict)  # transport -> number (kept: numbers stay unique)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0, backlog=FAKE_SLACK_BACKLOG).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/api/"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def count(self, method: str) -> int:
        return sum(1 for call in self.calls if call.method == method)

    def connections(self) -> int:
        return len({call.connection for call in self.calls})

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        raw = await request.text()
        if request.content_type == "application/json":
            args: dict[str, Any] = dict(json.loads(raw or "{}"))
        else:
            args = dict(parse_qsl(raw))
            if isinstance(args.get("blocks"), str):
                args["blocks"] = json.loads(args["blocks"])
        connection = self._connections.setdefault(request.transport, len(self._connections) + 1)
        call = Call(method, args, time.perf_counter(), connection)
        self.calls.append(call)
        if method == "auth.test":
            return web.json_response({"ok": True, "user_id": BOT_USER, "bot_id": "B0SECRETBOT", "team_id": "T0BENCH"})
        if method not in ("chat.postMessage", "chat.update"):
            return web.json_response({"ok": False, "error": "unknown_method"})
        channel = str(args.get("channel"))
        if method == "chat.postMessage":
            args["ts"] = f"1700000000.{next(self._ts):06d}"  # the ts Slack gives the new message
            self.posted.setdefault(channel, call)
        else:
            self.updated.setdefault(channel, call)
            self.update_seen.set()
        return web.json_response({"ok": True, "channel": channel, "ts": args.get("ts")})


# --- the bot under test: in this process, or in a child process ------------------------------------


class WarningCounter(logging.Handler):
    """Counts warnings and errors from the bot and its libraries (a failed listener logs one)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[f"{record.levelname} {record.name}: {record.getMessage()[:100]}"] += 1


def fake_graph_counts() -> tuple[int, int]:
    """HTTP requests and TCP connections the bot's fake Graph has seen so far in this process.

    The fake Graph is started inside create_app (snapshot mode), out of this script's reach, so it is
    found among the live objects; a measuring script may do that, the app never does.
    """
    graphs = [obj for obj in gc.get_objects() if isinstance(obj, FakeGraph)]
    return sum(g.round_trips for g in graphs), sum(g.connections for g in graphs)


async def serve_bot(settings: Settings, backlog: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, backlog=backlog).start()
    return runner, int(runner.addresses[0][1])


def child_main(settings: Settings, backlog: int, conn: Connection) -> None:
    """`--bot-process`: serve the bot until the parent says stop, then report the warnings logged."""
    counter = WarningCounter()
    logging.getLogger().addHandler(counter)

    async def serve() -> None:
        runner, port = await serve_bot(settings, backlog)
        conn.send(port)
        while (command := await asyncio.get_running_loop().run_in_executor(None, conn.recv)) != "stop":
            conn.send(time.process_time() if command == "cpu" else fake_graph_counts())
        await runner.cleanup()

    asyncio.run(serve())
    conn.send(dict(counter.counts))


@dataclass
class Bot:
    url: str
    runner: web.AppRunner | None = None  # in this process
    process: Any = None  # multiprocessing.Process, for --bot-process
    conn: Connection | None = None
    child_warnings: dict[str, int] = field(default_factory=dict)

    @classmethod
    async def start(cls, settings: Settings, backlog: int, in_child: bool) -> Bot:
        if not in_child:
            runner, port = await serve_bot(settings, backlog)
            return cls(f"http://127.0.0.1:{port}/slack/events", runner=runner)
        spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing inherited from this loop
        ours, theirs = spawn.Pipe()
        process = spawn.Process(target=child_main, args=(settings, backlog, theirs), daemon=True)
        process.start()
        bot = cls("", process=process, conn=ours)
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, ours.poll, 60):
            await bot.stop()
            raise RuntimeError("the bot's process did not start within 60 s")
        bot.url = f"http://127.0.0.1:{ours.recv()}/slack/events"
        return bot

    async def cpu_seconds(self) -> float:
        """CPU time used so far by the process serving the bot (with its fake Graph)."""
        if self.conn is None:
            return time.process_time()
        self.conn.send("cpu")
        return float(await asyncio.get_running_loop().run_in_executor(None, self.conn.recv))

    async def graph_counts(self) -> tuple[int, int]:
        """Requests and connections the bot's fake Graph has seen so far."""
        if self.conn is None:
            return fake_graph_counts()
        self.conn.send("graph")
        requests, connections = await asyncio.get_running_loop().run_in_executor(None, self.conn.recv)
        return int(requests), int(connections)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        if self.process is None or self.conn is None:
            return
        loop = asyncio.get_running_loop()
        if self.process.is_alive():
            self.conn.send("stop")
            if await loop.run_in_executor(None, self.conn.poll, 10):
                self.child_warnings = self.conn.recv()
        await loop.run_in_executor(None, self.process.join, 5)
        if self.process.is_alive():
            self.process.terminate()  # our own child, by its handle


# --- events ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    channel: str
    body: bytes
    headers: dict[str, str]


@dataclass
class Sent:
    channel: str
    started: float = 0.0  # perf_counter() just before the request was sent
    acked: float = 0.0  # perf_counter() once its HTTP response (or error) had arrived
    status: int | None = None
    error: str | None = None


_serial = itertools.count(1)


def prepare(label: str, text: str = SEED.text) -> Prepared:
    """One signed event_callback: a DM holding the seed error, with its own event_id and channel."""
    n = next(_serial)
    channel = f"D0{label}{n:05d}"
    ts = f"1700000100.{n:06d}"
    event = {"type": "message", "user": "U0ALICE", "text": text, "channel": channel, "channel_type": "im"}
    event |= {"ts": ts, "event_ts": ts}
    envelope = {"type": "event_callback", "team_id": "T0BENCH", "api_app_id": "A0BENCH", "event": event}
    body = json.dumps(envelope | {"event_id": f"Ev{label}{n:05d}", "event_time": 1700000100})
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=timestamp, body=body) or ""
    headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": timestamp}
    headers["X-Slack-Signature"] = signature
    return Prepared(channel, body.encode(), headers)


async def send(session: aiohttp.ClientSession, url: str, event: Prepared) -> Sent:
    sent = Sent(event.channel, started=time.perf_counter())
    try:
        async with session.post(url, data=event.body, headers=event.headers) as response:
            await response.read()
            sent.status = response.status
    except (aiohttp.ClientError, OSError) as error:
        sent.error = type(error).__name__
    sent.acked = time.perf_counter()
    return sent


async def steady(session: aiohttp.ClientSession, url: str, events: list[Prepared], rate: float) -> list[Sent]:
    """`--rate`: send event i at i / rate seconds from now (on the clock, not after the previous one)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    tasks = []
    for i, event in enumerate(events):
        await asyncio.sleep(max(start + i / rate - loop.time(), 0.0))
        tasks.append(asyncio.ensure_future(send(session, url, event)))
    return list(await asyncio.gather(*tasks))


async def wait_for_cards(fake: FakeSlackApi, channels: list[str], seconds: float) -> None:
    """Until every channel has its chat.update, or `seconds` have passed (measure() reports what is missing)."""
    deadline = time.monotonic() + seconds
    while True:
        fake.update_seen.clear()
        remaining = deadline - time.monotonic()
        if all(channel in fake.updated for channel in channels) or remaining <= 0:
            return
        try:
            await asyncio.wait_for(fake.update_seen.wait(), remaining)
        except TimeoutError:
            return


# --- figures --------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p % of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)]


@dataclass
class Latencies:
    ack: list[float]
    placeholder: list[float]
    card: list[float]
    problems: list[str]


def measure(fake: FakeSlackApi, sent: list[Sent], expected: str = SEED_HEADLINE) -> Latencies:
    """Latencies in seconds per event, and what is missing or wrong in the answers."""
    ack = [s.acked - s.started for s in sent if s.status == 200]
    placeholder, card, problems = [], [], []
    for s in sent:
        post, update = fake.posted.get(s.channel), fake.updated.get(s.channel)
        if post is not None:
            placeholder.append(post.at - s.started)
        if update is None:
            problems.append(f"{s.channel}: no chat.update")
            continue
        card.append(update.at - s.started)
        if post is None or update.args.get("ts") != post.args.get("ts"):
            problems.append(f"{s.channel}: the chat.update does not replace the placeholder")
        if expected not in json.dumps(update.args.get("blocks"), ensure_ascii=False):
            problems.append(f"{s.channel}: the card does not say {expected!r}")
    return Latencies(ack, placeholder, card, problems)


def table(title: str, latencies: Latencies, of: int) -> str:
    head = f"{'ms, from request sent':<32} {'n':>9} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}"
    lines = [title, head, "-" * len(head)]
    for name, values in (
        ("ack (HTTP response)", latencies.ack),
        ("placeholder (chat.postMessage)", latencies.placeholder),
        ("card (chat.update)", latencies.card),
    ):
        cells = " ".join(f"{percentile(values, p) * 1000:8.1f}" for p in (50, 90, 99)) if values else ""
        last = f" {max(values) * 1000:8.1f}" if values else "  (none)"
        lines.append(f"{name:<32} {f'{len(values)}/{of}':>9} {cells}{last}")
    return "\n".join(lines)


def listen_overflows() -> int | None:
    """Linux's count of connections dropped because a listen backlog was full (whole machine)."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return None
    for names, values in itertools.pairwise(lines):
        if names.startswith("TcpExt:") and values.startswith("TcpExt:"):
            table_ = dict(zip(names.split()[1:], values.split()[1:], strict=True))
            return int(table_.get("ListenOverflows", 0))
    return None


# --- the run --------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, warnings: WarningCounter) -> int:
    fake = FakeSlackApi()
    await fake.start()
    settings = Settings(
        snapshot="sample",
        snapshot_latency=args.latency,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=fake.url,
    )
    where = "a child process" if args.bot_process else "this process (one event loop with client and fakes)"
    print(
        f"settings: snapshot=sample, snapshot_latency={args.latency * 1000:.0f} ms per Graph HTTP request, "
        f"redis_url=None (embedded fakeredis), slack_bot_token={BOT_TOKEN}, slack_api_url=<fake Slack>"
    )
    print(f"bot served from {where}, listen backlog {args.backlog}")
    load = f"{args.events} events at a steady {args.rate:g}/s" if args.rate else f"{args.events} events at once"
    print(f"burst: {load}; baseline: {args.repeats} single events one at a time")
    print()
    bot = await Bot.start(settings, args.backlog, args.bot_process)
    try:
        connector = aiohttp.TCPConnector(limit=0, force_close=True)  # no client-side queue; new connections
        async with aiohttp.ClientSession(connector=connector) as session:
            text, expected = (SEED_APP_ID, SEED_APP_NAME) if args.bare_app_id else (SEED.text, SEED_HEADLINE)
            warm = prepare("W", text)
            first = await send(session, bot.url, warm)
            await wait_for_cards(fake, [warm.channel], args.card_wait)
            warm_card = fake.updated.get(warm.channel)
            card_ms = f"{(warm_card.at - first.started) * 1000:.0f} ms" if warm_card else "none"
            print(f"warm-up (not in the figures): ack {(first.acked - first.started) * 1000:.0f} ms, card {card_ms}")
            print()

            singles: list[Sent] = []
            single_cpu = await bot.cpu_seconds()
            for _ in range(args.repeats):
                one = prepare("S", text)
                singles.append(await send(session, bot.url, one))
                await wait_for_cards(fake, [one.channel], args.card_wait)
            single_cpu = await bot.cpu_seconds() - single_cpu
            baseline = measure(fake, singles, expected)

            burst = [prepare("B", text) for _ in range(args.events)]  # signed before the clock starts
            overflows_before = listen_overflows()
            graph_before = await bot.graph_counts()  # outside the timed CPU: it walks the live objects
            slack_before = fake.connections()
            cpu_before, own_cpu_before = await bot.cpu_seconds(), time.process_time()
            began = time.perf_counter()
            if args.rate:
                sent = await steady(session, bot.url, burst, args.rate)
            else:
                sent = list(await asyncio.gather(*(send(session, bot.url, event) for event in burst)))
            all_acked = time.perf_counter()
            await wait_for_cards(fake, [event.channel for event in burst], args.card_wait)
            overflows_after = listen_overflows()
            cards_done = time.perf_counter()
            cpu = await bot.cpu_seconds() - cpu_before
            own_cpu = time.process_time() - own_cpu_before
            graph_after = await bot.graph_counts()
            slack_after = fake.connections()
            concurrent = measure(fake, sent, expected)
    finally:
        await bot.stop()
        await fake.stop()
    warnings.counts.update(bot.child_warnings)
    cpu_owner = "bot's process, fake Graph included" if args.bot_process else "bot, fake Graph, fake Slack and client"

    print(table(f"single events, one at a time ({args.repeats})", baseline, args.repeats))
    if baseline.card:
        ack_median, card_median = statistics.median(baseline.ack), statistics.median(baseline.card)
        print(f"median of {args.repeats}: ack {ack_median * 1000:.1f} ms, card {card_median * 1000:.1f} ms")
    print(f"CPU per event ({cpu_owner}): {single_cpu / args.repeats * 1000:.1f} ms")
    print()
    how = f"at a steady {args.rate:g} per second" if args.rate else "at once (asyncio.gather)"
    print(table(f"{args.events} events sent {how}", concurrent, args.events))
    print()
    failed = Counter(str(s.status) if s.error is None else s.error for s in sent if s.status != 200)
    late = sum(1 for value in concurrent.ack if value > SLACK_ACK_LIMIT)
    spread = max(s.started for s in sent) - min(s.started for s in sent)
    cards = [fake.updated[s.channel].at for s in sent if s.channel in fake.updated]
    print(f"non-200 acks: {sum(failed.values())} {dict(failed) if failed else ''}".rstrip())
    print(f"acks later than Slack's 3 s: {late} of {len(concurrent.ack)}")
    print(f"requests left the client within {spread * 1000:.1f} ms of each other")
    print(f"all {args.events} acked after {(all_acked - began) * 1000:.0f} ms", end="")
    print(f"; last card after {(max(cards) - began) * 1000:.0f} ms" if cards else "; no cards")
    wall = cards_done - began
    print(f"CPU per event ({cpu_owner}): {cpu / args.events * 1000:.1f} ms; ", end="")
    print(f"in the burst {cpu:.2f} s in {wall:.2f} s wall, until the last card", end="")
    print(f"; fake Slack and client {own_cpu:.2f} s" if bot.conn is not None else "")
    if overflows_before is not None and overflows_after is not None:
        print(
            f"listen-queue overflows during the burst (Linux, whole machine): "
            f"{overflows_after - overflows_before} (each waits for the 1 s SYN retransmit)"
        )
    calls = args.events + args.repeats + 1
    print(
        f"fake Slack saw: auth.test {fake.count('auth.test')}, chat.postMessage {fake.count('chat.postMessage')}, "
        f"chat.update {fake.count('chat.update')} (expected 1, {calls}, {calls}); "
        f"on {fake.connections()} connections, {slack_after - slack_before} of them opened during the burst"
    )
    print(
        f"fake Graph saw during the burst: {graph_after[0] - graph_before[0]} requests on "
        f"{graph_after[1] - graph_before[1]} new connections (whole run: {graph_after[0]} on {graph_after[1]})"
    )

    problems = baseline.problems + concurrent.problems
    if problems:
        print(f"FAIL: {len(problems)} answers missing or wrong, e.g. {problems[:3]}")
        return 1
    print(f"✓ every event got one placeholder, then one card saying {expected!r}")
    return 0


def main() -> int:
    args = arguments()
    warnings = WarningCounter()
    logging.getLogger().addHandler(warnings)
    print(
        f"Slack latency on loopback; Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{os.cpu_count()} CPUs, {platform.machine()}; aiohttp {aiohttp.__version__}, "
        f"slack_bolt {slack_bolt_version}, slack_sdk {slack_sdk_version}"
    )
    if hasattr(os, "getloadavg"):
        print("load average before the run: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    began = time.perf_counter()

    async def bounded() -> int:
        async with asyncio.timeout(args.timeout):
            return await run(args, warnings)

    try:
        status = asyncio.run(bounded())
    except TimeoutError:
        print(f"FAIL: the run did not finish within {args.timeout:g} s")
        status = 2
    if warnings.counts:
        print("warnings and errors logged (bot and libraries):")
        for line, n in warnings.counts.most_common(10):
            print(f"  {n:>4} x {line}")
    print(f"(benchmark took {time.perf_counter() - began:.1f} s)")
    return status


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=positive, default=200, help="events sent at once (default 200)")
    parser.add_argument("--repeats", type=positive, default=10, help="single events for the baseline (default 10)")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="send the --events at this steady rate per second instead of at once"
    )
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per fake Graph request (default 0.1)")
    parser.add_argument(
        "--backlog",
        type=int,
        default=LISTEN_BACKLOG,
        help=f"the bot's listen backlog (default {LISTEN_BACKLOG}, as secretbot serve; aiohttp's own default is 128)",
    )
    parser.add_argument(
        "--bare-app-id", action="store_true", help="send only the seed error's app id (no code: no log queries)"
    )
    parser.add_argument("--bot-process", action="store_true", help="serve the bot from a child process")
    parser.add_argument("--card-wait", type=float, default=60.0, help="seconds to wait for missing cards (60)")
    parser.add_argument("--timeout", type=float, default=120.0, help="bound on the whole run in seconds (120)")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(main())
