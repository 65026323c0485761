"""Shared fixtures: the sample tenant served by the fake Graph, reached over real HTTP, and the local
fakes of the Slack Web API and the Bot Framework connector."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from bot.domain import GraphMode
from bot.fakegraph import FakeGraph, LocalTokenCredential, load_snapshot, sample_snapshot_path
from bot.graph import GraphDirectory, GraphHttp
from tests.fake_connector import FakeConnector
from tests.fake_slack import FakeSlack


@dataclass
class SampleTenant:
    graph: FakeGraph
    directory: GraphDirectory


@pytest.fixture
async def sample_tenant() -> AsyncIterator[SampleTenant]:
    async with (
        FakeGraph(load_snapshot(sample_snapshot_path())) as graph,
        GraphHttp(graph.base_url, LocalTokenCredential()) as http,
    ):
        # Short back-off so fault tests stay quick; Retry-After from the server still wins.
        yield SampleTenant(graph, GraphDirectory(http, GraphMode.SNAPSHOT, max_retries=2, retry_delay=0.1))


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    fake = FakeConnector()
    await fake.start()
    yield fake
    await fake.stop()
