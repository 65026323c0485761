"""The token proof goes through the queue one request at a time: while the fake token endpoint still
calls the new secret unknown (its propagation delay), the `rotation.advance` run ends and the job is
queued again after the prover's next pause, so no worker slot waits out the propagation and no run
comes near its time limit. A real redis-server, the app's own worker (one slot), the fakes."""

from __future__ import annotations

import asyncio
import time

from bot.app import JOBS, SERVICES, create_app
from bot.jobs.worker import RunningJob
from bot.rotation_types import Rotation, RotationState
from bot.settings import Settings
from bot.state import keys
from tests.redis_server import redis_server
from tests.rotation_setup import APPROVER_TEAMS, PAYMENTS_APP, POLICY, REQUESTER, rig
from tests.test_jobs import every_value, running

PROPAGATION = 5.0  # bot.rotation_wiring.DEFAULT_PROPAGATION: what the snapshot's fake token endpoint waits


async def _until(rotations: object, rotation_id: str, states: set[RotationState], seconds: float) -> Rotation:
    deadline = time.monotonic() + seconds
    while True:
        current = await rotations.store.get(rotation_id)  # type: ignore[attr-defined]
        if current is not None and current.state in states:
            return current  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(f"rotation never reached {states}: {current}")
        await asyncio.sleep(0.1)


async def test_a_proof_needing_several_requests_completes_through_the_queue_without_holding_a_slot() -> None:
    with redis_server() as server:
        settings = Settings(
            snapshot="sample", redis_url=server.url, approvers=POLICY.approvers, rotation_apps=(PAYMENTS_APP,)
        )
        app = create_app(settings, concurrency=1)
        pings: list[RotationState] = []

        async def ping(_job: RunningJob) -> None:
            current = await app[SERVICES].rotations.store.get(rotation.id)  # type: ignore[union-attr]
            pings.append(current.state if current else RotationState.FAILED)

        app[JOBS].functions["test.ping"] = ping
        async with running(app):
            rotations = app[SERVICES].rotations
            assert rotations is not None
            rotation = await rotations.request(REQUESTER, PAYMENTS_APP, "leaked")
            assert isinstance(rotation, Rotation)
            assert isinstance(await rotations.approve(APPROVER_TEAMS, rotation.id), Rotation)

            stored = await _until(rotations, rotation.id, {RotationState.STORED}, 30)
            # The one worker slot is free while the secret spreads: another job runs meanwhile.
            assert await app[SERVICES].jobs.enqueue("test.ping", key="ping")
            done = await _until(rotations, rotation.id, {RotationState.DONE, RotationState.FAILED}, 60)
            assert done.state is RotationState.DONE, done
            assert pings == [RotationState.STORED]
            assert stored.new_key_id == done.new_key_id

            proven = next(e for e in done.history if e.state is RotationState.PROVEN)
            attempts = int(proven.detail.split("after ")[1].split(" ")[0])
            assert attempts >= 2 and done.proof_attempts == attempts - 1
            proven_after = (
                proven.at - next(e.at for e in done.history if e.state is RotationState.ADDED)
            ).total_seconds()
            assert proven_after >= PROPAGATION - 1  # the fake refused it until the delay had passed

            records = b"\n".join(await every_value(app[SERVICES].jobs.saq.redis))
            for n in range(1, attempts):
                assert keys.rotation_job_key(rotation.id, f"prove-{n}").encode() in records


async def test_a_secret_never_accepted_fails_after_the_provers_budget_of_queued_requests() -> None:
    """Each run makes one token request and queues the next after the prover's pause; once the pauses
    would pass the deadline the rotation fails, the old secret kept. The queue is a list here, run by hand."""
    async with rig(prover_deadline=1.0) as r:
        r.entra.propagation = 3600  # never accepted
        waits: list[tuple[str, float]] = []

        async def later(rotation_id: str, phase: str, delay: float) -> bool:
            waits.append((phase, delay))
            return True

        r.rotations.later = later
        requested = await r.rotations.request(REQUESTER, PAYMENTS_APP, "leaked")
        assert isinstance(requested, Rotation)
        assert isinstance(await r.rotations.approve(APPROVER_TEAMS, requested.id), Rotation)
        current = await r.rotations.advance(requested.id)  # add, store, first request
        runs = 1
        while current is not None and current.state is RotationState.STORED:
            assert len(waits) == runs and waits[-1][0] == f"prove-{runs}"
            current = await r.rotations.advance(requested.id)  # what the queued job does
            runs += 1
        assert current is not None and current.state is RotationState.FAILED
        # rig: first pause 0.1 s doubling up to 0.5 s, 1 s in all: 0.1 + 0.2 + 0.4 fit, a fourth (0.5) does not
        assert [delay for _, delay in waits] == [0.1, 0.2, 0.4] and runs == 4
        assert "no token after 4 attempts" in (current.problem or "") and "old secret stays" in (current.problem or "")
        assert current.proof_attempts == 3
