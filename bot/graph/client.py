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

DEFAULT_GRAPH_BASE_URL = "https://graph.microsoft.com"

# httpx keeps only 20 idle connections by default: after a burst of diagnoses it closed the rest, and
# the next wave opened them again, one TLS handshake per request against graph.microsoft.com (the
# fake Graph saw ~400 connections for ~404 $batch requests). Keeping as many idle connections as the
# pool may open lets a burst reuse them. httpx's other limits stay: 100 connections at most (Graph
# throttles per app anyway), an idle connection closed after 5 s.
GRAPH_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100)


def build_graph_client(base_url: str, credential: Any) -> GraphServiceClient:
    """A client whose requests go to `{base_url}/v1.0`, authenticated with an azure-identity credential.

    The token scope follows the host (`https://graph.microsoft.us/.default` for US Gov), as a
    national cloud issues tokens only for its own Graph.
    """
    root = base_url.rstrip("/")
    host = httpx.URL(root).host
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(base_url=f"{root}/v1.0", http2=False, timeout=httpx.Timeout(30.0), limits=GRAPH_LIMITS)
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
