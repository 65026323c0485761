"""A small, honest, Graph-shaped HTTP server that serves a tenant snapshot (see README.md).

Tests, the demo and `secretbot diagnose --snapshot` talk to it through the real msgraph-sdk.
"""

from bot.fakegraph.credential import LocalTokenCredential
from bot.fakegraph.faults import Fault
from bot.fakegraph.server import FakeGraph, RecordedRequest
from bot.fakegraph.snapshot import Snapshot, SnapshotError, load_snapshot, parse_snapshot, sample_snapshot_path

__all__ = [
    "FakeGraph",
    "Fault",
    "LocalTokenCredential",
    "RecordedRequest",
    "Snapshot",
    "SnapshotError",
    "load_snapshot",
    "parse_snapshot",
    "sample_snapshot_path",
]
