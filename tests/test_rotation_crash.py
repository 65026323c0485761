"""A rotation survives its worker: killed with SIGKILL between addPassword and Key Vault, the job is
given up by the sweep, run again by another worker process on the same redis-server, and ends with
the new secret stored and proven, the orphan (whose value died with the worker) removed. And during a
whole rotation through the app and its queue, the value is in no log line and no Redis key or value
(job payloads included)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot.app import SERVICES, create_app
from bot.fakegraph import FakeEntra, FakeGraph, FakeKeyVault, load_snapshot, sample_snapshot_path
from bot.jobs.queue import JobQueue
from bot.rotation_types import Rotation, RotationState
from bot.settings import Settings
from bot.state import keys, open_redis
from bot.vault import MemoryVault
from tests.redis_server import redis_server
from tests.rotation_setup import APPROVER_TEAMS, PAYMENTS_APP, POLICY, REQUESTER, rig
from tests.test_jobs import every_value, running

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def rotation_worker(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.rotation_setup"], cwd=ROOT, env=os.environ | env, stderr=sink, stdout=sink
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


async def _until(predicate_state: set[RotationState], get: object, rotation_id: str, seconds: float) -> Rotation:
    deadline = time.monotonic() + seconds
    while True:
        current = await get(rotation_id)  # type: ignore[operator]
        if current is not None and current.state in predicate_state:
            return current  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(f"rotation never reached {predicate_state}: {current}")
        await asyncio.sleep(0.2)


async def test_a_worker_killed_between_add_and_store_is_replaced_and_the_rotation_ends_stored_and_proven(
    tmp_path: Path,
) -> None:
    with redis_server() as server:
        async with (
            FakeGraph(load_snapshot(sample_snapshot_path())) as graph,
            FakeEntra(graph, propagation=0.5) as entra,
            FakeKeyVault() as vault,
            open_redis(server.url) as connections,
        ):
            queue = JobQueue.on(connections)

            async def enqueue(rotation_id: str, phase: str) -> bool:
                key = keys.rotation_job_key(rotation_id, phase)
                return await queue.enqueue("rotation.advance", key=key, rotation_id=rotation_id)

            async with rig(redis_url=server.url, graph=graph, entra=entra, vault=vault, enqueue=enqueue) as r:
                vault.put_delay = 60.0  # the value waits in the first worker's memory, between add and store
                env = {
                    "REDIS_URL": server.url,
                    "ROT_GRAPH": graph.base_url,
                    "ROT_VAULT": vault.url,
                    "ROT_VAULT_CERT": vault.cert_path,
                    "ROT_AUTHORITY": entra.authority,
                    "ROT_AUTHORITY_CERT": entra.cert_path,
                }
                log = tmp_path / "workers.log"
                with rotation_worker(env, log) as first:
                    rotation = await r.rotations.request(REQUESTER, PAYMENTS_APP, "leaked")
                    assert isinstance(rotation, Rotation)
                    assert isinstance(await r.rotations.approve(APPROVER_TEAMS, rotation.id), Rotation)
                    added = await _until({RotationState.ADDED}, r.rotations.store.get, rotation.id, 60)
                    first.send_signal(signal.SIGKILL)
                    first.wait()
                assert added.new_key_id in await r.keys_marked(rotation.id)  # the orphan, its value gone
                vault.put_delay = 0.0
                with rotation_worker(env, log):
                    final = await _until(
                        {RotationState.DONE, RotationState.FAILED}, r.rotations.store.get, rotation.id, 120
                    )
                assert final.state is RotationState.DONE, (final, log.read_text(errors="replace")[-3000:])
                assert await r.keys_marked(rotation.id) == [final.new_key_id]
                assert final.new_key_id != added.new_key_id  # the orphan was removed, a new one added
                stored = next(v for v in vault.versions(final.vault_name) if v.version == final.vault_version)
                assert stored.tags["key-id"] == final.new_key_id
                states = [e.state for e in final.history]
                assert states.count(RotationState.ADDED) == 2 and RotationState.PROVEN in states
            await queue.close()


async def test_no_secret_value_in_logs_or_redis_during_a_whole_rotation_through_the_app(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = Settings(snapshot="sample", approvers=POLICY.approvers, rotation_apps=(PAYMENTS_APP,), log_level="debug")
    async with running(create_app(settings)) as app:
        rotations = app[SERVICES].rotations
        assert rotations is not None and isinstance(rotations.vault, MemoryVault)
        rotation = await rotations.request(REQUESTER, PAYMENTS_APP, "leaked")
        assert isinstance(rotation, Rotation)
        assert isinstance(await rotations.approve(APPROVER_TEAMS, rotation.id), Rotation)
        done = await _until({RotationState.DONE, RotationState.FAILED}, rotations.store.get, rotation.id, 90)
        assert done.state is RotationState.DONE, done
        value = rotations.vault.versions(done.vault_name)[-1].value.reveal()
        everything = await every_value(app[SERVICES].jobs.saq.redis)
        assert any(b"rotation.advance" in item for item in everything)  # the job records are in there
        assert any(rotation.id.encode() in item for item in everything)
        assert not [item for item in everything if value.encode() in item]
        assert value not in caplog.text
        assert "state=done" in caplog.text and done.new_key_id in caplog.text  # the audit line, with ids
        metrics = (await _metrics(app)).decode()
        assert 'secretbot_graph_writes_total{operation="addPassword"} 1.0' in metrics
        assert 'secretbot_rotations_total{outcome="done"} 1.0' in metrics
        assert "secretbot_rotation_approval_seconds_count 1.0" in metrics


async def _metrics(app: object) -> bytes:
    from bot.app import METRICS

    return app[METRICS].exposition()  # type: ignore[index,no-any-return]
