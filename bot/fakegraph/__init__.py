"""A small, honest, Graph-shaped HTTP server that serves a tenant snapshot (see README.md).

Tests, the demo and the server talk to it over real HTTP with the bot's own Graph clients;
`secretbot diagnose --snapshot` posts its `$batch` to the same core in-process (`bot.fakegraph.local`).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.fakegraph.credential import LocalBearer, LocalTokenCredential
    from bot.fakegraph.entra import FakeEntra
    from bot.fakegraph.faults import Fault
    from bot.fakegraph.keyvault import FakeKeyVault
    from bot.fakegraph.server import FakeGraph, RecordedRequest
    from bot.fakegraph.snapshot import Snapshot, SnapshotError, load_snapshot, parse_snapshot, sample_snapshot_path

# Each name is imported from its module on first use. The server needs aiohttp and the credential
# azure-core (~0.1 s each to import), and the snapshot reader the domain types; commands that only
# read the sample pastes (`secretbot diagnose` without --snapshot, `--help`) pay for none of them.
_MODULE_OF = {
    "FakeEntra": "entra",
    "FakeGraph": "server",
    "FakeKeyVault": "keyvault",
    "RecordedRequest": "server",
    "LocalBearer": "credential",
    "LocalTokenCredential": "credential",
    "Fault": "faults",
    "Snapshot": "snapshot",
    "SnapshotError": "snapshot",
    "load_snapshot": "snapshot",
    "parse_snapshot": "snapshot",
    "sample_snapshot_path": "snapshot",
}
__all__ = [
    "FakeEntra",
    "FakeGraph",
    "FakeKeyVault",
    "Fault",
    "LocalBearer",
    "LocalTokenCredential",
    "RecordedRequest",
    "Snapshot",
    "SnapshotError",
    "load_snapshot",
    "parse_snapshot",
    "sample_snapshot_path",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
