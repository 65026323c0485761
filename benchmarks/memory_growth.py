"""Memory growth of a running bot per 1,000 answers, after warm-up.

The app is the one `secretbot serve` runs (`create_app`, the embedded state store, metrics, INFO logs),
with the sample snapshot served by the in-process fake Graph and the demo console as the way in: each
answer is one HTTP request through the web edge, the dispatcher, Graph (one `$batch` per paste) and
the store.
The pastes cycle through the sample errors. A figure-printing script, not a test: it asserts nothing.

    .venv/bin/python benchmarks/memory_growth.py [--warmup 2000] [--answers 5000] [--concurrency 8] [--top 15]
        [--redis-url redis://127.0.0.1:6379/0]

The embedded store keeps each answer's question for the *Check again* button for 7 days (its TTL), so
it grows with the answers by design; `--redis-url` moves that state out of the process to show the
bot's own growth.

`--top N` also takes tracemalloc snapshots after warm-up and at the end and prints the N source lines
whose allocations grew most (tracemalloc slows the run down about threefold).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import logging
import os
import tracemalloc
from datetime import datetime

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from bot.app import create_app
from bot.fakegraph.samples import sample_errors, sample_reference_time
from bot.logs import configure_logging
from bot.platforms.console import ConsoleOptions, Sample
from bot.settings import Settings

MIB = 1024 * 1024


def rss_bytes() -> int:
    """Resident set size now (not the peak), from the kernel's own accounting."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def answer_many(
    session: ClientSession, url: str, pastes: itertools.cycle[str], count: int, concurrency: int
) -> None:
    async def one() -> None:
        async with session.post(url, json={"text": next(pastes)}) as response:
            if response.status != 200:
                raise RuntimeError(f"the console answered {response.status}")
            await response.read()

    for start in range(0, count, concurrency):
        await asyncio.gather(*(one() for _ in range(min(concurrency, count - start))))


async def run(warmup: int, answers: int, concurrency: int, top: int, redis_url: str | None) -> None:
    samples = sample_errors()
    options = ConsoleOptions(
        samples=tuple(Sample(s.cause, s.title, s.text) for s in samples), tenant="sample", clock="fixed"
    )
    now = sample_reference_time()

    def clock() -> datetime:
        return now

    app = create_app(Settings(snapshot="sample", redis_url=redis_url), console=options, clock=clock)
    pastes = itertools.cycle([s.text for s in samples])
    # A plain client session: aiohttp's TestClient keeps every response until it closes, which is
    # the harness growing, not the bot.
    async with TestServer(app) as server, ClientSession() as session:
        url = str(server.make_url("/console/api/messages"))
        await answer_many(session, url, pastes, warmup, concurrency)
        gc.collect()
        before = rss_bytes()
        if top:
            tracemalloc.start(1)
            first = tracemalloc.take_snapshot()
        await answer_many(session, url, pastes, answers, concurrency)
        gc.collect()
        after = rss_bytes()
        if top:
            last = tracemalloc.take_snapshot()
            tracemalloc.stop()
    store = "Redis at --redis-url" if redis_url else "the embedded store (in this process)"
    print(f"answers: {warmup} warm-up, then {answers} measured ({concurrency} at a time); state in {store}")
    print(f"RSS after warm-up: {before / MIB:.1f} MiB; after {answers} more: {after / MIB:.1f} MiB")
    print(f"growth: {(after - before) / MIB / answers * 1000:.2f} MiB per 1,000 answers")
    if top:
        print(f"\nallocations that grew most over the {answers} answers (tracemalloc, by line):")
        for stat in last.compare_to(first, "lineno")[:top]:
            print(f"  {stat.size_diff / 1024:9.1f} KiB {stat.count_diff:+8d} blocks  {stat.traceback}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, default=2000, help="answers before the first measurement")
    parser.add_argument("--answers", type=int, default=5000, help="answers between the two measurements")
    parser.add_argument("--concurrency", type=int, default=8, help="answers in flight at once")
    parser.add_argument("--redis-url", help="keep the state in this Redis instead of the embedded store")
    parser.add_argument("--top", type=int, default=0, help="print the N lines whose allocations grew most")
    args = parser.parse_args()
    configure_logging("INFO")  # as `secretbot serve` does; the lines go nowhere
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115
    asyncio.run(run(args.warmup, args.answers, args.concurrency, args.top, args.redis_url))


if __name__ == "__main__":
    main()
