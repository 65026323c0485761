"""Microsoft Graph access through msgraph-sdk: the live implementation of `bot.ports.Directory`."""

from bot.graph.client import build_graph_client
from bot.graph.directory import GraphDirectory

__all__ = ["GraphDirectory", "build_graph_client"]
