"""Composition helpers shared by the roots (CLI, server, demo): pick and build the Directory.

Snapshot mode serves a tenant export through the local fake Graph: over real HTTP for the server and
the demo, so they exercise exactly the code that talks to Microsoft in production; in this process
for `open_directory`'s one-shot diagnoses, through the same `$batch` parser and router.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.domain import GraphMode
from bot.ports import Directory
from bot.settings import Settings

if TYPE_CHECKING:
    from datetime import datetime

    from bot.fakegraph import FakeGraph

SAMPLE_SNAPSHOT = "sample"  # `--snapshot sample` means the tenant bundled with secretbot


def snapshot_path(name: str) -> Path:
    """A file path as given, or the bundled sample tenant for the word `sample`."""
    from bot.fakegraph import sample_snapshot_path  # the snapshot reader: only for commands that use one

    path = Path(name)
    if name == SAMPLE_SNAPSHOT and not path.exists():
        return sample_snapshot_path()
    return path


def has_directory(settings: Settings, snapshot: str | None = None) -> bool:
    """Whether there is a directory to ask (a snapshot or Graph credentials); without one, answers
    come from the paste alone."""
    return bool(snapshot or settings.snapshot or settings.graph_credentials)


@dataclass(frozen=True)
class OpenGraph:
    """The directory, and what rotation writes through: the snapshot's fake tenant (so a rotated secret
    shows up in the next answer) or the live credential."""

    directory: Directory | None
    fake: FakeGraph | None = None
    credential: Any = None  # live mode: the azure-identity credential Graph uses


@asynccontextmanager
async def open_directory(settings: Settings, snapshot: str | None = None) -> AsyncIterator[Directory | None]:
    """The directory to diagnose against: a snapshot, live Graph, or None (paste-only answers).

    Raises `SnapshotError` (one line, safe to print) when the snapshot cannot be read. A snapshot is
    asked in this process (`LocalGraph`): nothing here writes to it, and a command that asks once
    should not start a server and import an HTTP client for it.
    """
    snapshot = snapshot or settings.snapshot
    if not snapshot:
        async with open_graph(settings) as opened:
            yield opened.directory
        return
    from bot.fakegraph import load_snapshot
    from bot.fakegraph.local import LocalGraph
    from bot.graph.directory import GraphDirectory

    tenant = load_snapshot(snapshot_path(snapshot))
    in_flight = settings.graph_max_in_flight
    graph = LocalGraph(tenant, latency=settings.snapshot_latency)
    yield GraphDirectory(graph, GraphMode.SNAPSHOT, coverage=tenant.coverage, max_in_flight=in_flight)


@asynccontextmanager
async def open_graph(
    settings: Settings, snapshot: str | None = None, clock: Callable[[], datetime] | None = None
) -> AsyncIterator[OpenGraph]:
    """`open_directory`, with the fake tenant or the live credential behind it. `clock` is the fake
    tenant's "now" (the demo's fixed clock); the real one by default."""
    snapshot = snapshot or settings.snapshot
    if not has_directory(settings, snapshot):
        yield OpenGraph(None)  # paste-only answers: no need to import the Graph SDK or the fake Graph's server
        return
    from bot.fakegraph import FakeGraph, LocalBearer, load_snapshot
    from bot.graph.directory import GraphDirectory
    from bot.graph.transport import GraphHttp

    in_flight = settings.graph_max_in_flight  # the pool and the queue in front of it share one cap
    if snapshot:
        tenant = load_snapshot(snapshot_path(snapshot))
        async with (
            FakeGraph(tenant, latency=settings.snapshot_latency, clock=clock) as graph,
            GraphHttp(graph.base_url, LocalBearer(), max_connections=in_flight) as http,
        ):
            directory = GraphDirectory(http, GraphMode.SNAPSHOT, coverage=tenant.coverage, max_in_flight=in_flight)
            yield OpenGraph(directory, fake=graph)
        return
    if settings.graph_credentials:
        # One async credential (and its token cache) serves the whole process.
        from azure.identity.aio import DefaultAzureCredential

        async with (
            DefaultAzureCredential() as credential,
            GraphHttp(settings.graph_base_url, credential, max_connections=in_flight) as http,
        ):
            source = settings.graph_credential_source
            directory = GraphDirectory(http, GraphMode.LIVE, credential_source=source, max_in_flight=in_flight)
            yield OpenGraph(directory, credential=credential)
