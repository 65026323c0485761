"""A small, honest, Graph-shaped HTTP server that serves a tenant snapshot (see README.md).

Tests, the demo and `secretbot diagnose --snapshot` talk to it over real HTTP with the bot's own Graph clients.
"""

from typing import TYPE_CHECKING, Any

from bot.fakegraph.faults import Fault
from bot.fakegraph.snapshot import Snapshot, SnapshotError, load_snapshot, parse_snapshot, sample_snapshot_path

if TYPE_CHECKING:
    from bot.fakegraph.credential import LocalTokenCredential
    from bot.fakegraph.entra import FakeEntra
    from bot.fakegraph.keyvault import FakeKeyVault
    from bot.fakegraph.server import FakeGraph, RecordedRequest

__all__ = [
    "FakeEntra",
    "FakeGraph",
    "FakeKeyVault",
    "Fault",
    "LocalTokenCredential",
    "RecordedRequest",
    "Snapshot",
    "SnapshotError",
    "load_snapshot",
    "parse_snapshot",
    "sample_snapshot_path",
]


def __getattr__(name: str) -> Any:
    # The server needs aiohttp and the credential azure-core (~0.1 s each to import); commands that
    # only read a snapshot or the sample pastes (`secretbot diagnose` without --snapshot, `--help`)
    # should not pay for them.
    if name in ("FakeGraph", "RecordedRequest"):
        from bot.fakegraph import server

        return getattr(server, name)
    if name == "FakeEntra":
        from bot.fakegraph import entra

        return entra.FakeEntra
    if name == "FakeKeyVault":
        from bot.fakegraph import keyvault

        return keyvault.FakeKeyVault
    if name == "LocalTokenCredential":
        from bot.fakegraph import credential

        return credential.LocalTokenCredential
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
