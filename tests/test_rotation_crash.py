"""A rotation survives its worker: killed with SIGKILL while addPassword is on the way, between
addPassword and Key Vault, while the proof waits, or while the old secret is removed, the job is
given up by the sweep, run again by another worker process on the same redis-server, and ends in a
correct state: the new secret stored and proven once (an orphan whose value died with the worker
removed), or the old secret removed once. And during a
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
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
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
from tests.rotation_setup import APPROVER_TEAMS, PAYMENTS_APP, PAYMENTS_OBJECT, POLICY, REQUESTER, Rig, rig
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


@dataclass
class Crash:
    """The fakes, a rig on a real redis-server, and worker processes started (and killed) at will."""

    r: Rig
    graph: FakeGraph
    entra: FakeEntra
    vault: FakeKeyVault
    env: dict[str, str]
    log: Path

    def worker(self) -> AbstractContextManager[subprocess.Popen[bytes]]:
        return rotation_worker(self.env, self.log)

    def seen(self, operation: str) -> bool:
        return any(r.method == "POST" and r.path.endswith(operation) for r in self.graph.requests)

    async def approved(self) -> Rotation:
        rotation = await self.r.rotations.request(REQUESTER, PAYMENTS_APP, "leaked")
        assert isinstance(rotation, Rotation)
        assert isinstance(await self.r.rotations.approve(APPROVER_TEAMS, rotation.id), Rotation)
        return rotation

    async def until(self, states: set[RotationState], rotation_id: str, seconds: float = 60) -> Rotation:
        return await _until(states, self.r.rotations.store.get, rotation_id, seconds)

    async def finished(self, rotation_id: str, wanted: RotationState) -> Rotation:
        final = await self.until({wanted, RotationState.FAILED}, rotation_id, 120)
        assert final.state is wanted, (final, self.log.read_text(errors="replace")[-3000:])
        return final


@asynccontextmanager
async def crash_rig(tmp_path: Path) -> AsyncIterator[Crash]:
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
                env = {
                    "REDIS_URL": server.url,
                    "ROT_GRAPH": graph.base_url,
                    "ROT_VAULT": vault.url,
                    "ROT_VAULT_CERT": vault.cert_path,
                    "ROT_AUTHORITY": entra.authority,
                    "ROT_AUTHORITY_CERT": entra.cert_path,
                }
                yield Crash(r, graph, entra, vault, env, tmp_path / "workers.log")
            await queue.close()


def killed(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


async def _seen(crash: Crash, operation: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not crash.seen(operation):
        assert time.monotonic() < deadline, f"no {operation} within {seconds:g} s"
        await asyncio.sleep(0.1)


async def test_a_worker_killed_between_add_and_store_is_replaced_and_the_rotation_ends_stored_and_proven(
    tmp_path: Path,
) -> None:
    async with crash_rig(tmp_path) as crash:
        crash.vault.put_delay = 60.0  # the value waits in the first worker's memory, between add and store
        with crash.worker() as first:
            rotation = await crash.approved()
            added = await crash.until({RotationState.ADDED}, rotation.id)
            killed(first)
        assert added.new_key_id in await crash.r.keys_marked(rotation.id)  # the orphan, its value gone
        crash.vault.put_delay = 0.0
        with crash.worker():
            final = await crash.finished(rotation.id, RotationState.DONE)
        assert await crash.r.keys_marked(rotation.id) == [final.new_key_id]
        assert final.new_key_id != added.new_key_id  # the orphan was removed, a new one added
        stored = next(v for v in crash.vault.versions(final.vault_name) if v.version == final.vault_version)
        assert stored.tags["key-id"] == final.new_key_id
        states = [e.state for e in final.history]
        assert states.count(RotationState.ADDED) == 2 and RotationState.PROVEN in states


async def test_a_worker_killed_while_its_add_password_is_on_the_way_leaves_nothing_and_the_next_adds_once(
    tmp_path: Path,
) -> None:
    async with crash_rig(tmp_path) as crash:
        # Graph holds the first addPassword without carrying it out: the worker dies waiting for it.
        crash.graph.add_fault("addPassword", 503, times=1, method="POST", delay=120)
        with crash.worker() as first:
            rotation = await crash.approved()
            await _seen(crash, "addPassword")
            killed(first)
        assert await crash.r.keys_marked(rotation.id) == []
        with crash.worker():
            final = await crash.finished(rotation.id, RotationState.DONE)
        assert await crash.r.keys_marked(rotation.id) == [final.new_key_id]  # one new secret, no orphan
        assert crash.r.posts("addPassword") == 2  # the one that never happened, and the one that did
        assert [v.tags["key-id"] for v in crash.vault.versions(final.vault_name)] == [final.new_key_id]


async def test_a_worker_killed_while_it_waits_for_the_proof_leaves_the_stored_secret_for_the_next_to_prove(
    tmp_path: Path,
) -> None:
    async with crash_rig(tmp_path) as crash:
        crash.entra.propagation = 600.0  # the new secret is not accepted yet: the proof waits
        with crash.worker() as first:
            rotation = await crash.approved()
            stored = await crash.until({RotationState.STORED}, rotation.id)
            killed(first)
        crash.entra.propagation = 0.0
        with crash.worker():
            final = await crash.finished(rotation.id, RotationState.DONE)
        assert (final.new_key_id, final.vault_version) == (stored.new_key_id, stored.vault_version)  # not added again
        assert crash.r.posts("addPassword") == 1
        assert await crash.r.keys_marked(rotation.id) == [final.new_key_id]
        assert len(crash.vault.versions(final.vault_name)) == 1


async def test_a_worker_killed_while_it_removes_the_old_secret_is_replaced_and_the_old_secret_goes_once(
    tmp_path: Path,
) -> None:
    async with crash_rig(tmp_path) as crash:
        with crash.worker() as first:
            rotation = await crash.approved()
            done = await crash.finished(rotation.id, RotationState.DONE)
            assert done.replaces is not None
            # Graph holds the first removePassword without carrying it out: the worker dies waiting for it.
            crash.graph.add_fault("removePassword", 503, times=1, method="POST", delay=120)
            crash.r.later(timedelta(days=8))  # past the grace period: an approver may retire the old secret
            assert isinstance(await crash.r.rotations.retire(APPROVER_TEAMS, rotation.id), Rotation)
            await _seen(crash, "removePassword")
            killed(first)
        assert done.replaces in await _key_ids(crash)
        with crash.worker():
            final = await crash.finished(rotation.id, RotationState.RETIRED)
        present = await _key_ids(crash)
        assert done.replaces not in present and final.new_key_id in present
        assert crash.r.posts("removePassword") == 2


async def _key_ids(crash: Crash) -> set[str]:
    return {key.lower() for key in await crash.r.rotations.writer.password_key_ids(PAYMENTS_OBJECT)}


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
