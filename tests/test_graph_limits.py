"""SECRETBOT_GRAPH_MAX_IN_FLIGHT caps the Graph batches a replica has open at once, as Graph sees it."""

from __future__ import annotations

import asyncio

from bot.domain import GraphMode
from bot.fakegraph import FakeGraph, LocalTokenCredential, load_snapshot, sample_snapshot_path
from bot.graph import GraphDirectory, GraphHttp
from bot.settings import Settings

PAYMENTS_APP = "dc36fc90-2248-4d70-aca4-a1a9f5b19f71"


async def most_batches_at_once(settings: Settings, lookups: int) -> int:
    # Built as bot.wiring builds it for live Graph: the pool and the queue both take the setting.
    in_flight = settings.graph_max_in_flight
    async with (
        FakeGraph(load_snapshot(sample_snapshot_path()), latency=0.1) as graph,
        GraphHttp(graph.base_url, LocalTokenCredential(), max_connections=in_flight) as http,
    ):
        directory = GraphDirectory(http, GraphMode.LIVE, max_in_flight=in_flight)
        await asyncio.gather(*(directory.lookup(PAYMENTS_APP) for _ in range(lookups)))
        assert graph.round_trips == lookups
        return graph.max_in_flight


async def test_a_slow_graph_sees_no_more_batches_at_once_than_the_setting() -> None:
    settings = Settings.from_env({"SECRETBOT_GRAPH_MAX_IN_FLIGHT": "2"})
    assert await most_batches_at_once(settings, lookups=8) == 2


async def test_the_default_lets_a_small_burst_through_at_once() -> None:
    assert await most_batches_at_once(Settings.from_env({}), lookups=8) == 8
