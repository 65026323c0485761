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

from bot.graph.hosts import MAX_IN_FLIGHT, scope_origin


def build_graph_client(
    base_url: str, credential: Any, *, max_in_flight: int = MAX_IN_FLIGHT, timeout: float = 30.0
) -> GraphServiceClient:
    """A client whose requests go to `{base_url}/v1.0`, authenticated with an azure-identity credential.

    The token scope follows the host (`bot.graph.hosts.scope_origin`).
    """
    root = base_url.rstrip("/")
    host = httpx.URL(root).host
    limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(base_url=f"{root}/v1.0", http2=False, timeout=httpx.Timeout(timeout), limits=limits)
    )
    auth = AzureIdentityAuthenticationProvider(
        credential, scopes=[f"{scope_origin(root)}/.default"], allowed_hosts=[host]
    )
    adapter = GraphRequestAdapter(auth, http)
    # httpx adds a trailing slash to base_url, which would make every path start with "//".
    adapter.base_url = f"{root}/v1.0"
    return GraphServiceClient(request_adapter=adapter)
