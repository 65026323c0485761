"""Throughput of `handlers.parse.parse()` on 1 MB inputs: a realistic paste, a plain log, and adversarial
texts built to hit each pattern's literal anchor as often as possible; plus pastes per second at 2 KB.

A figure-printing script, not a test: it marks rows against the 50 ms per MB goal and asserts nothing.

    .venv/bin/python benchmarks/parser_throughput.py [--runs 5] [--only NAME] [--steps]
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import handlers.parse as package
from bot.fakegraph.samples import sample_errors
from handlers.parse import extract, parse

MB = 1_000_000  # characters; every input below is ASCII but the realistic one, which is measured in UTF-8 bytes
GOAL_MS_PER_MB = 50.0
CORPUS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "corpus"
SEED = 20261120  # fixed, so every run parses the same text


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    calls: int = 1  # parse() calls per timed run (many for small inputs, to rise above timer noise)

    @property
    def megabytes(self) -> float:
        return len(self.text.encode("utf-8")) / MB


# --- inputs ----------------------------------------------------------------------------------------


def paste_texts() -> tuple[list[str], str]:
    """Error texts people paste: the test corpus and the sample errors."""
    samples = [s.text for s in sample_errors()]
    files = sorted(CORPUS.glob("*.jsonl"))
    corpus = [json.loads(line)["text"] for f in files for line in f.read_text("utf-8").splitlines() if line.strip()]
    source = f"{len(corpus)} corpus texts + {len(samples)} sample errors" if corpus else "sample errors only"
    return corpus + samples, source


def fill(pieces: list[str], size: int, separator: str = "\n\n") -> str:
    """Repeat `pieces` in order until `size` characters, cut at exactly `size`."""
    block = separator.join(pieces) + separator
    return (block * (size // len(block) + 1))[:size]


def repeat(unit: str, size: int = MB) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def plain_log(size: int = MB) -> str:
    """Service log lines with timestamps, levels, numbers and paths, and no error or id in them."""
    rng = random.Random(SEED)
    levels, verbs = ("INFO", "DEBUG", "WARN"), ("processed", "queued", "flushed", "loaded", "served")
    lines, length = [], 0
    while length < size:
        stamp = f"2026-11-20 {rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}"
        line = (
            f"{stamp}.{rng.randrange(1000):03d} {rng.choice(levels):<5} worker-{rng.randrange(16)}"
            f" {rng.choice(verbs)} batch {rng.randrange(10**6)} in {rng.randrange(1, 900)} ms"
            f" (queue={rng.randrange(50)}, path=/var/lib/export/part-{rng.randrange(999)})"
        )
        lines.append(line)
        length += len(line) + 1
    return "\n".join(lines)[:size]


def tag_soup(size: int = MB) -> str:
    """Unbalanced HTML as a broken rich-text paste: tags, attributes, entities, stray brackets."""
    rng = random.Random(SEED)
    parts = ["<div>", "<span class='x'>", "</span>", "<p ", "<br/>", "&nbsp;", "<at id='1'>", "</at>", "<", ">",
             "<a href='https://login.microsoftonline.com/x'>", "</div>", "text ", "&#39;", "<li>", "</p>"]  # fmt: skip
    return "".join(rng.choice(parts) for _ in range(size // 5))[:size]


def one_token(size: int = MB) -> str:
    """A single whitespace-free token: base64-ish characters with the symbols secrets use."""
    rng = random.Random(SEED)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789~._-"
    return "".join(rng.choices(alphabet, k=size))


def typical_paste(texts: list[str], size: int = 2048) -> str:
    """About 2 KB of real pasted errors: what one chat message usually holds."""
    return fill(texts, size)


def cases() -> tuple[list[Case], str]:
    texts, source = paste_texts()
    adversarial = {
        "GUID-like, near misses, spaced": repeat("0123abcd-4567-89ef-0123-456789abcde "),
        "hex-and-dash run, no spaces": repeat("deadbeef-"),
        "AADSTS with digits": repeat("AADSTS7000215 "),
        "AADSTS without digits": repeat("AADSTS"),
        "Q~ runs": repeat("Q~"),
        "secret-like xxx9Q~ prefixes": repeat("abc8Q~"),
        "many '<'": repeat("<"),
        "backslash run": repeat("\\"),
        "escaped backslash-n runs": repeat("\\\\n\\u00"),
        "client_secret= repeated": repeat("client_secret="),
        "app ' repeated": repeat("app '"),
        "Timestamp: repeated": repeat("Timestamp: "),
        "Trace ID: repeated": repeat("Trace ID: "),
        "HTML tag soup": tag_soup(),
        "one 1 MB token, no whitespace": one_token(),
        "newline + hex runs": repeat("\n0123456789abcdef-"),
        "percent-encoded form runs": repeat("a=%41+"),
        "Basic + base64 runs": repeat("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ== "),
        "long lines, ~ and Q~ at the breaks": repeat("Zk38Q~pQ0vL2nA.r7Tc-Wm1xYb_3sGd9eHf4iJ~uv\n"),
        "invisible characters": repeat("ab\u200bcd\u2060"),
        "a copy of a keyed value, repeated": repeat("client_secret=Pq4z9_aLm2Nc8vBx7Rt6Ys Pq4z9_aLm2Nc8vBx7Rt6Ys "),
    }
    result = [Case("realistic paste", fill(texts, MB)), Case("plain log, no errors", plain_log())]
    result += [Case(name, text) for name, text in adversarial.items()]
    result.append(Case("typical 2 KB paste", typical_paste(texts), calls=200))
    return result, source


# --- measuring -------------------------------------------------------------------------------------


def time_case(case: Case, runs: int) -> float:
    """Median seconds per parse() call over `runs` timed runs."""
    parse(case.text)  # warm-up: compiled-pattern caches, first-call allocations
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(case.calls):
            parse(case.text)
        timings.append((time.perf_counter() - start) / case.calls)
    return statistics.median(timings)


def step_times(text: str) -> dict[str, float]:
    """Seconds spent in each step of one parse() call: the functions it reaches in its own namespace and
    in `extract`, wrapped with timers for that call (outermost calls only, so nothing counts twice).

    Wrapping instead of re-running the steps here keeps this in step with parse() as it changes, and
    unlike a profiler it adds no overhead to Python-level loops that would skew the shares.
    """
    targets = [(package, name) for name, value in vars(package).items() if _is_step(value)]
    targets += [(extract, name) for name, value in vars(extract).items() if _is_step(value) and name[0] != "_"]
    spent: dict[str, float] = {}
    depth = [0]

    def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            depth[0] += 1
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                depth[0] -= 1
                if depth[0] == 0:
                    spent[name] = spent.get(name, 0.0) + time.perf_counter() - start

        return wrapper

    originals = [(module, name, getattr(module, name)) for module, name in targets]
    try:
        for module, name, function in originals:
            setattr(module, name, timed(f"{function.__module__.rsplit('.', 1)[-1]}.{name}", function))
        parse(text)
    finally:
        for module, name, function in originals:
            setattr(module, name, function)
    return spent


def _is_step(value: object) -> bool:
    return inspect.isfunction(value) and value.__module__.startswith("handlers.parse.")


def slowest_steps(text: str, top: int = 2) -> str:
    spent = step_times(text)
    total = sum(spent.values()) or 1.0
    ranked = sorted(spent.items(), key=lambda item: -item[1])[:top]
    return ", ".join(f"{name} {seconds / total:.0%}" for name, seconds in ranked)


def row(case: Case, seconds: float, steps: bool) -> str:
    ms = seconds * 1000
    ms_per_mb = ms / case.megabytes
    mark = "✓ meets" if ms_per_mb <= GOAL_MS_PER_MB else "✗ misses"
    notes = [f"{1 / seconds:,.0f} pastes/s"] if case.calls > 1 else []
    if steps:
        notes.append(slowest_steps(case.text))
    cells = f"{case.name:<31} {case.megabytes:>6.3f} {ms:>8.2f} {ms_per_mb:>7.1f} {case.megabytes / seconds:>6.1f}"
    return f"{cells}  {mark:<9} {'; '.join(notes)}".rstrip()


def main(runs: int, only: Callable[[str], bool] = lambda _: True, steps: bool = False) -> None:
    selected, source = cases()
    print(f"parse() throughput; Python {platform.python_version()} ({platform.python_implementation()}),")
    print(f"{os.cpu_count()} CPUs, {platform.machine()}; median of {runs} runs after one warm-up call")
    print(f"realistic paste built from: {source}; goal: {GOAL_MS_PER_MB:.0f} ms per MB")
    print()
    head = f"{'input':<31} {'MB':>6} {'ms':>8} {'ms/MB':>7} {'MB/s':>6}  {'goal':<9} notes"
    print(head)
    print("-" * len(head))
    for case in selected:
        if only(case.name):
            print(row(case, time_case(case, runs), steps), flush=True)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per input (default 5)")
    parser.add_argument("--only", default="", help="run only inputs whose name contains this text")
    parser.add_argument("--steps", action="store_true", help="also name the two slowest parse() steps")
    return parser.parse_args()


if __name__ == "__main__":
    args = arguments()
    main(args.runs, lambda name: args.only.lower() in name.lower(), args.steps)
