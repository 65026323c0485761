"""Microsoft Graph access: the live implementation of `bot.ports.Directory` (aiohttp `$batch` requests),
and an msgraph-sdk client for single objects and writes."""

from bot.graph.client import build_graph_client
from bot.graph.directory import GraphDirectory
from bot.graph.transport import GraphHttp

__all__ = ["GraphDirectory", "GraphHttp", "build_graph_client"]
