"""Build one msgraph-sdk client for a Graph host: the public cloud, a national cloud or the local fake."""

from __future__ import annotations

from typing import Any

import httpx
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory

from bot.settings import DEFAULT_GRAPH_MAX_IN_FLIGHT

DEFAULT_GRAPH_BASE_URL = "https://graph.microsoft.com"

# A small pool that keeps every connection it opens. httpx's defaults (100 connections, 20 kept
# alive) closed each connection that fell idle while more than 20 were open, so in a burst nearly
# every $batch opened a new one: a TLS handshake each against graph.microsoft.com (the fake Graph
# saw ~400 connections for ~400 requests). Keeping 100 alive instead made it worse: httpcore's pool
# bookkeeping is quadratic in its connections and in its queue and runs on every request, and a
# burst of 200 Slack pastes cost ~40-55 instead of ~20 ms of CPU each. GraphDirectory queues the
# batches beyond MAX_IN_FLIGHT in front of the pool, where waiting is cheap. The cap trades CPU
# against throughput when Graph is slow: in the benchmark's burst (docs/benchmarks.md) 20 was best
# at 0.1 s per request but took 13 s at 0.6 s; 50 was best at 0.3-0.6 s but cost 33 ms of CPU per
# paste at 0.1 s; 32 is never far from the best. Idle connections still close after httpx's 5 s.
MAX_IN_FLIGHT = DEFAULT_GRAPH_MAX_IN_FLIGHT  # SECRETBOT_GRAPH_MAX_IN_FLIGHT changes it per deployment
GRAPH_LIMITS = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT)


def build_graph_client(base_url: str, credential: Any, *, max_in_flight: int = MAX_IN_FLIGHT) -> GraphServiceClient:
    """A client whose requests go to `{base_url}/v1.0`, authenticated with an azure-identity credential.

    The token scope follows the host (`https://graph.microsoft.us/.default` for US Gov), as a
    national cloud issues tokens only for its own Graph.
    """
    root = base_url.rstrip("/")
    host = httpx.URL(root).host
    limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(base_url=f"{root}/v1.0", http2=False, timeout=httpx.Timeout(30.0), limits=limits)
    )
    auth = AzureIdentityAuthenticationProvider(
        credential, scopes=[f"{_scope_origin(root)}/.default"], allowed_hosts=[host]
    )
    adapter = GraphRequestAdapter(auth, http)
    # httpx adds a trailing slash to base_url, which would make every path start with "//".
    adapter.base_url = f"{root}/v1.0"
    return GraphServiceClient(request_adapter=adapter)


def _scope_origin(root: str) -> str:
    url = httpx.URL(root)
    if url.host in ("127.0.0.1", "localhost", "::1"):
        return DEFAULT_GRAPH_BASE_URL  # the local fake accepts any token; ask for a normal-looking one
    return f"{url.scheme}://{url.host}"
