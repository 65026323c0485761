"""CPU per diagnosis on the bot's side only: parse, rules, the Graph transport and the JSON mapping.

The fake Graph (sample tenant, no injected latency) is served from a child process, so its own
work is not counted; this process runs `diagnose()` one paste after another through `GraphDirectory`
and reports its CPU time per paste, for the seed paste (a code, a timestamp and a correlation id:
the lookup and the logs) and for the bare app id (the lookup only), with the round trips each took.
A figure-printing script, not a test.

    .venv/bin/python benchmarks/diagnosis_cpu.py [--pastes 300]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import platform
import statistics
import sys
import time
from multiprocessing.connection import Connection

from bot.domain import GraphMode
from bot.fakegraph import FakeGraph, LocalTokenCredential, load_snapshot, sample_snapshot_path
from bot.fakegraph.samples import sample_errors, sample_reference_time
from bot.graph import GraphDirectory, GraphHttp
from bot.ports import Directory
from handlers.diagnose import diagnose

SEED = next(s for s in sample_errors() if s.cause == "expired_secret_in_use")
SEED_APP_ID = "dc36fc90-2248-4d70-aca4-a1a9f5b19f71"


def serve_fake_graph(conn: Connection) -> None:
    async def serve() -> None:
        async with FakeGraph(load_snapshot(sample_snapshot_path())) as graph:
            conn.send(graph.base_url)
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # until the parent says stop

    asyncio.run(serve())


async def per_paste(directory: Directory, text: str, pastes: int) -> tuple[float, list[int]]:
    """Median over 5 rounds of this process's CPU seconds per diagnosis, and the round trips of each."""
    trips, rounds = [], []
    for _ in range(5):
        started = time.process_time()
        for _ in range(pastes // 5):
            result = await diagnose(text, directory=directory, now=sample_reference_time())
            trips.append(result.graph.round_trips)
        rounds.append((time.process_time() - started) / (pastes // 5))
    return statistics.median(rounds), trips


async def run(base_url: str, pastes: int) -> None:
    async with GraphHttp(base_url, LocalTokenCredential()) as http:
        directory = GraphDirectory(http, GraphMode.SNAPSHOT)
        first = await diagnose(SEED.text, directory=directory, now=sample_reference_time())
        for _ in range(20):  # warm-up: lazy imports, connections
            await diagnose(SEED.text, directory=directory, now=sample_reference_time())
            await diagnose(SEED_APP_ID, directory=directory, now=sample_reference_time())
        print(f"first paste about the app: {first.graph.round_trips} round trips")
        for name, text in (("paste (code, timestamp, correlation id)", SEED.text), ("bare app id", SEED_APP_ID)):
            cpu, trips = await per_paste(directory, text, pastes)
            print(f"{name:<42} CPU {cpu * 1000:5.2f} ms per diagnosis; round trips {sorted(set(trips))}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--pastes", type=int, default=300, help="diagnoses per kind (default 300)")
    args = parser.parse_args()
    print(f"Python {platform.python_version()}; fake Graph in a child process; {args.pastes} diagnoses per kind")
    spawn = multiprocessing.get_context("spawn")
    ours, theirs = spawn.Pipe()
    child = spawn.Process(target=serve_fake_graph, args=(theirs,), daemon=True)
    child.start()
    try:
        asyncio.run(run(ours.recv(), args.pastes))
    finally:
        ours.send("stop")
        child.join(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
