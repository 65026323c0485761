"""Rotation behind an approval, through the use cases and the job step, with the real SDKs against the
fakes: who may approve, the steps request -> approved -> added -> stored -> proven -> done -> retired,
and every failure on the way (Graph throttling, lost answers, a policy, Key Vault refusing, a token
that never comes) ending in a state that leaves no unstored secret behind."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest

from bot.domain import Notice, NoticeReason
from bot.rotation_types import Rotation, RotationState
from cards.rotation_view import rotation_view
from handlers.rotation import RotationPolicy, vault_secret_name
from tests.redis_server import redis_server
from tests.rotation_setup import (
    APPROVER_SLACK,
    APPROVER_TEAMS,
    BUILD_AGENT_APP,
    NIGHTLY_APP,
    NIGHTLY_OBJECT,
    PAYMENTS_APP,
    PAYMENTS_OBJECT,
    POLICY,
    REQUESTER,
    STRANGER,
    Rig,
    rig,
)

ADD_PASSWORD = r"/addPassword$"
OLD_KEY = "62f746b4-84e6-4ceb-95bd-447e7184d454"  # payments-api's ci-2025, the one that ends first


async def _requested(r: Rig, app_id: str = PAYMENTS_APP) -> Rotation:
    rotation = await r.rotations.request(REQUESTER, app_id, "ci-2025 leaked in a build log", {"platform": "slack"})
    assert isinstance(rotation, Rotation), rotation
    return rotation


async def _approved(r: Rig, app_id: str = PAYMENTS_APP) -> Rotation:
    rotation = await _requested(r, app_id)
    approved = await r.rotations.approve(APPROVER_TEAMS, rotation.id)
    assert isinstance(approved, Rotation), approved
    return approved


def _refused(answer: object, reason: NoticeReason, words: str) -> None:
    assert isinstance(answer, Notice), answer
    assert answer.reason is reason and words in answer.text, answer


async def test_the_whole_flow_request_refusals_approval_steps_and_retire() -> None:
    async with rig() as r:
        rotation = await _requested(r)
        assert rotation.state is RotationState.REQUESTED
        assert (rotation.replaces, rotation.vault_name) == (OLD_KEY, "payments-api-client-secret")
        assert rotation.requester.user_id == "U0JONAS" and rotation.tenant_id

        _refused(await r.rotations.approve(REQUESTER, rotation.id), NoticeReason.REFUSED, "You asked for this")
        _refused(await r.rotations.approve(STRANGER, rotation.id), NoticeReason.REFUSED, "not an approver")
        assert (await r.rotations.store.get(rotation.id)).state is RotationState.REQUESTED  # type: ignore[union-attr]
        assert r.queued == [] and r.posts() == 0

        approved = await r.rotations.approve(APPROVER_SLACK, rotation.id)  # Slack user -> Entra by email
        assert isinstance(approved, Rotation) and approved.state is RotationState.APPROVED
        assert approved.approved_by is not None and approved.approved_by.user_id == "U0PRIYA"
        assert r.queued == [(rotation.id, "run")]
        _refused(await r.rotations.approve(APPROVER_TEAMS, rotation.id), NoticeReason.REFUSED, "already decided")
        _refused(await r.rotations.reject(APPROVER_TEAMS, rotation.id), NoticeReason.REFUSED, "already decided")

        done = await r.rotations.advance(rotation.id)
        assert done is not None and done.state is RotationState.DONE, done
        assert [e.state for e in done.history] == [
            RotationState.REQUESTED,
            RotationState.APPROVED,
            RotationState.ADDED,
            RotationState.STORED,
            RotationState.PROVEN,
            RotationState.DONE,
        ]
        assert r.posts() == 1
        assert await r.keys_marked(rotation.id) == [done.new_key_id]
        stored = r.vault.versions("payments-api-client-secret")
        assert len(stored) == 1 and stored[0].version == done.vault_version
        assert stored[0].tags == {"app-id": PAYMENTS_APP, "key-id": done.new_key_id, "rotation": rotation.id}
        assert stored[0].value[:3] == done.new_hint
        assert done.new_end is not None and stored[0].expires == int(done.new_end.timestamp())
        assert timedelta(days=179) < done.new_end - done.history[0].at <= timedelta(days=180)
        added_entry = done.history[2]
        assert added_entry.by == "secretbot" and added_entry.ids["new_key_id"] == done.new_key_id

        again = await r.rotations.advance(rotation.id)  # a job run again after it finished: nothing happens
        assert again is not None and again.state is RotationState.DONE and r.posts() == 1

        _refused(await r.rotations.retire(STRANGER, rotation.id), NoticeReason.REFUSED, "not an approver")
        retiring = await r.rotations.retire(APPROVER_TEAMS, rotation.id)
        assert isinstance(retiring, Rotation) and retiring.state is RotationState.RETIRING
        assert r.queued[-1] == (rotation.id, "retire")
        retired = await r.rotations.advance(rotation.id)
        assert retired is not None and retired.state is RotationState.RETIRED
        shown = "\n".join(rotation_view(retired).sections[1].lines)  # the steps, with the evidence for retiring
        assert "retire approved by" in shown and "the sign-in logs show no use of the old secret since" in shown
        present = await r.rotations.writer.password_key_ids(PAYMENTS_OBJECT)
        assert OLD_KEY not in present and done.new_key_id in present


async def test_retire_waits_while_the_old_secret_is_still_signing_in_until_the_grace_is_over() -> None:
    async with rig() as r:
        rotation = await _approved(r)
        done = await r.rotations.advance(rotation.id)
        assert done is not None and done.state is RotationState.DONE
        r.later(timedelta(hours=1))
        used = dict(r.graph.snapshot.sign_ins[0], id="5b0e4c2a-9d7f-4e1b-8a3c-6f2d1e0b9a87")
        used["createdDateTime"] = r.clock[0].strftime("%Y-%m-%dT%H:%M:%SZ")
        used["status"] = {"errorCode": 0}
        r.graph.use_snapshot(replace(r.graph.snapshot, sign_ins=(*r.graph.snapshot.sign_ins, used)))
        answer = await r.rotations.retire(APPROVER_TEAMS, rotation.id)
        _refused(answer, NoticeReason.REFUSED, "still used")
        assert (await r.rotations.store.get(rotation.id)).state is RotationState.DONE  # type: ignore[union-attr]
        r.later(timedelta(days=7))
        retiring = await r.rotations.retire(APPROVER_TEAMS, rotation.id)
        assert isinstance(retiring, Rotation) and retiring.state is RotationState.RETIRING
        assert "the grace period ended" in "\n".join(rotation_view(retiring).sections[1].lines)


async def test_a_request_expires_when_nobody_approves_in_time() -> None:
    async with rig() as r:
        rotation = await _requested(r)
        r.later(timedelta(hours=24, seconds=1))
        _refused(await r.rotations.approve(APPROVER_TEAMS, rotation.id), NoticeReason.EXPIRED, "expired")
        stored = await r.rotations.store.get(rotation.id)
        assert stored is not None and stored.state is RotationState.EXPIRED
        assert r.queued == [] and r.posts() == 0


async def test_reject_with_a_reason_ends_the_request_and_later_clicks_are_refused() -> None:
    async with rig() as r:
        rotation = await _requested(r)
        _refused(await r.rotations.reject(STRANGER, rotation.id, "no"), NoticeReason.REFUSED, "Only an approver")
        rejected = await r.rotations.reject(APPROVER_TEAMS, rotation.id, "do it after the release")
        assert isinstance(rejected, Rotation) and rejected.state is RotationState.REJECTED
        assert rejected.problem == "rejected: do it after the release"
        _refused(await r.rotations.approve(APPROVER_SLACK, rotation.id), NoticeReason.REFUSED, "already decided")
        assert r.queued == [] and r.posts() == 0


async def test_an_app_neither_tagged_nor_listed_is_refused_with_what_would_enable_it() -> None:
    async with rig() as r:
        answer = await r.rotations.request(REQUESTER, BUILD_AGENT_APP, "expired")
        _refused(answer, NoticeReason.REFUSED, "secretbot:rotate")
        assert isinstance(answer, Notice) and "SECRETBOT_ROTATION_APPS" in answer.text
        assert "Application.ReadWrite.OwnedBy" in answer.text
        _refused(await r.rotations.approve(APPROVER_TEAMS, "not-an-id"), NoticeReason.EXPIRED, "no such rotation")


async def test_an_app_tagged_secretbot_rotate_may_be_rotated_and_names_its_vault_secret_from_a_tag() -> None:
    assert vault_secret_name("Payments API (prod)", ()) == "payments-api-prod-client-secret"
    assert vault_secret_name("x", ("secretbot:keyvault-secret=payments-prod",)) == "payments-prod"
    async with rig(policy=RotationPolicy(approvers=POLICY.approvers)) as r:
        _refused(await r.rotations.request(REQUESTER, PAYMENTS_APP, "x"), NoticeReason.REFUSED, "secretbot:rotate")
        tags = ["secretbot:rotate", "secretbot:keyvault-secret=payments-prod"]
        apps = tuple(dict(a, tags=tags) if a["appId"] == PAYMENTS_APP else a for a in r.graph.snapshot.applications)
        r.graph.use_snapshot(replace(r.graph.snapshot, applications=apps))
        rotation = await _requested(r)
        assert rotation.vault_name == "payments-prod"


async def test_twenty_approvals_on_three_replicas_make_one_approval_and_one_add_password() -> None:
    with redis_server() as server:
        async with rig(redis_url=server.url) as first:
            rotation = await _requested(first)
            async with (
                rig(redis_url=server.url, graph=first.graph, entra=first.entra, vault=first.vault) as second,
                rig(redis_url=server.url, graph=first.graph, entra=first.entra, vault=first.vault) as third,
            ):
                replicas = [first, second, third]
                answers = await asyncio.gather(
                    *(replicas[i % 3].rotations.approve(APPROVER_TEAMS, rotation.id) for i in range(20))
                )
                approvals = [a for a in answers if isinstance(a, Rotation)]
                assert len(approvals) == 1
                assert all(isinstance(a, Notice) and "already decided" in a.text for a in answers if a not in approvals)
                queued = [q for replica in replicas for q in replica.queued]
                assert queued == [(rotation.id, "run")]
                # A job run twice at once (a duplicate delivery) still adds one secret.
                results = await asyncio.gather(
                    second.rotations.advance(rotation.id), third.rotations.advance(rotation.id)
                )
                assert any(r is not None and r.state is RotationState.DONE for r in results)
                assert first.posts() == 1
                assert len(await first.keys_marked(rotation.id)) == 1


@pytest.mark.parametrize("status", [429, 503])
async def test_add_password_throttled_or_failing_is_never_retried_blindly(status: int) -> None:
    async with rig() as r:
        applied = status != 429  # a 503 whose write went through: the secret exists, its value is lost
        r.graph.add_fault(ADD_PASSWORD, status, times=1, retry_after=1 if status == 429 else None, applied=applied)
        rotation = await _approved(r)
        done = await r.rotations.advance(rotation.id)
        assert done is not None and done.state is RotationState.DONE, done
        assert r.posts() == 2  # the failed one and one more, after reading the app's secrets
        assert await r.keys_marked(rotation.id) == [done.new_key_id]  # a secret whose value was lost is gone
        if applied:
            assert r.posts("removePassword") == 1


async def test_add_password_timing_out_after_it_was_applied_leaves_one_secret() -> None:
    async with rig(graph_timeout=1.0) as r:
        r.graph.add_fault(ADD_PASSWORD, 504, times=1, applied=True, delay=3.0)
        rotation = await _approved(r)
        done = await r.rotations.advance(rotation.id)
        assert done is not None and done.state is RotationState.DONE, done
        assert await r.keys_marked(rotation.id) == [done.new_key_id]  # the one whose answer was lost is gone
        assert r.posts("addPassword") == 2 and r.posts("removePassword") == 1
        assert r.vault.versions(done.vault_name)[-1].tags["key-id"] == done.new_key_id


async def test_add_password_failing_every_time_ends_failed_without_a_new_secret() -> None:
    async with rig() as r:
        r.graph.add_fault(ADD_PASSWORD, 503, applied=True)
        rotation = await _approved(r)
        failed = await r.rotations.advance(rotation.id)
        assert failed is not None and failed.state is RotationState.FAILED
        assert "did not confirm addPassword" in (failed.problem or "")
        assert await r.keys_marked(rotation.id) == []
        assert r.vault.versions(rotation.vault_name) == []


async def test_a_lifetime_policy_shortens_the_new_secret() -> None:
    async with rig() as r:
        rotation = await _approved(r, NIGHTLY_APP)
        done = await r.rotations.advance(rotation.id)
        assert done is not None and done.state is RotationState.DONE, done
        assert done.new_end is not None and done.new_start is not None
        assert done.new_end - done.new_start < timedelta(days=90)  # the sample's 90-day policy, not 180 days


async def test_a_policy_graph_enforces_but_the_bot_cannot_read_fails_the_rotation_with_graphs_reason() -> None:
    async with rig() as r:
        r.graph.add_fault(r"/policies/", 403)
        r.graph.add_fault(r"/appManagementPolicies", 403)
        rotation = await _approved(r, NIGHTLY_APP)
        failed = await r.rotations.advance(rotation.id)
        assert failed is not None and failed.state is RotationState.FAILED
        assert "CredentialInvalidLifetimeAsPerAppPolicy" in (failed.problem or "")
        present = await r.rotations.writer.password_key_ids(NIGHTLY_OBJECT)
        assert f"secretbot-rotation-{rotation.id}" not in present.values()


async def test_key_vault_refusing_the_write_removes_the_new_secret_again() -> None:
    async with rig() as r:
        r.vault.refuse(status=403)
        rotation = await _approved(r)
        failed = await r.rotations.advance(rotation.id)
        assert failed is not None and failed.state is RotationState.FAILED
        assert "Key Vault" in (failed.problem or "") and "removed again" in (failed.problem or "")
        assert await r.keys_marked(rotation.id) == []
        assert r.posts("addPassword") == 1 and r.posts("removePassword") == 1
        present = await r.rotations.writer.password_key_ids(PAYMENTS_OBJECT)
        assert OLD_KEY in present  # the old secret stays


async def test_a_token_that_never_comes_is_not_done_and_the_old_secret_stays() -> None:
    async with rig(prover_deadline=1.0) as r:
        r.entra.propagation = 3600
        rotation = await _approved(r)
        failed = await r.rotations.advance(rotation.id)
        assert failed is not None and failed.state is RotationState.FAILED
        assert RotationState.DONE not in [e.state for e in failed.history]
        assert "no token" in (failed.problem or "") and "old secret stays" in (failed.problem or "")
        present = await r.rotations.writer.password_key_ids(PAYMENTS_OBJECT)
        assert OLD_KEY in present


async def test_a_rotation_found_added_lost_its_value_so_that_secret_is_removed_and_a_new_one_added() -> None:
    """What a worker killed between addPassword and Key Vault leaves: the state `added` and a secret
    with the marker. The next run removes it and adds a new one."""
    async with rig() as r:
        rotation = await _approved(r)
        orphan = await r.rotations.writer.add_password(PAYMENTS_OBJECT, rotation.marker, rotation.expires_at)

        def as_if_added(current: Rotation) -> Rotation:
            return current.moved(RotationState.ADDED, "secretbot", current.requested_at, new_key_id=orphan.key_id)

        await r.rotations.store.change(rotation.id, as_if_added)
        done = await r.rotations.advance(rotation.id)
        assert done is not None and done.state is RotationState.DONE
        assert await r.keys_marked(rotation.id) == [done.new_key_id] and done.new_key_id != orphan.key_id
        assert r.vault.versions(done.vault_name)[-1].tags["key-id"] == done.new_key_id


async def test_a_rotation_whose_last_attempt_failed_ends_failed_and_keeps_the_old_secret() -> None:
    from bot.domain import DirectoryError

    async with rig() as r:
        rotation = await _approved(r)
        r.graph.add_fault(rf"/applications/{PAYMENTS_OBJECT}$", 403, method="GET")
        with pytest.raises(DirectoryError):
            await r.rotations.advance(rotation.id)
        assert (await r.rotations.store.get(rotation.id)).state is RotationState.APPROVED  # type: ignore[union-attr]
        await r.rotations.give_up(rotation.id, "PermissionDenied from Graph")
        failed = await r.rotations.store.get(rotation.id)
        assert failed is not None and failed.state is RotationState.FAILED
        assert "old secret stays" in (failed.problem or "") and r.posts() == 0
