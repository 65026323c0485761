"""Typed configuration from the environment. Secrets have no defaults; names follow each ecosystem."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_GRAPH_BASE_URL = "https://graph.microsoft.com"

# azure-identity's DefaultAzureCredential reads these; any of them means "a credential is configured".
_CREDENTIAL_MARKERS = (
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_FEDERATED_TOKEN_FILE",
    "IDENTITY_ENDPOINT",  # managed identity on App Service, Functions, Container Apps
    "MSI_ENDPOINT",
)


@dataclass(frozen=True)
class Settings:
    graph_base_url: str = DEFAULT_GRAPH_BASE_URL
    snapshot: str | None = None
    graph_credentials: bool = False
    port: int = 3978

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            graph_base_url=env.get("GRAPH_BASE_URL") or DEFAULT_GRAPH_BASE_URL,
            snapshot=env.get("SECRETBOT_SNAPSHOT") or None,
            graph_credentials=_has_credentials(env),
            port=_port(env.get("PORT")),
        )


def _has_credentials(env: Mapping[str, str]) -> bool:
    if env.get("SECRETBOT_GRAPH_CREDENTIAL", "").lower() == "default":
        return True  # e.g. a system-assigned managed identity, which sets no variable we can see
    return any(env.get(name) for name in _CREDENTIAL_MARKERS)


def _port(value: str | None) -> int:
    if not value:
        return 3978
    try:
        port = int(value)
    except ValueError:
        raise ValueError(f"PORT must be a number, got {value!r}") from None
    if not 0 < port < 65536:
        raise ValueError(f"PORT must be between 1 and 65535, got {port}")
    return port
