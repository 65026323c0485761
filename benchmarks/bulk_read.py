"""Whole-tenant reads: 100,000 applications from the fake Graph through `bot.graph.bulk.BulkReader`.

Three kinds of process, so that each figure is one process's own: the fake Graph (a generated
tenant, `bot.fakegraph.synthetic`, with its pages cached after the first read so that it does not set
the pace; its memory is not counted), and one fresh reading process per measured read, whose peak
RSS (`ru_maxrss`) is the figure. Every read asks for the same fields with `$top=999` and counts the
credentials it sees, as a scan would, without keeping the records.

Rows: the production reader (aiohttp, orjson, next page fetched while this one is counted), then the
transports it was chosen from (a plain sequential page walk each: aiohttp or httpx, orjson or json),
then msgraph-sdk's models on a small sample, which is why the reader never builds them.

    .venv/bin/python benchmarks/bulk_read.py [--apps 100000] [--runs 3] [--sample 1000] [--no-compare]

Goal: 100,000 apps in <= 5 s with a peak RSS <= 250 MB. A figure-printing script, not a test: it
exits 1 only when a read does not return every app exactly once (then the figures mean nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

APP_FIELDS = ("id", "appId", "displayName", "passwordCredentials", "keyCredentials")
GOAL_SECONDS, GOAL_MB = 5.0, 250.0
READER = "reader (aiohttp+orjson, prefetch)"
TRANSPORTS = ("aiohttp+orjson", "aiohttp+json", "httpx+orjson", "httpx+json")
SDK = "msgraph-sdk models"


# --- the fake Graph's process -----------------------------------------------------------------------


def serve(apps: int) -> None:
    """Generate the tenant, print the base URL, serve until stdin closes."""
    from bot.fakegraph import FakeGraph
    from bot.fakegraph.synthetic import synthetic_snapshot

    async def run() -> None:
        async with FakeGraph(synthetic_snapshot(apps)) as graph:
            graph.cache_pages()
            print(graph.base_url, flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    asyncio.run(run())


# --- the reading processes ------------------------------------------------------------------------


def count(record: dict[str, Any]) -> int:
    """What a scan does with each record, at the least: look at its credentials."""
    return len(record["passwordCredentials"]) + len(record["keyCredentials"])


async def read_with_reader(base_url: str, _: int) -> dict[str, Any]:
    from bot.fakegraph import LocalTokenCredential
    from bot.graph.bulk import BulkReader

    apps, credentials, ids, pages = 0, 0, set(), 0
    async with BulkReader(base_url, LocalTokenCredential()) as reader:
        async for page in reader.pages("applications", APP_FIELDS):
            pages += 1
            for record in page:
                apps += 1
                credentials += count(record)
                ids.add(record["id"])
    return {"apps": apps, "unique": len(ids), "credentials": credentials, "pages": pages}


async def read_with_transport(base_url: str, transport: str) -> dict[str, Any]:
    """A plain sequential page walk: GET, parse, follow @odata.nextLink. No retries, no prefetch."""
    import orjson

    client_name, parser_name = transport.split("+")
    parse: Callable[[bytes], Any] = orjson.loads if parser_name == "orjson" else json.loads
    headers = {"Authorization": "Bearer fakegraph-local-token", "Accept": "application/json"}
    url: str | None = f"{base_url}/v1.0/applications?$top=999&$select={','.join(APP_FIELDS)}"
    apps, credentials, ids, pages = 0, 0, set(), 0

    def take(body: dict[str, Any]) -> str | None:
        nonlocal apps, credentials, pages
        pages += 1
        for record in body["value"]:
            apps += 1
            credentials += count(record)
            ids.add(record["id"])
        link: str | None = body.get("@odata.nextLink")
        return link

    if client_name == "aiohttp":
        import aiohttp
        from yarl import URL

        async with aiohttp.ClientSession() as session:
            while url is not None:
                async with session.get(URL(url, encoded=True), headers=headers) as response:
                    url = take(parse(await response.read()))
    else:
        import httpx

        async with httpx.AsyncClient(timeout=60.0) as client:
            while url is not None:
                url = take(parse((await client.get(url, headers=headers)).content))
    return {"apps": apps, "unique": len(ids), "credentials": credentials, "pages": pages}


async def read_with_sdk_models(base_url: str, sample: int) -> dict[str, Any]:
    """msgraph-sdk as its users usually read a collection: `.get()` into models, `with_url` for nextLink."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.applications.applications_request_builder import ApplicationsRequestBuilder

    from bot.fakegraph import LocalTokenCredential
    from bot.graph import build_graph_client

    client = build_graph_client(base_url, LocalTokenCredential())
    top = math.ceil(sample / math.ceil(sample / 999))  # equal pages: 1,000 apps are two pages of 500
    query = ApplicationsRequestBuilder.ApplicationsRequestBuilderGetQueryParameters(select=list(APP_FIELDS), top=top)
    page = await client.applications.get(RequestConfiguration(query_parameters=query))
    apps, credentials, ids, pages = 0, 0, set(), 0
    while page is not None:
        pages += 1
        for app in page.value or []:
            apps += 1
            credentials += len(app.password_credentials or []) + len(app.key_credentials or [])
            ids.add(app.id)
        if apps >= sample or not page.odata_next_link:
            break
        page = await client.applications.with_url(page.odata_next_link).get()
    return {"apps": apps, "unique": len(ids), "credentials": credentials, "pages": pages}


def read(base_url: str, variant: str, sample: int) -> None:
    """One measured read in this (fresh) process; prints its figures as one JSON line."""
    readers = {READER: read_with_reader, SDK: read_with_sdk_models} | dict.fromkeys(TRANSPORTS, read_with_transport)
    argument: Any = variant if variant in TRANSPORTS else sample
    # Imports and msgraph's lazily imported request builders and models are one-off costs of a
    # process, not of a read: a warm-up before the clock starts (the SDK's reads one app).
    import aiohttp  # noqa: F401
    import httpx  # noqa: F401
    import orjson  # noqa: F401

    import bot.fakegraph
    import bot.graph.bulk  # noqa: F401

    if variant == SDK:
        asyncio.run(read_with_sdk_models(base_url, 1))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux reports KiB)
    wall, cpu = time.perf_counter(), time.process_time()
    figures = asyncio.run(readers[variant](base_url, argument))
    figures["wall"] = time.perf_counter() - wall
    figures["cpu"] = time.process_time() - cpu
    figures["rss_before"] = rss_before
    figures["rss_peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(figures))


# --- the orchestrating process ---------------------------------------------------------------------


def measure(base_url: str, variant: str, sample: int = 0) -> dict[str, Any]:
    command = [sys.executable, __file__, "--read", base_url, "--variant", variant, "--sample", str(sample)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def row(name: str, runs: list[dict[str, Any]], expected: int | None) -> tuple[str, bool]:
    wall = statistics.median(r["wall"] for r in runs)
    cpu = statistics.median(r["cpu"] for r in runs)
    peak = max(r["rss_peak"] for r in runs)
    before = max(r["rss_before"] for r in runs)
    last = runs[-1]
    ok = all(r["apps"] == r["unique"] and (expected is None or r["apps"] == expected) for r in runs)
    rate = last["apps"] / wall if wall else 0.0
    per_app_ms = wall / last["apps"] * 1000 if last["apps"] else 0.0
    line = (
        f"{name:<34} {last['apps']:>7} {last['pages']:>5} {wall:>7.2f} {cpu:>7.2f} {rate:>9,.0f} {per_app_ms:>8.4f}"
        f" {before:>8.0f} {peak:>8.0f}  {'' if ok else 'FAIL: not every app exactly once'}"
    )
    return line, ok


def parse_only(base_url: str, apps: int) -> str:
    """Parsing alone, in this process: one full page, parsed as often as the tenant has pages."""
    import urllib.request

    import orjson

    request = urllib.request.Request(
        f"{base_url}/v1.0/applications?$top=999&$select={','.join(APP_FIELDS)}",
        headers={"Authorization": "Bearer fakegraph-local-token"},
    )
    with urllib.request.urlopen(request) as response:  # loopback, the fake Graph
        raw = response.read()
    pages = math.ceil(apps / 999)
    seconds = {}
    for name, parse in (("orjson", orjson.loads), ("json", json.loads)):
        started = time.process_time()
        for _ in range(pages):
            parse(raw)
        seconds[name] = time.process_time() - started
    return (
        f"parsing only ({pages} x a {len(raw) / 1e6:.2f} MB page, CPU): orjson {seconds['orjson']:.3f} s,"
        f" json {seconds['json']:.3f} s"
    )


def main(apps: int, runs: int, sample: int, compare: bool) -> int:
    print(f"Bulk read of {apps:,} applications; Python {platform.python_version()}, {os.cpu_count()} CPUs")
    print(f"$select={','.join(APP_FIELDS)}, $top=999; median of {runs} runs, each in a fresh process")
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(apps)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip()
        print(f"fake Graph (separate process) generated the tenant in {time.perf_counter() - started:.1f} s")
        cold = measure(base_url, READER)  # also fills the fake's page cache
        print(
            f"first read, the fake building and encoding every page: {cold['wall']:.2f} s wall, {cold['cpu']:.2f} s CPU"
        )
        print(f"goal: <= {GOAL_SECONDS:g} s and peak RSS <= {GOAL_MB:g} MB for {apps:,} apps")
        print()
        head = (
            f"{'variant':<34} {'apps':>7} {'pages':>5} {'wall s':>7} {'CPU s':>7} {'apps/s':>9} {'ms/app':>8}"
            f" {'RSS0 MB':>8} {'peak MB':>8}"
        )
        print(head)
        print("-" * len(head))
        variants = [READER, *(TRANSPORTS if compare else ())]
        all_ok = True
        for variant in variants:
            line, ok = row(variant, [measure(base_url, variant) for _ in range(runs)], apps)
            all_ok &= ok
            print(line, flush=True)
        if sample:
            line, ok = row(f"{SDK} ({sample:,} apps)", [measure(base_url, SDK, sample) for _ in range(runs)], None)
            all_ok &= ok
            print(line, flush=True)
        print()
        print(parse_only(base_url, apps))
        print()
        print("RSS0: the reading process's peak RSS after imports and warm-up, before the read;")
        print("peak: its peak RSS at the end of the read (ru_maxrss), the fake Graph's not included.")
        return 0 if all_ok else 1
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=30)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--apps", type=int, default=100_000, help="applications in the tenant (default 100,000)")
    parser.add_argument("--runs", type=int, default=3, help="measured reads per variant (default 3)")
    parser.add_argument("--sample", type=int, default=1000, help="apps read through msgraph models (0: skip)")
    parser.add_argument("--no-compare", action="store_true", help="skip the transport comparison rows")
    parser.add_argument("--serve", type=int, metavar="APPS", help=argparse.SUPPRESS)
    parser.add_argument("--read", metavar="BASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--variant", default=READER, help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    args = arguments()
    if args.serve is not None:
        serve(args.serve)
    elif args.read is not None:
        read(args.read, args.variant, args.sample)
    else:
        sys.exit(main(args.apps, args.runs, args.sample, not args.no_compare))
