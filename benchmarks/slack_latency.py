"""Slack latency on loopback: how fast the bot acks an event, how long a paste waits for its card, and
how many answers a second its workers give.

The real app (`create_app`: Bolt mounted at POST /slack/events, the sample tenant behind the local
fake Graph with injected latency) is served by aiohttp on 127.0.0.1 with `secretbot serve`'s listen
backlog (bot.server.LISTEN_BACKLOG; `--backlog 128` is aiohttp's default, which serve used before).
A small fake Slack Web API in this script answers auth.test, chat.postMessage and chat.update and
notes when each call arrived and on which connection. Signed `event_callback` message events (DMs,
each with its own event_id and channel, text = the seed error) are sent by an aiohttp client, one new
connection per request (as Slack's deliveries arrive):

- ack: request sent -> its HTTP response (Slack retries an event that is not acked within 3 s);
- placeholder: request sent -> the fake Slack receives the "Checking…" chat.postMessage;
- card: request sent -> the fake Slack receives the chat.update that replaces that placeholder.

One untimed warm-up event first (Bolt's auth.test, lazy imports), then a baseline of single events
sent one at a time (each waits for its card), then a burst of concurrent events sent at once with
asyncio.gather (with `--rate R`, the same events sent at a steady R per second instead, each on the
clock: event i leaves i / R seconds after the first; `--duration S` sends R x S of them).

Where the bot runs:
- default: the bot (web tier with its in-process worker, as `secretbot serve`), the fake Graph, the
  fake Slack and the client share one process and event loop, on the embedded fakeredis;
- `--bot-process`: the bot (and its fake Graph) is served from a child process instead;
- `--redis`: the bot uses a redis-server this script starts on a free loopback port (no persistence)
  and stops at the end, instead of the embedded fakeredis;
- `--workers N`: the web tier alone (`Role.WEB`, as `secretbot serve --no-worker`) in one child process
  and N worker processes (`Role.WORKER`, as `secretbot worker`), each with its own fake Graph, all on
  that redis-server (`--redis` implied). `--concurrency C` sets each worker's jobs at once.
- `--drain D` (with `--workers`): answers per second. D events are queued through the web tier while
  no worker runs; then the N workers start together and the clock runs until the last card.

`--bare-app-id` sends only the seed error's app id (no code, so no log queries), for the paste vs bare
app id comparison. The script also runs against older trees (`PYTHONPATH=<worktree>`) whose
`create_app` has no roles: there only the default and `--bot-process` (with or without `--redis`) work.

A figure-printing script, not a test: it asserts nothing about time. It exits 1 when an answer is
missing or wrong, or an event got more than one placeholder or more than one chat.update of it (then
the figures mean nothing), 2 when the whole run overran --timeout.

    .venv/bin/python benchmarks/slack_latency.py [--events 200] [--repeats 10] [--latency 0.1]
        [--rate 200 [--duration 20]] [--bare-app-id] [--backlog 1024] [--bot-process] [--redis]
        [--workers N [--drain 2000]] [--concurrency C] [--settle 2] [--timeout 120]
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
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import redis.asyncio as aioredis
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
QUEUED_LIST = "saq:secretbot:queued"  # SAQ's list of waiting job ids for the bot's queue (bot.state.keys.QUEUE_NAME)
DRAIN_CHUNK = 100  # --drain: events sent to the web tier at once, chunk after chunk


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
    posts: Counter[str] = field(default_factory=Counter)  # channel -> chat.postMessage calls
    updates: Counter[tuple[str, str]] = field(default_factory=Counter)  # (channel, ts) -> chat.update calls
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
            self.posts[channel] += 1
        else:
            self.updated.setdefault(channel, call)
            self.updates[(channel, str(args.get("ts")))] += 1
            self.update_seen.set()
        return web.json_response({"ok": True, "channel": channel, "ts": args.get("ts")})


# --- a redis-server of our own ----------------------------------------------------------------------


@dataclass
class RedisServer:
    """`redis-server` on a free loopback port in a temporary directory, no persistence; ours to stop."""

    url: str
    process: subprocess.Popen[bytes]
    directory: tempfile.TemporaryDirectory[str]

    @classmethod
    async def start(cls) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on PATH (--redis and --workers need it)")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        directory = tempfile.TemporaryDirectory(prefix="slack-latency-redis-")
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--dir", directory.name, "--logfile", str(Path(directory.name, "redis.log"))]
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL)  # noqa: ASYNC220  # starts at once, waits for nothing
        server = cls(f"redis://127.0.0.1:{port}/0", process, directory)
        client = aioredis.Redis.from_url(server.url)
        try:
            for _ in range(200):
                try:
                    if await client.ping():
                        return server
                except (OSError, aioredis.ConnectionError):
                    await asyncio.sleep(0.05)
        finally:
            await client.aclose()
        server.stop()
        raise RuntimeError("redis-server did not answer PING within 10 s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.directory.cleanup()

    def cpu_seconds(self) -> float:
        """user + system CPU of the redis-server process so far (Linux /proc), 0 elsewhere."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def commands(self) -> Counter[str]:
        """Calls per command since the server started (INFO commandstats), e.g. {'evalsha': 200}."""
        client = aioredis.Redis.from_url(self.url)
        try:
            stats = await client.info("commandstats")
        finally:
            await client.aclose()
        return Counter({name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()})

    async def queued(self) -> int:
        client = aioredis.Redis.from_url(self.url)
        try:
            return int(await client.llen(QUEUED_LIST))
        finally:
            await client.aclose()


# --- the bot under test: in this process, or in child processes ------------------------------------


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


async def serve_bot(
    settings: Settings, backlog: int, role: str | None = None, concurrency: int | None = None
) -> tuple[web.AppRunner, int]:
    """The app started as `secretbot serve` starts it; a worker (`role="worker"`) opens no port (port 0).
    With `role` None create_app gets no role at all: older trees, which have none, run too."""
    options: dict[str, Any] = {}
    if role is not None:
        from bot.app import Role  # only trees with the job queue have it

        options["role"] = Role(role)
    if concurrency is not None:
        options["concurrency"] = concurrency
    runner = web.AppRunner(create_app(settings, **options), access_log=None)
    await runner.setup()
    try:
        from bot.server import freeze_startup_heap  # as `secretbot serve` and `secretbot worker` do
    except ImportError:  # older trees
        pass
    else:
        freeze_startup_heap()
    if role == "worker":
        return runner, 0
    await web.TCPSite(runner, "127.0.0.1", 0, backlog=backlog).start()
    return runner, int(runner.addresses[0][1])


def child_main(
    settings: Settings, backlog: int, conn: Connection, role: str | None, concurrency: int | None, hold: bool
) -> None:
    """A bot process: serve until the parent says stop, then report the warnings logged. With `hold`,
    everything is imported first and the app starts only when the parent says go (`--drain`)."""
    counter = WarningCounter()
    logging.getLogger().addHandler(counter)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        if role == "worker" and getattr(settings, "worker_niceness", 0):
            os.nice(settings.worker_niceness)  # as `secretbot worker` does
        if hold:
            conn.send("ready")
            while (command := await loop.run_in_executor(None, conn.recv)) != "go":
                conn.send(time.process_time() if command == "cpu" else (0, 0))
        runner, port = await serve_bot(settings, backlog, role, concurrency)
        conn.send(port)
        while (command := await loop.run_in_executor(None, conn.recv)) != "stop":
            conn.send(time.process_time() if command == "cpu" else fake_graph_counts())
        await runner.cleanup()

    asyncio.run(serve())
    conn.send(dict(counter.counts))


@dataclass
class Child:
    """One bot process (multiprocessing, spawned: nothing inherited from this event loop)."""

    process: Any  # multiprocessing.Process
    conn: Connection
    port: int = 0
    warnings: dict[str, int] = field(default_factory=dict)

    @classmethod
    async def spawn(
        cls, settings: Settings, backlog: int, role: str | None, concurrency: int | None, hold: bool = False
    ) -> Child:
        spawn = multiprocessing.get_context("spawn")
        ours, theirs = spawn.Pipe()
        process = spawn.Process(
            target=child_main, args=(settings, backlog, theirs, role, concurrency, hold), daemon=True
        )
        process.start()
        child = cls(process, ours)
        if hold:
            await child._receive("import", 60)  # "ready"
        else:
            child.port = int(await child._receive("start", 60))
        return child

    async def go(self) -> None:
        """Start a held child's app (and its worker)."""
        self.conn.send("go")

    async def started(self) -> None:
        self.port = int(await self._receive("start", 60))

    async def ask(self, command: str) -> Any:
        self.conn.send(command)
        return await asyncio.get_running_loop().run_in_executor(None, self.conn.recv)

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        if self.process.is_alive():
            self.conn.send("stop")
            if await loop.run_in_executor(None, self.conn.poll, 30):
                self.warnings = self.conn.recv()
        await loop.run_in_executor(None, self.process.join, 5)
        if self.process.is_alive():
            self.process.terminate()  # our own child, by its handle

    async def _receive(self, what: str, seconds: float) -> Any:
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, self.conn.poll, seconds):
            await self.stop()
            raise RuntimeError(f"a bot process did not {what} within {seconds:g} s")
        return self.conn.recv()


@dataclass
class Bot:
    """The bot under test: the web tier (here or in a child) and any worker processes."""

    url: str = ""
    runner: web.AppRunner | None = None  # the web tier in this process
    web: Child | None = None  # or in a child
    workers: list[Child] = field(default_factory=list)

    @classmethod
    async def start(
        cls,
        settings: Settings,
        backlog: int,
        *,
        in_child: bool,
        workers: int,
        concurrency: int | None,
        hold_workers: bool = False,
    ) -> Bot:
        bot = cls()
        role = "web" if workers else None  # None: today's serve (web + worker), or an older tree's app
        try:
            if in_child or workers:
                bot.web = await Child.spawn(settings, backlog, role, concurrency)
                port = bot.web.port
            else:
                bot.runner, port = await serve_bot(settings, backlog, role, concurrency)
            bot.url = f"http://127.0.0.1:{port}/slack/events"
            spawned = [Child.spawn(settings, backlog, "worker", concurrency, hold_workers) for _ in range(workers)]
            bot.workers = list(await asyncio.gather(*spawned))
        except BaseException:
            await bot.stop()
            raise
        return bot

    async def release_workers(self) -> None:
        """`--drain`: start every held worker at once; returns when all have started."""
        for child in self.workers:
            await child.go()
        await asyncio.gather(*(child.started() for child in self.workers))

    async def cpu_seconds(self) -> tuple[float, float]:
        """CPU time used so far by the web tier's process (the whole bot unless --workers; in this
        process, everything in it) and by the worker processes together."""
        web_cpu = time.process_time() if self.web is None else float(await self.web.ask("cpu"))
        return web_cpu, sum([float(await child.ask("cpu")) for child in self.workers])

    async def graph_counts(self) -> tuple[int, int]:
        """Requests and connections the bot's fake Graphs have seen so far."""
        counts = [fake_graph_counts() if self.web is None else await self.web.ask("graph")]
        counts += [await child.ask("graph") for child in self.workers]
        return sum(int(r) for r, _ in counts), sum(int(c) for _, c in counts)

    def warnings(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for child in [self.web, *self.workers]:
            if child is not None:
                total.update(child.warnings)
        return total

    async def stop(self) -> None:
        # Workers first: the web tier only queues, and a worker still posting needs nothing from it.
        await asyncio.gather(*(child.stop() for child in self.workers))
        if self.web is not None:
            await self.web.stop()
        if self.runner is not None:
            await self.runner.cleanup()


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


@dataclass
class Sender:
    """`--sender-process`: the timed events leave from a process of their own, as Slack's deliveries
    come from machines other than its Web API's. In this process the client's event loop also answers
    the workers' calls to the fake Slack API, and every ack it reads waits behind those."""

    conn: Connection
    process: Any  # multiprocessing.Process

    @classmethod
    async def spawn(cls, url: str, events: list[Prepared], rate: float) -> Sender:
        spawn = multiprocessing.get_context("spawn")
        ours, theirs = spawn.Pipe()
        process = spawn.Process(target=sender_main, args=(url, events, rate, theirs), daemon=True)
        process.start()
        sender = cls(ours, process)
        if await asyncio.get_running_loop().run_in_executor(None, sender._receive, 60.0) != "ready":
            raise RuntimeError("the sender process did not start")
        return sender

    async def send(self) -> tuple[list[Sent], float]:
        """Sends the events; returns what each got and the sender's CPU seconds while sending."""
        self.conn.send("go")
        sent, cpu = await asyncio.get_running_loop().run_in_executor(None, self._receive, 600.0)
        self.process.join(10)
        return sent, cpu

    def _receive(self, seconds: float) -> Any:
        if not self.conn.poll(seconds):
            raise RuntimeError(f"the sender process did not answer within {seconds:g} s")
        return self.conn.recv()


def sender_main(url: str, events: list[Prepared], rate: float, conn: Connection) -> None:
    async def run() -> None:
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            conn.send("ready")
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # "go"
            cpu = time.process_time()
            if rate:
                sent = await steady(session, url, events, rate)
            else:
                sent = list(await asyncio.gather(*(send(session, url, event) for event in events)))
            conn.send((sent, time.process_time() - cpu))

    asyncio.run(run())


async def wait_for_cards(fake: FakeSlackApi, channels: list[str], seconds: float) -> None:
    """Until every channel has its chat.update, or `seconds` have passed (measure() reports what is missing)."""
    deadline = time.monotonic() + seconds
    pending = set(channels)
    while True:
        fake.update_seen.clear()
        pending = {channel for channel in pending if channel not in fake.updated}
        remaining = deadline - time.monotonic()
        if not pending or remaining <= 0:
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
    """Latencies in seconds per event, and what is missing or wrong in the answers: each event must get
    one placeholder and one chat.update of that placeholder carrying the expected answer."""
    ack = [s.acked - s.started for s in sent if s.status == 200]
    placeholder, card, problems = [], [], []
    for s in sent:
        post, update = fake.posted.get(s.channel), fake.updated.get(s.channel)
        if post is not None:
            placeholder.append(post.at - s.started)
        if fake.posts[s.channel] > 1:
            problems.append(f"{s.channel}: {fake.posts[s.channel]} placeholders")
        if update is None:
            problems.append(f"{s.channel}: no chat.update")
            continue
        card.append(update.at - s.started)
        if post is None or update.args.get("ts") != post.args.get("ts"):
            problems.append(f"{s.channel}: the chat.update does not replace the placeholder")
        elif (n := fake.updates[(s.channel, str(post.args.get("ts")))]) != 1:
            problems.append(f"{s.channel}: its placeholder was updated {n} times")
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


def ms(values: list[float], p: float) -> str:
    return f"{percentile(values, p) * 1000:.1f}" if values else "-"


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


def per_event(before: Counter[str], after: Counter[str], events: int) -> str:
    """Redis commands per event between two INFO commandstats readings, the commonest first."""
    delta = Counter({name: after[name] - before[name] for name in after if after[name] > before[name]})
    total = sum(delta.values()) / events
    parts = ", ".join(f"{name} {n / events:.2f}" for name, n in delta.most_common(16))
    return f"{total:.2f} ({parts})"


# --- the run --------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, warnings: WarningCounter) -> int:
    fake = FakeSlackApi()
    await fake.start()
    server = await RedisServer.start() if args.redis or args.workers else None
    try:
        settings = Settings(
            snapshot="sample",
            snapshot_latency=args.latency,
            slack_bot_token=BOT_TOKEN,
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=fake.url,
            redis_url=server.url if server else None,
        )
        store = f"redis-server {server.url}, started by this script" if server else "None (embedded fakeredis)"
        print(
            f"settings: snapshot=sample, snapshot_latency={args.latency * 1000:.0f} ms per Graph HTTP request, "
            f"redis_url={store}, slack_bot_token={BOT_TOKEN}, slack_api_url=<fake Slack>"
        )
        if args.workers:
            where = f"the web tier alone in a child process, {args.workers} worker process(es)"
        elif args.bot_process:
            where = "a child process (web tier and its in-process worker)"
        else:
            where = "this process (one event loop with client and fakes)"
        concurrency = f", worker concurrency {args.concurrency}" if args.concurrency else ""
        print(f"bot served from {where}, listen backlog {args.backlog}{concurrency}")
        if args.drain:
            return await drain(args, settings, fake, server, warnings)
        return await latency(args, settings, fake, server, warnings)
    finally:
        await fake.stop()
        if server is not None:
            server.stop()


async def latency(
    args: argparse.Namespace,
    settings: Settings,
    fake: FakeSlackApi,
    server: RedisServer | None,
    warnings: WarningCounter,
) -> int:
    """Ack and card latency: single events, then a burst or a steady rate."""
    events = round(args.rate * args.duration) if args.rate and args.duration else args.events
    load = f"{events} events at a steady {args.rate:g}/s" if args.rate else f"{events} events at once"
    print(f"burst: {load}; baseline: {args.repeats} single events one at a time")
    print()
    bot = await Bot.start(
        settings, args.backlog, in_child=args.bot_process, workers=args.workers, concurrency=args.concurrency
    )
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
            single_cpu = diff(await bot.cpu_seconds(), single_cpu)

            burst = [prepare("B", text) for _ in range(events)]  # signed before the clock starts
            overflows_before = listen_overflows()
            graph_before = await bot.graph_counts()  # outside the timed CPU: it walks the live objects
            slack_before = fake.connections()
            commands_before = await server.commands() if server else Counter[str]()
            redis_cpu_before = server.cpu_seconds() if server else 0.0
            sender = await Sender.spawn(bot.url, burst, args.rate) if args.sender_process else None
            sender_cpu = 0.0
            cpu_before, own_cpu_before = await bot.cpu_seconds(), time.process_time()
            began = time.perf_counter()  # CLOCK_MONOTONIC on Linux: the same clock in the sender process
            if sender is not None:
                sent, sender_cpu = await sender.send()
            elif args.rate:
                sent = await steady(session, bot.url, burst, args.rate)
            else:
                sent = list(await asyncio.gather(*(send(session, bot.url, event) for event in burst)))
            all_acked = time.perf_counter()
            await wait_for_cards(fake, [event.channel for event in burst], args.card_wait)
            overflows_after = listen_overflows()
            cards_done = time.perf_counter()
            cpu = diff(await bot.cpu_seconds(), cpu_before)
            own_cpu = time.process_time() - own_cpu_before
            redis_cpu = (server.cpu_seconds() - redis_cpu_before) if server else 0.0
            commands_after = await server.commands() if server else Counter[str]()
            graph_after = await bot.graph_counts()
            slack_after = fake.connections()
            await asyncio.sleep(args.settle)  # a late second answer would show up here
            baseline = measure(fake, singles, expected)
            concurrent = measure(fake, sent, expected)
    finally:
        await bot.stop()
    warnings.counts.update(bot.warnings())

    print(table(f"single events, one at a time ({args.repeats})", baseline, args.repeats))
    if baseline.card:
        ack_median, card_median = statistics.median(baseline.ack), statistics.median(baseline.card)
        print(f"median of {args.repeats}: ack {ack_median * 1000:.1f} ms, card {card_median * 1000:.1f} ms")
    print(f"CPU per event ({cpu_owner(args, bot)}): {cpu_text(single_cpu, args.repeats, args.workers)}")
    print()
    how = f"at a steady {args.rate:g} per second" if args.rate else "at once (asyncio.gather)"
    print(table(f"{events} events sent {how}", concurrent, events))
    print()
    failed = Counter(str(s.status) if s.error is None else s.error for s in sent if s.status != 200)
    late = sum(1 for value in concurrent.ack if value > SLACK_ACK_LIMIT)
    spread = max(s.started for s in sent) - min(s.started for s in sent)
    cards = [fake.updated[s.channel].at for s in sent if s.channel in fake.updated]
    print(f"non-200 acks: {sum(failed.values())} {dict(failed) if failed else ''}".rstrip())
    print(f"acks later than Slack's 3 s: {late} of {len(concurrent.ack)}")
    print(f"requests left the client within {spread * 1000:.1f} ms of each other")
    print(f"all {events} acked after {(all_acked - began) * 1000:.0f} ms", end="")
    print(f"; last card after {(max(cards) - began) * 1000:.0f} ms" if cards else "; no cards")
    wall = cards_done - began
    print(f"CPU per event ({cpu_owner(args, bot)}): {cpu_text(cpu, events, args.workers)}; ", end="")
    print(f"in the burst {sum(cpu):.2f} s in {wall:.2f} s wall, until the last card", end="")
    if bot.web is None:
        print()
    elif sender is not None:
        print(f"; fake Slack {own_cpu:.2f} s, the sender process {sender_cpu:.2f} s")
    else:
        print(f"; fake Slack and client {own_cpu:.2f} s")
    if server is not None:
        commands = per_event(commands_before, commands_after, events)
        print(f"redis-server: {redis_cpu:.2f} s CPU; commands per event: {commands}")
    if overflows_before is not None and overflows_after is not None:
        print(
            f"listen-queue overflows during the burst (Linux, whole machine): "
            f"{overflows_after - overflows_before} (each waits for the 1 s SYN retransmit)"
        )
    calls = events + args.repeats + 1
    print(
        f"fake Slack saw: auth.test {fake.count('auth.test')}, chat.postMessage {fake.count('chat.postMessage')}, "
        f"chat.update {fake.count('chat.update')} (expected 1, {calls}, {calls}); "
        f"on {fake.connections()} connections, {slack_after - slack_before} of them opened during the burst"
    )
    print(
        f"fake Graph saw during the burst: {graph_after[0] - graph_before[0]} requests on "
        f"{graph_after[1] - graph_before[1]} new connections (whole run: {graph_after[0]} on {graph_after[1]})"
    )
    summary = {
        "mode": mode(args),
        "load": "burst" if not args.rate else f"{args.rate:g}/s",
        "events": events,
        "single_ack_median_ms": round(statistics.median(baseline.ack) * 1000, 1) if baseline.ack else None,
        "single_card_median_ms": round(statistics.median(baseline.card) * 1000, 1) if baseline.card else None,
        "ack_p50_ms": ms(concurrent.ack, 50),
        "ack_p99_ms": ms(concurrent.ack, 99),
        "card_p50_ms": ms(concurrent.card, 50),
        "card_p99_ms": ms(concurrent.card, 99),
        "web_cpu_ms_per_event": round(cpu[0] / events * 1000, 2),
        "worker_cpu_ms_per_event": round(cpu[1] / events * 1000, 2),
    }
    print("summary: " + json.dumps(summary))
    return verdict(baseline.problems + concurrent.problems, expected)


async def drain(
    args: argparse.Namespace,
    settings: Settings,
    fake: FakeSlackApi,
    server: RedisServer | None,
    warnings: WarningCounter,
) -> int:
    """Answers per second: `--drain` events queued with no worker running, then the workers start."""
    assert server is not None  # --drain needs --workers, which starts a redis-server
    print(f"drain: {args.drain} events queued through the web tier ({DRAIN_CHUNK} at a time), then the workers start")
    print()
    bot = await Bot.start(
        settings,
        args.backlog,
        in_child=True,
        workers=args.workers,
        concurrency=args.concurrency,
        hold_workers=True,
    )
    try:
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            text, expected = (SEED_APP_ID, SEED_APP_NAME) if args.bare_app_id else (SEED.text, SEED_HEADLINE)
            events = [prepare("Q", text) for _ in range(args.drain)]
            commands_before, cpu_before = await server.commands(), await bot.cpu_seconds()
            began = time.perf_counter()
            sent: list[Sent] = []
            for i in range(0, len(events), DRAIN_CHUNK):
                sent += await asyncio.gather(*(send(session, bot.url, event) for event in events[i : i + DRAIN_CHUNK]))
            queued_in = time.perf_counter() - began
            depth = await server.queued()
            commands_queued, cpu_queued = await server.commands(), await bot.cpu_seconds()
            redis_cpu_before = server.cpu_seconds()
            go = time.perf_counter()
            await bot.release_workers()
            workers_up = time.perf_counter() - go
            await wait_for_cards(fake, [event.channel for event in events], args.card_wait)
            redis_cpu = server.cpu_seconds() - redis_cpu_before
            commands_after, cpu_after = await server.commands(), await bot.cpu_seconds()
            await asyncio.sleep(args.settle)
            answered = measure(fake, sent, expected)
    finally:
        await bot.stop()
    warnings.counts.update(bot.warnings())

    n = args.drain
    queued_acks = Latencies(answered.ack, [], [], [])
    print(table(f"{n} events queued, no worker running ({DRAIN_CHUNK} at a time)", queued_acks, n))
    print(f"queued in {queued_in:.2f} s; queue depth then {depth} (expected {n})")
    print(f"web tier CPU per event: {(cpu_queued[0] - cpu_before[0]) / n * 1000:.2f} ms")
    print(f"Redis commands per event queued: {per_event(commands_before, commands_queued, n)}")
    print()
    cards = sorted(fake.updated[s.channel].at - go for s in sent if s.channel in fake.updated)
    posts = sorted(fake.posted[s.channel].at - go for s in sent if s.channel in fake.posted)
    rate = len(cards) / cards[-1] if cards else 0.0
    # Between the 10th and 90th percentile card: without the workers' start and the last stragglers.
    middle = 0.8 * len(cards) / (percentile(cards, 90) - percentile(cards, 10)) if len(cards) > 10 else 0.0
    concurrency = args.concurrency or "default"
    print(f"{args.workers} worker process(es), concurrency {concurrency} each, up {workers_up * 1000:.0f} ms after go")
    if cards:
        print(f"first placeholder {posts[0] * 1000:.0f} ms after go; last card {cards[-1]:.2f} s after go")
        print(f"answers per second: {rate:.1f} from go to the last card, {middle:.1f} from the 10th to the 90th %")
    worker_cpu = (cpu_after[1] - cpu_queued[1]) / n
    print(f"workers' CPU per answer: {worker_cpu * 1000:.2f} ms; redis-server {redis_cpu:.2f} s in all")
    print(f"Redis commands per answer: {per_event(commands_queued, commands_after, n)}")
    print(
        f"fake Slack saw: chat.postMessage {fake.count('chat.postMessage')}, chat.update {fake.count('chat.update')} "
        f"(expected {n}, {n}) on {fake.connections()} connections"
    )
    summary = {
        "mode": mode(args),
        "load": f"drain {n}",
        "answers_per_s": round(rate, 1),
        "answers_per_s_10_90": round(middle, 1),
        "queued_ack_p50_ms": ms(answered.ack, 50),
        "queued_ack_p99_ms": ms(answered.ack, 99),
        "worker_cpu_ms_per_answer": round(worker_cpu * 1000, 2),
    }
    print("summary: " + json.dumps(summary))
    return verdict(answered.problems, expected)


def diff(after: tuple[float, float], before: tuple[float, float]) -> tuple[float, float]:
    return after[0] - before[0], after[1] - before[1]


def mode(args: argparse.Namespace) -> str:
    store = "redis" if args.redis or args.workers else "fakeredis"
    sender = ", sender process" if args.sender_process else ""
    if args.workers:
        return f"web + {args.workers} worker process(es), {store}{sender}"
    return f"one {'child ' if args.bot_process else ''}process, {store}{sender}"


def cpu_owner(args: argparse.Namespace, bot: Bot) -> str:
    if args.workers:
        return "web tier process; worker processes, fake Graph included"
    if bot.web is not None:
        return "bot's process, fake Graph included"
    return "bot, fake Graph, fake Slack and client"


def cpu_text(cpu: tuple[float, float], events: int, workers: int) -> str:
    if not workers:
        return f"{cpu[0] / events * 1000:.1f} ms"
    return f"web {cpu[0] / events * 1000:.2f} ms; workers {cpu[1] / events * 1000:.1f} ms"


def verdict(problems: list[str], expected: str) -> int:
    if problems:
        print(f"FAIL: {len(problems)} answers missing, wrong or repeated, e.g. {problems[:3]}")
        return 1
    print(f"✓ every event got one placeholder, then one chat.update of it saying {expected!r}")
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
    parser.add_argument(
        "--duration", type=float, default=0.0, help="with --rate: send rate x duration events (instead of --events)"
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
    parser.add_argument(
        "--sender-process",
        action="store_true",
        help="send the timed events from a process of their own, not the one playing Slack's Web API",
    )
    parser.add_argument("--redis", action="store_true", help="run the bot on a redis-server started by this script")
    parser.add_argument(
        "--workers", type=int, default=0, help="web tier alone plus this many worker processes (implies --redis)"
    )
    parser.add_argument("--concurrency", type=positive, default=None, help="jobs each worker runs at once")
    parser.add_argument(
        "--drain", type=int, default=0, help="with --workers: queue this many events, then time the workers' drain"
    )
    parser.add_argument("--settle", type=float, default=2.0, help="seconds to wait for late repeated answers (2)")
    parser.add_argument("--card-wait", type=float, default=60.0, help="seconds to wait for missing cards (60)")
    parser.add_argument("--timeout", type=float, default=120.0, help="bound on the whole run in seconds (120)")
    args = parser.parse_args()
    if args.drain and not args.workers:
        parser.error("--drain needs --workers")
    return args


if __name__ == "__main__":
    sys.exit(main())
