"""Microsoft Graph access: the live implementation of `bot.ports.Directory` (aiohttp `$batch` requests),
and an msgraph-sdk client for single objects and writes (imported on first use: the SDK takes a
quarter of a second to import, and the diagnosis does not need it)."""

from typing import Any

from bot.graph.directory import GraphDirectory
from bot.graph.transport import GraphHttp

__all__ = ["GraphDirectory", "GraphHttp", "build_graph_client"]


def __getattr__(name: str) -> Any:
    if name == "build_graph_client":
        from bot.graph.client import build_graph_client

        return build_graph_client
    raise AttributeError(name)
