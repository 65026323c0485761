"""Rotate an app's client secret behind a second person's approval.

`request` opens a rotation, `approve` / `reject` decide it (compare-and-set: one decision however many
clicks), and `advance`, run by a job keyed by the request id, walks it through add -> store -> prove
-> done. `retire` (an approver again) removes the old secret. Every step reads where the rotation
stands before acting, so a job run again after its worker died carries on instead of repeating.

The new secret's value lives only in `advance`'s local variables between addPassword and Key Vault;
a rotation found in `added` (its worker died holding the value) has lost it: that credential is
removed and a new one added.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from bot.credential_types import (
    GraphWriteError,
    NewPassword,
    ProofOutcome,
    SecretValue,
    VaultError,
    WriteOutcomeUnknown,
    WriteRefused,
    WriteThrottled,
)
from bot.domain import Application, Credential, DirectoryError, Notice, NoticeReason, StateUnavailable
from bot.ports import CredentialWriter, Directory, PeopleDirectory, RotationStore, SecretVault, TokenProver
from bot.rotation_types import FINAL, MARKER_PREFIX, WORKING, WRITE_ROLES, BotIdentity, Person, Rotation, RotationState
from handlers.inbound import Actor

log = logging.getLogger(__name__)
audit_log = logging.getLogger("secretbot.audit")

ROTATE_TAG = "secretbot:rotate"
VAULT_TAG_PREFIX = "secretbot:keyvault-secret="
CONTENT_TYPE = "application/x-entra-client-secret"
WORKER = "secretbot"
ADD_ATTEMPTS = 4  # addPassword tries: a throttle or a lost answer, then one more; beyond that Graph is down
MAX_THROTTLE_WAIT = 30.0  # seconds: a longer Retry-After is cut; the job's attempts cover the rest
MAX_REASON = 300
_ID = re.compile(r"[0-9a-f]{16}")
_SLUG = re.compile(r"[^a-z0-9]+")

Enqueue = Callable[[str, str], Awaitable[bool]]  # (rotation id, phase) -> queued
Later = Callable[[str, str, float], Awaitable[bool]]  # (rotation id, phase, seconds from now) -> queued
Identity = Callable[[], Awaitable[BotIdentity | None]]  # who the bot is, from its token (bot.graph.identity)


@dataclass(frozen=True)
class RotationPolicy:
    """Who may approve, how long things take, which apps: read from the settings (bot/settings.py)."""

    approvers: tuple[str, ...] = ()  # Slack user ids, Entra object ids, `group:<object id>`
    approval_ttl: timedelta = timedelta(hours=24)
    lifetime_days: int = 180
    retire_grace: timedelta = timedelta(days=7)
    apps: tuple[str, ...] = ()  # app ids or `tag:NAME`, beside the `secretbot:rotate` tag

    @property
    def groups(self) -> list[str]:
        return [a.removeprefix("group:").lower() for a in self.approvers if a.startswith("group:")]

    @property
    def people(self) -> frozenset[str]:
        return frozenset(a.lower() for a in self.approvers if not a.startswith("group:"))


@dataclass(frozen=True)
class Observer:
    """What the metrics want to hear of (bot/metrics.py); nothing by default."""

    finished: Callable[[str], None] = lambda outcome: None  # a rotation ended: done, failed, rejected, ...
    approved: Callable[[float], None] = lambda seconds: None  # request -> approval latency


@dataclass
class Rotations:
    """The rotation use cases over their ports; one per process (bot/app.py builds it)."""

    store: RotationStore
    writer: CredentialWriter
    people: PeopleDirectory
    prover: TokenProver
    vault: SecretVault
    directory: Directory
    enqueue: Enqueue
    now: Callable[[], datetime]
    policy: RotationPolicy = field(default_factory=RotationPolicy)
    observer: Observer = field(default_factory=Observer)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    on_change: Callable[[Rotation], Awaitable[None]] | None = None  # posts the card's new state
    lease_wait: float = 20.0  # seconds a run waits for another run's lease to lapse (> keys.ROTATION_LEASE)
    lease_renew: float = 5.0  # keys.ROTATION_LEASE_RENEW
    identity: Identity | None = None  # None: the bot's permissions and ownership are not checked
    # Queues the job again after a pause: each token request of the proof is one run, so no worker waits
    # out the propagation. None: the proof waits in place (a run without a queue to come back through).
    later: Later | None = None

    # --- request ----------------------------------------------------------------------------------

    async def request(
        self, actor: Actor, app_id: str, reason: str, where: dict[str, str] | None = None
    ) -> Rotation | Notice:
        """Open a rotation of `app_id`'s client secret, or say why it cannot be rotated."""
        try:
            lookup = await self.directory.lookup(app_id.strip().lower())
        except DirectoryError as error:
            return Notice(NoticeReason.UNAVAILABLE, f"Microsoft Graph could not be asked about the app: {error}")
        app = lookup.application
        if app is None:
            return Notice(NoticeReason.REFUSED, f"No app registration with app id {app_id} in this tenant.")
        why_not = await self.why_not_rotatable(app)
        if why_not:
            return Notice(NoticeReason.REFUSED, why_not)
        tags = app.tags if app.tags is not None else await self.writer.application_tags(app.object_id)
        now = self.now()
        old = _secret_to_replace(app, now)
        rotation = Rotation(
            id=secrets.token_hex(8),
            app_id=app.app_id,
            object_id=app.object_id,
            app_name=app.display_name,
            tenant_id=lookup.tenant.id if lookup.tenant else "",
            requester=_person(actor),
            reason=(reason.strip() or "not given")[:MAX_REASON],
            requested_at=now,
            expires_at=now + self.policy.approval_ttl,
            lifetime_days=self.policy.lifetime_days,
            vault_name=vault_secret_name(app.display_name, tags),
            vault_location=self.vault.location,
            replaces=old.key_id if old else None,
            replaces_hint=old.hint if old else None,
            where=dict(where or {}),
        ).moved(RotationState.REQUESTED, _person(actor).shown, now, f"reason: {reason.strip() or 'not given'}")
        await self.store.create(rotation)
        _audit(rotation)
        await self._changed(rotation)  # the approvers' channel gets its copy
        return rotation

    async def why_not_rotatable(self, app: Application) -> str | None:
        """None when this app may be rotated; else what would enable it. Checked before a button is
        offered and again when a request is made: the app is tagged or listed, the bot's token carries
        an application permission that writes apps, and the bot is among the app's owners (as the
        lookup that found `app` read them: no request of its own)."""
        tags = app.tags
        if tags is None:
            try:
                tags = await self.writer.application_tags(app.object_id)
            except (DirectoryError, GraphWriteError) as error:
                return f"The bot could not read the app's tags to see whether it may rotate it: {error}"
        listed = app.app_id.lower() in {a.lower() for a in self.policy.apps}
        tagged = ROTATE_TAG in tags or any(a.startswith("tag:") and a[4:] in tags for a in self.policy.apps)
        if not (listed or tagged):
            return (
                f"{app.display_name} is not set up for rotation by the bot. To enable it, add the tag "
                f"`{ROTATE_TAG}` to the app registration, or list its app id in SECRETBOT_ROTATION_APPS; "
                "the bot also needs Application.ReadWrite.OwnedBy and to be an owner of the app."
            )
        return await self._why_not_permitted(app)

    async def _why_not_permitted(self, app: Application) -> str | None:
        if self.identity is None:
            return None
        try:
            me = await self.identity()
        except Exception as error:  # azure-identity raises its own types; any of them means "cannot tell"
            log.warning("rotation: the bot's own token could not be read (%s)", type(error).__name__)
            me = None
        if me is None:
            return (
                f"The bot could not read its own permissions from its access token, so it cannot tell whether "
                f"it may rotate {app.display_name}; nothing is offered until it can."
            )
        missing = []
        if not me.may_write_apps:
            missing.append(
                f"the bot's app lacks the {WRITE_ROLES[0]} application permission (admin consent): grant it "
                "on the bot's app registration under API permissions, Microsoft Graph, Application permissions"
            )
        owners = {(o.object_id or "").lower() for o in app.owners}
        if me.object_id is None or me.object_id.lower() not in owners:
            missing.append(
                f"the bot is not an owner of app {app.display_name} ({app.app_id}): add {me.shown} as an owner "
                "of the app registration"
            )
        if not missing:
            return None
        return f"The bot cannot rotate {app.display_name}'s secret yet: " + "; and ".join(missing) + "."

    # --- decide -----------------------------------------------------------------------------------

    async def approve(self, actor: Actor, rotation_id: str) -> Rotation | Notice:
        rotation = await self._get(rotation_id)
        if isinstance(rotation, Notice):
            return rotation
        refusal = await self._decision_refused(actor, rotation, "approve")
        if refusal is not None:
            return refusal
        now = self.now()
        who = _person(actor)

        def approve(current: Rotation) -> Rotation | None:
            if current.state is not RotationState.REQUESTED or now >= current.expires_at:
                return None
            return current.moved(RotationState.APPROVED, who.shown, now, approved_by=who, approved_at=now)

        updated, changed = await self.store.change(rotation_id, approve)
        if updated is None or not changed:
            return await self._refusal_for_decided(rotation_id)
        _audit(updated)
        self.observer.approved((now - updated.requested_at).total_seconds())
        await self.enqueue(updated.id, "run")
        await self._changed(updated)  # every copy of the card, not only the one clicked
        return updated

    async def reject(self, actor: Actor, rotation_id: str, reason: str = "") -> Rotation | Notice:
        rotation = await self._get(rotation_id)
        if isinstance(rotation, Notice):
            return rotation
        if not await self.is_approver(actor) and _person(actor).user_id != rotation.requester.user_id:
            return Notice(NoticeReason.REFUSED, "Only an approver (or the person who asked) can reject this request.")
        now, who = self.now(), _person(actor)
        why = reason.strip()[:MAX_REASON] or "no reason given"

        def reject(current: Rotation) -> Rotation | None:
            if current.state is not RotationState.REQUESTED:
                return None
            return current.moved(RotationState.REJECTED, who.shown, now, why, problem=f"rejected: {why}")

        updated, changed = await self.store.change(rotation_id, reject)
        if updated is None or not changed:
            return await self._refusal_for_decided(rotation_id)
        _audit(updated)
        self.observer.finished("rejected")
        await self._changed(updated)
        return updated

    async def is_approver(self, actor: Actor) -> bool:
        people, groups = self.policy.people, self.policy.groups
        if actor.user_id.lower() in people or (actor.aad_object_id or "").lower() in people:
            return True
        entra_id = actor.aad_object_id
        if entra_id is None and actor.email and (people or groups):
            try:
                user = await self.people.user_by_email(actor.email)
            except DirectoryError as error:
                log.warning("rotation: approver lookup failed (%s)", type(error).__name__)
                return False
            entra_id = user.id if user else None
        if entra_id is None:
            return False
        if entra_id.lower() in people:
            return True
        if not groups:
            return False
        try:
            return bool(await self.people.member_groups(entra_id, groups))
        except DirectoryError as error:
            log.warning("rotation: group membership check failed (%s)", type(error).__name__)
            return False

    async def _decision_refused(self, actor: Actor, rotation: Rotation, verb: str) -> Notice | None:
        if rotation.state is not RotationState.REQUESTED:
            return _already(rotation)
        now = self.now()
        if now >= rotation.expires_at:
            await self._expire(rotation.id, now)
            return Notice(NoticeReason.EXPIRED, "This request has expired: nobody approved it in time. Ask again.")
        if _person(actor).user_id == rotation.requester.user_id and actor.platform == rotation.requester.platform:
            return Notice(
                NoticeReason.REFUSED, f"You asked for this rotation, so you cannot {verb} it: another approver must."
            )
        if not await self.is_approver(actor):
            return Notice(NoticeReason.REFUSED, f"You are not an approver for rotations, so you cannot {verb} it.")
        return None

    async def expire_overdue(self) -> int:
        """Expire every request whose approval window has closed, and update its card: run on a
        schedule (bot/app.py), so a request nobody clicks on does not stay "requested". Reads only the
        due ids from the deadline index. Returns how many it expired."""
        now = self.now()
        expired = 0
        for rotation_id in await self.store.due(now):
            if await self._expire(rotation_id, now):
                expired += 1
            await self.store.settled(rotation_id)
        return expired

    async def _expire(self, rotation_id: str, now: datetime) -> bool:
        def expire(current: Rotation) -> Rotation | None:
            if current.state is not RotationState.REQUESTED or now < current.expires_at:
                return None
            return current.moved(RotationState.EXPIRED, WORKER, now, "nobody approved in time", problem="expired")

        updated, changed = await self.store.change(rotation_id, expire)
        if updated is None or not changed:
            return False
        _audit(updated)
        self.observer.finished("expired")
        await self._changed(updated)
        return True

    async def _refusal_for_decided(self, rotation_id: str) -> Notice:
        current = await self.store.get(rotation_id)
        if current is None:
            return _gone()
        if current.state is RotationState.REQUESTED:  # it expired between the check and the write
            return Notice(NoticeReason.EXPIRED, "This request has expired: nobody approved it in time. Ask again.")
        return _already(current)

    async def _get(self, rotation_id: str) -> Rotation | Notice:
        if not _ID.fullmatch(rotation_id or ""):
            return _gone()
        try:
            rotation = await self.store.get(rotation_id)
        except StateUnavailable:
            return Notice(NoticeReason.UNAVAILABLE, "The bot's state store is not answering; nothing changed.")
        return rotation if rotation is not None else _gone()

    # --- retire -----------------------------------------------------------------------------------

    async def retire(self, actor: Actor, rotation_id: str) -> Rotation | Notice:
        """Remove the old secret: an approver's click, once the old one is unused or the grace is over."""
        rotation = await self._get(rotation_id)
        if isinstance(rotation, Notice):
            return rotation
        if not await self.is_approver(actor):
            return Notice(
                NoticeReason.REFUSED, "You are not an approver for rotations, so you cannot retire the old secret."
            )
        if rotation.state in (RotationState.RETIRING, RotationState.RETIRED):
            return _already(rotation)
        if rotation.state is not RotationState.DONE:
            if rotation.state in FINAL:
                return Notice(
                    NoticeReason.REFUSED, f"This rotation is {rotation.state.value}: there is nothing to retire."
                )
            return Notice(NoticeReason.REFUSED, "The rotation is not done yet: the old secret stays until it is.")
        if rotation.replaces is None:
            return Notice(NoticeReason.REFUSED, "This rotation replaced no secret, so there is nothing to retire.")
        allowed, evidence = await self.retire_evidence(rotation)
        if not allowed:
            return Notice(NoticeReason.REFUSED, evidence)
        now, who = self.now(), _person(actor)

        def retire(current: Rotation) -> Rotation | None:
            if current.state is not RotationState.DONE:
                return None
            return current.moved(
                RotationState.RETIRING, who.shown, now, detail=evidence, retired_by=who, replaces=current.replaces
            )

        updated, changed = await self.store.change(rotation_id, retire)
        if updated is None or not changed:
            return await self._refusal_for_decided(rotation_id)
        _audit(updated)
        await self.enqueue(updated.id, "retire")
        return updated

    async def retire_evidence(self, rotation: Rotation) -> tuple[bool, str]:
        """Whether the old secret may go, and the evidence either way (the card shows it). Allowed when
        the sign-in logs show no use of the old key since the new one started, or once the grace period
        is over."""
        now = self.now()
        since = rotation.new_start or rotation.approved_at or rotation.requested_at
        if now >= since + self.policy.retire_grace:
            return True, f"the grace period ended {(since + self.policy.retire_grace):%Y-%m-%d %H:%M} UTC"
        try:
            activity = await self.directory.activity(
                rotation.app_id, rotation.object_id, correlation_id=None, since=since
            )
        except DirectoryError:
            activity = None
        if activity is None or activity.missing_permissions or "sign-in" in activity.not_in_source:
            return False, (
                "The sign-in logs cannot be read here, so the bot cannot tell whether the old secret is still in "
                f"use. It can be retired after {(since + self.policy.retire_grace):%Y-%m-%d %H:%M} UTC."
            )
        old = (rotation.replaces or "").lower()
        used = [
            s.created for s in activity.sign_ins if (s.credential_key_id or "").lower() == old and s.created >= since
        ]
        if used:
            return False, (
                f"The old secret was still used at {max(used):%Y-%m-%d %H:%M} UTC, after the new one was added. "
                "Update the clients to the new secret in Key Vault; it can be retired once they stop using the old "
                f"one, or after {(since + self.policy.retire_grace):%Y-%m-%d %H:%M} UTC."
            )
        return True, f"the sign-in logs show no use of the old secret since {since:%Y-%m-%d %H:%M} UTC"

    # --- the job ----------------------------------------------------------------------------------

    async def advance(self, rotation_id: str) -> Rotation | None:
        """Carry the rotation as far as it goes now; safe to run again at any point, and one run at a
        time: a second run waits for the first's lease (or its lapse, when its worker died)."""
        owner = secrets.token_hex(8)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.lease_wait
        while not await self.store.hold(rotation_id, owner):
            if loop.time() > give_up:
                log.info("rotation %s: another worker is advancing it", rotation_id)
                return await self.store.get(rotation_id)
            await asyncio.sleep(0.2)
        renewing = asyncio.create_task(self._keep_lease(rotation_id, owner, asyncio.current_task()))
        try:
            return await self._advance(rotation_id)
        finally:
            renewing.cancel()
            await self.store.release(rotation_id, owner)

    async def _keep_lease(self, rotation_id: str, owner: str, run: asyncio.Task[object] | None) -> None:
        while True:
            await asyncio.sleep(self.lease_renew)
            try:
                held = await self.store.hold(rotation_id, owner)
            except StateUnavailable:
                held = False
            if not held:  # another run may be acting now: stop rather than act twice
                log.warning("rotation %s: lost its lease; stopping this run", rotation_id)
                if run is not None:
                    run.cancel()
                return

    async def _advance(self, rotation_id: str) -> Rotation | None:
        for _ in range(12):  # each round moves one state forward; a loop is a bug, not a reason to spin
            rotation = await self.store.get(rotation_id)
            if rotation is None:
                return None
            state = rotation.state
            if state is RotationState.APPROVED:
                if await self._add_store_prove(rotation):
                    return await self.store.get(rotation_id)  # the proof goes on in a later run
            elif state is RotationState.ADDED:
                await self._value_lost(rotation)
            elif state is RotationState.STORED:
                if await self._prove_stored(rotation):
                    return await self.store.get(rotation_id)
            elif state is RotationState.PROVEN:
                # A secret an addPassword added after its answer was lost (and after we looked) goes too.
                await self._remove_marked(
                    rotation, "a stray secret of this rotation, its value lost", keep=rotation.new_key_id
                )
                await self._move(rotation, RotationState.PROVEN, RotationState.DONE, "rotation done")
            elif state is RotationState.RETIRING:
                await self._retire_old(rotation)
            else:
                return rotation
        return await self.store.get(rotation_id)

    async def give_up(self, rotation_id: str, why: str) -> None:
        """The job's last attempt failed: end the rotation where it stands, so it is not left half done.
        A new secret whose value was never stored is removed; a retire goes back to done."""
        rotation = await self.store.get(rotation_id)
        if rotation is None or rotation.state not in WORKING:
            return
        if rotation.state is RotationState.RETIRING:
            await self._move(rotation, RotationState.RETIRING, RotationState.DONE, f"retire failed: {why}")
            return
        if rotation.state is RotationState.ADDED and rotation.new_key_id:
            try:
                await self.writer.remove_password(rotation.object_id, rotation.new_key_id)
            except (GraphWriteError, DirectoryError) as error:
                log.warning(
                    "rotation %s: the unstored secret could not be removed (%s)", rotation.id, type(error).__name__
                )
        await self._fail(rotation, f"gave up after repeated failures: {why}. The old secret stays")

    async def _add_store_prove(self, rotation: Rotation) -> bool:
        """True when the new secret is stored and its proof continues in a later run."""
        # Leftovers of an earlier run that died after addPassword: their value is lost, so they go.
        await self._remove_marked(rotation, "added by an earlier attempt whose value was lost")
        policy = await self.writer.password_policy(rotation.object_id)
        if not policy.passwords_allowed:
            await self._fail(
                rotation,
                f"the app management policy {policy.policy_id} allows no new client secrets on this app "
                "(certificates only); rotate with a certificate instead",
            )
            return False
        start = self.now()
        end = policy.cap(start, start + timedelta(days=rotation.lifetime_days))
        added = await self._add(rotation, end)
        if added is None:
            return False
        return await self._after_add(rotation, added)

    async def _after_add(self, rotation: Rotation, added: NewPassword) -> bool:
        current = await self._move(
            rotation,
            RotationState.APPROVED,
            RotationState.ADDED,
            f"secret added, hint {added.hint}, ends {added.end:%Y-%m-%d}",
            new_key_id=added.key_id,
            new_hint=added.hint,
            new_start=added.start,
            new_end=added.end,
        )
        if current is None:  # the record moved on without us: this secret's value would be lost
            await self.writer.remove_password(rotation.object_id, added.key_id)
            return False
        try:
            stored = await self.vault.store(
                rotation.vault_name,
                added.value,
                content_type=CONTENT_TYPE,
                tags={"app-id": rotation.app_id, "key-id": added.key_id, "rotation": rotation.id},
                expires_on=added.end,
            )
        except VaultError as error:
            await self.writer.remove_password(rotation.object_id, added.key_id)
            await self._fail(
                current,
                f"Key Vault did not store the new secret ({error}); the new secret was removed again",
                expected=RotationState.ADDED,
            )
            return False
        stored_rotation = await self._move(
            current,
            RotationState.ADDED,
            RotationState.STORED,
            f"stored in Key Vault {rotation.vault_name} version {stored.version}",
            vault_version=stored.version,
            vault_name=rotation.vault_name,
        )
        return stored_rotation is not None and await self._prove(stored_rotation, added.value)

    async def _add(self, rotation: Rotation, end: datetime) -> NewPassword | None:
        problem = "Microsoft Graph did not answer addPassword"
        for _ in range(ADD_ATTEMPTS):
            try:
                added = await self.writer.add_password(rotation.object_id, rotation.marker, end)
                return added
            except WriteThrottled as throttled:
                problem = str(throttled)
                await self.sleep(min(throttled.retry_after or 2.0, MAX_THROTTLE_WAIT))
            except WriteOutcomeUnknown as unknown:
                problem = str(unknown)
                # It may have been added: its value never reached us, so it must not stay.
                await self._remove_marked(rotation, "addPassword's answer was lost; the secret it may have added goes")
            except WriteRefused as refused:
                missing = f" The bot needs {refused.permission}." if refused.permission else ""
                await self._fail(rotation, f"{refused}.{missing}")
                return None
        await self._fail(rotation, problem)
        return None

    async def _remove_marked(self, rotation: Rotation, why: str, keep: str | None = None) -> None:
        present = await self.writer.password_key_ids(rotation.object_id)
        for key_id, name in present.items():
            if name == rotation.marker and key_id != keep:
                await self.writer.remove_password(rotation.object_id, key_id)
                audit_log.info("rotation %s app=%s removed key_id=%s: %s", rotation.id, rotation.object_id, key_id, why)

    async def _value_lost(self, rotation: Rotation) -> None:
        """The worker holding the value died after addPassword, before Key Vault: remove and start over."""
        if rotation.new_key_id:
            await self.writer.remove_password(rotation.object_id, rotation.new_key_id)
        await self._move(
            rotation,
            RotationState.ADDED,
            RotationState.APPROVED,
            f"the new secret {rotation.new_key_id} was removed: its value was lost before it was stored",
            new_key_id=None,
            new_hint=None,
            new_start=None,
            new_end=None,
        )

    async def _prove_stored(self, rotation: Rotation) -> bool:
        try:
            value = await self.vault.read(rotation.vault_name, rotation.vault_version or "")
        except VaultError as error:
            await self._fail(
                rotation,
                f"the stored secret could not be read back to prove it ({error})",
                expected=RotationState.STORED,
            )
            return False
        return await self._prove(rotation, value)

    async def _prove(self, rotation: Rotation, value: SecretValue) -> bool:
        """Ask for a token with the new secret. With a queue (`later`), one request per run: when it is
        not yet accepted, the count is kept on the record and the job comes back after the prover's
        next pause. True when it will come back."""
        if self.later is None:
            proof = await self.prover.prove(rotation.tenant_id, rotation.app_id, value)
            attempts = proof.attempts
        else:
            proof = await self.prover.attempt(rotation.tenant_id, rotation.app_id, value)
            attempts = rotation.proof_attempts + proof.attempts
        if proof.outcome is ProofOutcome.PROVEN:
            await self._move(
                rotation, RotationState.STORED, RotationState.PROVEN, f"token issued after {attempts} attempt(s)"
            )
            return False
        detail = proof.detail
        if self.later is not None and proof.outcome is not ProofOutcome.REFUSED:
            pause = self.prover.pause_after(attempts)
            if pause is not None:
                return await self._prove_later(rotation, attempts, pause)
            detail = f"no token after {attempts} attempts: {proof.detail}"
        await self._fail(
            rotation,
            f"the new secret got no token: {detail}. The old secret stays; the new one is in Key Vault",
            expected=RotationState.STORED,
        )
        return False

    async def _prove_later(self, rotation: Rotation, attempts: int, pause: float) -> bool:
        def counted(current: Rotation) -> Rotation | None:
            if current.state is not RotationState.STORED or current.proof_attempts != rotation.proof_attempts:
                return None  # another run got further: it carries on
            return replace(current, proof_attempts=attempts)

        _, changed = await self.store.change(rotation.id, counted)
        if not changed or self.later is None:
            return changed
        await self.later(rotation.id, f"prove-{attempts}", pause)
        log.info("rotation %s: no token yet after %d attempt(s); trying again in %.0f s", rotation.id, attempts, pause)
        return True

    async def _retire_old(self, rotation: Rotation) -> None:
        if rotation.replaces:
            await self.writer.remove_password(rotation.object_id, rotation.replaces)
        await self._move(
            rotation, RotationState.RETIRING, RotationState.RETIRED, f"old secret {rotation.replaces} removed"
        )

    async def _move(
        self, rotation: Rotation, expected: RotationState, state: RotationState, detail: str, **changes: object
    ) -> Rotation | None:
        now = self.now()

        def move(current: Rotation) -> Rotation | None:
            if current.state is not expected:
                return None
            return current.moved(state, WORKER, now, detail, **changes)

        updated, changed = await self.store.change(rotation.id, move)
        if updated is not None and changed:
            _audit(updated)
            if state in (RotationState.DONE, RotationState.RETIRED):
                self.observer.finished(state.value)
            await self._changed(updated)
            return updated
        return None

    async def _fail(self, rotation: Rotation, problem: str, *, expected: RotationState | None = None) -> None:
        await self._move(rotation, expected or rotation.state, RotationState.FAILED, problem, problem=problem)
        self.observer.finished("failed")

    async def _changed(self, rotation: Rotation) -> None:
        if self.on_change is None:
            return
        try:
            await self.on_change(rotation)
        except Exception as error:  # a card that cannot be updated must not stop the rotation
            log.warning("rotation %s: card not updated (%s)", rotation.id, type(error).__name__)


def vault_secret_name(display_name: str, tags: tuple[str, ...]) -> str:
    """The app's `secretbot:keyvault-secret=NAME` tag, else its display name in lower case with every
    run of other characters turned into one dash, plus `-client-secret` (at most 127 characters)."""
    for tag in tags:
        if tag.startswith(VAULT_TAG_PREFIX) and tag[len(VAULT_TAG_PREFIX) :]:
            return tag[len(VAULT_TAG_PREFIX) :]
    slug = _SLUG.sub("-", display_name.lower()).strip("-") or "app"
    return f"{slug[:113]}-client-secret"


def is_marker(display_name: str | None) -> bool:
    return bool(display_name and display_name.startswith(MARKER_PREFIX))


def _secret_to_replace(app: Application, now: datetime) -> Credential | None:
    """The secret a rotation replaces: the one that ends first among those not added by a rotation."""
    candidates = [c for c in app.secrets if not is_marker(c.display_name)]
    if not candidates:
        return None
    return min(candidates, key=lambda c: c.end or now)


def _person(actor: Actor) -> Person:
    return Person(actor.platform, actor.user_id, actor.name)


def _gone() -> Notice:
    return Notice(NoticeReason.EXPIRED, "There is no such rotation request (it is too old, or never existed).")


def _already(rotation: Rotation) -> Notice:
    by = rotation.history[-1].by if rotation.history else "someone"
    return Notice(
        NoticeReason.REFUSED, f"This request was already decided: it is {rotation.state.value} ({by}). Nothing changed."
    )


def _audit(rotation: Rotation) -> None:
    """One structured line per transition (the same entry is in the record's history)."""
    entry = rotation.history[-1]
    ids = " ".join(f"{k}={v}" for k, v in sorted(entry.ids.items()))
    audit_log.info(
        "rotation id=%s state=%s by=%s app_id=%s object_id=%s at=%s %s detail=%r",
        rotation.id,
        entry.state.value,
        entry.by,
        rotation.app_id,
        rotation.object_id,
        entry.at.isoformat(),
        ids,
        entry.detail,
    )
