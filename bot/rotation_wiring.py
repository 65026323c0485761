"""Composition helpers for rotation's infrastructure: the Graph writer, the token prover and the vault,
for live Microsoft services or, in snapshot and demo mode, for the local fakes.

Snapshot mode writes to the same fake Graph the diagnosis reads (so a rotated secret shows up in the
next answer), proves secrets against the fake token endpoint, and keeps values in the embedded
in-memory vault unless a real Key Vault is configured; `RotationParts.fakes` says which parts are
stand-ins so the console and /readyz can say so.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from yarl import URL

from bot.ports import CredentialWriter, PeopleDirectory, SecretVault, TokenProver
from bot.rotation_types import BotIdentity
from bot.settings import Settings
from bot.wiring import OpenGraph

if TYPE_CHECKING:
    from bot.fakegraph import FakeGraph

log = logging.getLogger(__name__)

# Each cloud's Graph host and the Entra authority that issues its tokens.
AUTHORITIES = {
    "graph.microsoft.com": "https://login.microsoftonline.com",
    "graph.microsoft.us": "https://login.microsoftonline.us",
    "dod-graph.microsoft.us": "https://login.microsoftonline.us",
    "microsoftgraph.chinacloudapi.cn": "https://login.chinacloudapi.cn",
}
DEFAULT_PROPAGATION = 5.0  # seconds the fake token endpoint makes a new secret wait (users saw 4-18 s)


@dataclass(frozen=True)
class RotationParts:
    writer: CredentialWriter  # addPassword, removePassword, policies (bot.graph.writes.GraphWrites)
    people: PeopleDirectory  # approver checks (the same GraphWrites)
    prover: TokenProver
    vault: SecretVault
    fakes: tuple[str, ...]  # the parts that are local stand-ins: "token endpoint", "Key Vault"
    identity: Callable[[], Awaitable[BotIdentity | None]] | None = None  # the bot's own token (bot.graph.identity)


def authority_for(graph_base_url: str) -> str:
    """The Entra authority of the cloud whose Graph is `graph_base_url` (the public cloud if unknown)."""
    return AUTHORITIES.get(URL(graph_base_url).host or "", AUTHORITIES["graph.microsoft.com"])


@asynccontextmanager
async def open_live_rotation(graph_base_url: str, credential: Any, keyvault_url: str) -> AsyncIterator[RotationParts]:
    """Rotation against Microsoft: `credential` is the bot's azure-identity credential (the one Graph uses)."""
    from bot.graph import build_graph_client
    from bot.graph.hosts import scope_origin
    from bot.graph.identity import TokenIdentity
    from bot.graph.proof import SecretProver
    from bot.graph.writes import GraphWrites
    from bot.vault import KeyVaultSecrets

    vault = KeyVaultSecrets(keyvault_url, credential)
    try:
        writes = GraphWrites(build_graph_client(graph_base_url, credential))
        identity = TokenIdentity(credential, f"{scope_origin(graph_base_url)}/.default")
        prover = SecretProver(authority_for(graph_base_url))
        yield RotationParts(writes, writes, prover, vault, (), identity)
    finally:
        await vault.close()


@asynccontextmanager
async def open_snapshot_rotation(
    graph: FakeGraph,
    *,
    propagation: float = DEFAULT_PROPAGATION,
    keyvault_url: str | None = None,
    vault_credential: Any = None,
    bot_token: str | None = None,
) -> AsyncIterator[RotationParts]:
    """Rotation against the fake tenant `graph` serves: writes change it, the fake token endpoint proves
    secrets after `propagation` seconds, and values go to the embedded vault unless `keyvault_url` is set
    (then `vault_credential` must be an azure-identity credential for it). The bot's own token is
    `bot_token`, by default the sample tenant's bot with Application.ReadWrite.OwnedBy."""
    from bot.fakegraph import FakeEntra, LocalTokenCredential
    from bot.fakegraph.credential import app_token
    from bot.graph import build_graph_client
    from bot.graph.identity import TokenIdentity
    from bot.graph.proof import SecretProver
    from bot.graph.writes import GraphWrites
    from bot.vault import KeyVaultSecrets, MemoryVault

    async with AsyncExitStack() as stack:
        entra = await stack.enter_async_context(FakeEntra(graph, propagation=propagation))
        prover = SecretProver(entra.authority, connection_verify=entra.cert_path)
        vault: KeyVaultSecrets | MemoryVault
        if keyvault_url:
            vault = KeyVaultSecrets(keyvault_url, vault_credential)
            stack.push_async_callback(vault.close)
        else:
            vault = MemoryVault()
        fakes = ("token endpoint",) + (() if keyvault_url else ("Key Vault",))
        bot_credential = LocalTokenCredential(bot_token or app_token())
        writes = GraphWrites(build_graph_client(graph.base_url, bot_credential))
        identity = TokenIdentity(bot_credential, "https://graph.microsoft.com/.default")
        yield RotationParts(writes, writes, prover, vault, fakes, identity)


@asynccontextmanager
async def open_rotation_parts(settings: Settings, opened: OpenGraph | None) -> AsyncIterator[RotationParts | None]:
    """Rotation's parts for the directory the app opened, or None when rotation is not offered: no Graph,
    or live Graph without KEYVAULT_URL (the value would have nowhere safe to go)."""
    if opened is None or opened.directory is None:
        yield None
        return
    if opened.fake is not None:
        async with AsyncExitStack() as stack:
            credential = None
            if settings.keyvault_url:
                from azure.identity.aio import DefaultAzureCredential

                credential = await stack.enter_async_context(DefaultAzureCredential())
            parts = await stack.enter_async_context(
                open_snapshot_rotation(opened.fake, keyvault_url=settings.keyvault_url, vault_credential=credential)
            )
            log.info("rotation: snapshot mode; fakes stand in for: %s", ", ".join(parts.fakes) or "nothing")
            yield parts
        return
    if not settings.keyvault_url:
        log.info("rotation: not offered (live Graph and no KEYVAULT_URL: a new secret would have nowhere to go)")
        yield None
        return
    async with open_live_rotation(settings.graph_base_url, opened.credential, settings.keyvault_url) as parts:
        yield parts
