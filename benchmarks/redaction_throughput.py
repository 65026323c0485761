"""Time to cut secrets out of pastes full of them: `redact()` and the whole `parse()` on 1 and 2 MB of
adversarial secret shapes (every value distinct, so no cut can be shared), and how many values the
transcript echo (`transcript_text`) still shows (a figure that must stay 0).

Then what one large paste does to everyone else: a 1 MB paste of distinct `client_secret=` values
is sent to the demo console while `/healthz` is asked every 10 ms from the same event loop; the
longest wait for one `/healthz` round (answer and pause, less the pause) is how long the loop stalled.

A figure-printing script, not a test: it marks rows against the one-second goal for 2 MB and
asserts nothing.

    .venv/bin/python benchmarks/redaction_throughput.py [--runs 3] [--only NAME] [--sizes 1,2] [--no-loop]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import platform
import random
import statistics
import string
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.platforms.console import MAX_PASTE_CHARS, ConsoleOptions
from bot.settings import Settings
from handlers.parse import parse, transcript_text
from handlers.parse.secrets import redact

MB = 1_000_000  # characters; every input is ASCII but the zero-width one
GOAL_SECONDS_AT_2MB = 1.0
SEED = 20261206  # fixed, so every run redacts the same text
_ALPHABET = string.ascii_letters + string.digits
_SECRET_CHARS = _ALPHABET + "~._-"


@dataclass(frozen=True)
class Shape:
    name: str
    unit: Callable[[random.Random], tuple[str, str]]  # one line of text, and the secret in it as pasted


def _token(rng: random.Random, length: int, alphabet: str = _SECRET_CHARS) -> str:
    # A digit, an upper and a lower letter each, so every keyed value has three kinds of characters.
    return rng.choice(string.digits) + rng.choice(string.ascii_uppercase) + "".join(rng.choices(alphabet, k=length - 2))


def _client_secret(rng: random.Random) -> tuple[str, str]:
    value = _token(rng, 24)
    return f"client_secret={value}&", value


def _modern(rng: random.Random) -> tuple[str, str]:
    value = "".join(rng.choices(_ALPHABET, k=3)) + "8Q~" + "".join(rng.choices(_SECRET_CHARS, k=34))
    return f"secret {value} ", value


def _password_flag(rng: random.Random) -> tuple[str, str]:
    value = _token(rng, 20)
    return f"az login -p {value} ", value


def _lowercase_40(rng: random.Random) -> tuple[str, str]:
    value = "".join(rng.choices(string.ascii_lowercase + string.digits, k=40))
    return f"client_secret={value}\n", value


def _basic_auth(rng: random.Random) -> tuple[str, str]:
    pair = f"{_guid(rng)}:{_token(rng, 30)}"
    value = base64.b64encode(pair.encode()).decode()
    return f"Authorization: Basic {value}\n", value


def _legacy(rng: random.Random) -> tuple[str, str]:
    value = _token(rng, 31, _ALPHABET) + rng.choice("=:@*+?/")
    return f"my secret {value} ", value


def _zero_width(rng: random.Random) -> tuple[str, str]:
    value = "".join(rng.choices(_ALPHABET, k=3)) + "8Q~" + "".join(rng.choices(_SECRET_CHARS, k=34))
    pasted = f"{value[:20]}\u200b{value[20:]}"
    return f"secret {pasted} ", pasted


def _guid(rng: random.Random) -> str:
    hexes = "".join(rng.choices("0123456789abcdef", k=32))
    return f"{hexes[:8]}-{hexes[8:12]}-{hexes[12:16]}-{hexes[16:20]}-{hexes[20:]}"


SHAPES = (
    Shape("distinct client_secret= values", _client_secret),
    Shape("distinct modern xxx8Q~ values", _modern),
    Shape("distinct -p values", _password_flag),
    Shape("distinct 40-char lowercase keyed", _lowercase_40),
    Shape("distinct Basic auth headers", _basic_auth),
    Shape("distinct legacy 32-char values", _legacy),
    Shape("distinct zero-width-split values", _zero_width),
)


def build(shape: Shape, size: int) -> tuple[str, list[str]]:
    """`size` characters of `shape`'s lines (the last one cut), and the secrets of the whole lines."""
    rng = random.Random(SEED)
    lines, values, length = [], [], 0
    while True:
        line, value = shape.unit(rng)
        if length + len(line) > size:
            break
        lines.append(line)
        values.append(value)
        length += len(line)
    return "".join(lines), values


def median_seconds(function: Callable[[str], object], text: str, runs: int) -> tuple[float, float]:
    """Median wall and CPU seconds of one call. CPU time is the fairer figure on a busy machine."""
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        function(text)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def uncut(text: str, values: list[str]) -> int:
    """How many of the values the transcript echo of the paste still shows."""
    shown = transcript_text(text)
    return sum(1 for value in values if value in shown)


def main(runs: int, sizes: list[int], only: Callable[[str], bool]) -> None:
    print(f"redaction throughput; Python {platform.python_version()} ({platform.python_implementation()}),")
    print(f"{os.cpu_count()} CPUs, {platform.machine()}; median of {runs} runs (no warm-up: a slow run is the point);")
    print(f"load average {os.getloadavg()[0]:.1f} at the start; ms = wall time, cpu = CPU time of this process")
    print(f"goal: 2 MB of any shape redacted and parsed in well under {GOAL_SECONDS_AT_2MB:.0f} s")
    print()
    head = f"{'input':<35} {'MB':>4} {'values':>7} {'redact ms':>9} {'cpu':>7} {'parse ms':>9} {'cpu':>7} {'uncut':>6}"
    print(head)
    print("-" * len(head))
    for shape in SHAPES:
        if not only(shape.name):
            continue
        for megabytes in sizes:
            text, values = build(shape, megabytes * MB)
            redact_wall, redact_cpu = median_seconds(redact, text, runs)
            parse_wall, parse_cpu = median_seconds(parse, text, runs)
            mark = "" if megabytes < 2 or parse_cpu < GOAL_SECONDS_AT_2MB else "  ✗ misses"
            print(
                f"{shape.name:<35} {megabytes:>4} {len(values):>7} {redact_wall * 1000:>9.1f} {redact_cpu * 1000:>7.1f}"
                f" {parse_wall * 1000:>9.1f} {parse_cpu * 1000:>7.1f} {uncut(text, values):>6}{mark}",
                flush=True,
            )


async def loop_stall(text: str) -> tuple[float, float, int]:
    """Seconds the paste took, the longest /healthz round meanwhile, and how many were asked."""
    console = ConsoleOptions(samples=(), tenant="sample", clock="now")
    async with TestClient(TestServer(create_app(Settings(snapshot="sample"), console=console))) as client:
        started = time.perf_counter()
        paste = asyncio.ensure_future(client.post("/console/api/messages", json={"text": text}))
        worst, asked, pause = 0.0, 0, 0.01
        while not paste.done():
            asked_at = time.perf_counter()
            await (await client.get("/healthz")).read()
            await asyncio.sleep(pause)  # a blocked loop wakes this up late: that is the stall
            worst, asked = max(worst, time.perf_counter() - asked_at - pause), asked + 1
        response = await paste
        assert response.status == 200, response.status
        return time.perf_counter() - started, worst, asked


def print_loop_stall() -> None:
    text, values = build(SHAPES[0], MAX_PASTE_CHARS)
    seconds, worst, asked = asyncio.run(loop_stall(text))
    print()
    print(f"console paste of {len(text) / MB:.2f} MB, {len(values)} distinct client_secret= values:")
    print(f"answered in {seconds * 1000:.0f} ms; longest of {asked} /healthz rounds meanwhile: {worst * 1000:.1f} ms")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="timed runs per input (default 3)")
    parser.add_argument("--only", default="", help="run only inputs whose name contains this text")
    parser.add_argument("--sizes", default="1,2", help="sizes in MB, comma-separated (default 1,2)")
    parser.add_argument("--no-loop", action="store_true", help="skip the event-loop stall measurement")
    return parser.parse_args()


if __name__ == "__main__":
    args = arguments()
    main(args.runs, [int(s) for s in args.sizes.split(",")], lambda name: args.only.lower() in name.lower())
    if not args.no_loop:
        print_loop_stall()
