"""The rotation buttons and the `rotate` command, answered with the request's card or a Notice to the
person who pressed (every refusal changes nothing). The use cases are in handlers/rotation.py."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable
from dataclasses import replace
from typing import TYPE_CHECKING

from bot.credential_types import GraphWriteError
from bot.domain import (
    Application,
    Diagnosis,
    DirectoryError,
    InventoryCredential,
    Notice,
    NoticeReason,
    StateUnavailable,
    Verb,
)
from bot.expiry import Digest, RotationPointer, rotation_candidate
from bot.rotation_types import Rotation, RotationOffer
from handlers.diagnose import diagnose
from handlers.inbound import Actor, Deps, InboundAction
from handlers.warning_actions import ROTATION_NOT_SET_UP

if TYPE_CHECKING:
    from handlers.rotation import Rotations

log = logging.getLogger(__name__)

# The causes where a new secret is the fix; a diagnosis with one of them offers the button.
ROTATION_CAUSES = frozenset(
    {"expired_secret_in_use", "all_secrets_expired", "secret_expiring_soon", "secret_value_pasted"}
)
NOT_SET_UP = (
    "Rotation is not set up for this bot, so nothing was requested (it needs Graph access, a Key Vault in "
    "KEYVAULT_URL and approvers in SECRETBOT_APPROVERS). "
    + ROTATION_NOT_SET_UP.split(", so nothing was requested. ")[-1]
)
UNAVAILABLE = "The bot's state store is not answering, so nothing changed. Try again in a minute."
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ROTATE = re.compile(r"\s*/?rotate\b\s*(\S*)\s*(.*)\Z", re.IGNORECASE | re.DOTALL)
_REJECT = re.compile(r"\s*/?reject\s+([0-9a-f]{16})\b\s*(.*)\Z", re.IGNORECASE | re.DOTALL)
ROTATE_USAGE = "Write `rotate <app id> [reason]`, e.g. `rotate dc36fc90-2248-4d70-aca4-a1a9f5b19f71 leaked in a log`."
NOT_SET_UP_WHY = (
    "Rotating from chat is not set up for this bot: it needs a Key Vault (KEYVAULT_URL), approvers "
    "(SECRETBOT_APPROVERS) and apps tagged secretbot:rotate or listed in SECRETBOT_ROTATION_APPS."
)


async def request_rotation(action: InboundAction, deps: Deps) -> Diagnosis | Notice:
    """Request rotation: on a diagnosis card the id is the app id; on an expiry warning, the digest's id."""
    rotations = deps.rotations
    if rotations is None:
        return Notice(NoticeReason.NOT_SET_UP, NOT_SET_UP)
    app_id, reason = action.id.lower(), "asked from a diagnosis card"
    warning = from_a_warning(action.verb, action.id)
    if warning:
        found = await _from_digest(action.id, deps)
        if isinstance(found, Notice):
            return found
        app_id, reason = found
    where = {"platform": action.actor.platform, "channel": action.conversation_id}
    # A diagnosis card is replaced by the answer: the worker updates that message as the rotation moves.
    # A warning stays (the adapter posts the request beside it and follows that message instead).
    if action.message_id and not warning:
        where["message_id"] = action.message_id
    if action.reference:
        where["reference"] = action.reference
    return await _answer(deps, rotations.request(action.actor, app_id, reason, where))


def from_a_warning(verb: str, item: str) -> bool:
    """Request rotation pressed on a warning digest (the button carries the digest's id) rather than on
    a diagnosis card (an app id). Such a warning lists other credentials too and later scans update
    it, so the request goes beside it and the warning only points at the request."""
    return verb == Verb.ROTATION_REQUEST.value and not _GUID.fullmatch(item.lower())


async def warning_pointing_at(digest_id: str, rotation: Rotation, deps: Deps) -> Digest | None:
    """Once the adapter has posted the request beside the warning it was asked from: the warning records
    it (once, however often this runs) and comes back to be drawn again with a line per rotation
    requested from it. None when the store cannot be reached: the warning then stays as it was."""
    pointer = RotationPointer(
        rotation.id, rotation.app_name or rotation.app_id, rotation.requester.shown, rotation.requested_at
    )
    try:
        await deps.state.warnings.point_at_rotation(digest_id[:64], pointer)
        return await deps.state.warnings.digest(digest_id[:64])
    except StateUnavailable as error:  # the request stands; only the warning's pointer is missing
        log.warning("rotation: warning not pointed at request %s (%s)", rotation.id, error.reason)
        return None


async def approve_rotation(action: InboundAction, deps: Deps) -> Diagnosis | Notice:
    if deps.rotations is None:
        return Notice(NoticeReason.NOT_SET_UP, NOT_SET_UP)
    return await _answer(deps, deps.rotations.approve(action.actor, action.id))


async def reject_rotation(action: InboundAction, deps: Deps) -> Diagnosis | Notice:
    if deps.rotations is None:
        return Notice(NoticeReason.NOT_SET_UP, NOT_SET_UP)
    return await _answer(deps, deps.rotations.reject(action.actor, action.id))


async def retire_old_secret(action: InboundAction, deps: Deps) -> Diagnosis | Notice:
    if deps.rotations is None:
        return Notice(NoticeReason.NOT_SET_UP, NOT_SET_UP)
    return await _answer(deps, deps.rotations.retire(action.actor, action.id))


def is_rotation_command(text: str) -> bool:
    return _ROTATE.match(text) is not None or _REJECT.match(text) is not None


async def rotation_command(text: str, actor: Actor, conversation_id: str, deps: Deps) -> Diagnosis | Notice:
    """`rotate <app id> [reason]` opens a request; `reject <request id> [reason]` rejects one with a reason."""
    rotations = deps.rotations
    if rotations is None:
        return Notice(NoticeReason.NOT_SET_UP, NOT_SET_UP)
    rejected = _REJECT.match(text)
    if rejected:
        return await _answer(deps, rotations.reject(actor, rejected.group(1).lower(), rejected.group(2)))
    asked = _ROTATE.match(text)
    app_id = asked.group(1).lower() if asked else ""
    if not _GUID.fullmatch(app_id):
        return Notice(NoticeReason.REFUSED, ROTATE_USAGE)
    where = {"platform": actor.platform, "channel": conversation_id}
    reason = (asked.group(2) if asked else "") or "asked with the rotate command"
    return await _answer(deps, rotations.request(actor, app_id, reason, where))


async def offer_rotation(diagnosis: Diagnosis, deps: Deps) -> Diagnosis:
    """A diagnosis whose cause a new secret fixes gets a Request rotation button, or says why not."""
    primary = diagnosis.primary
    if primary is None or primary.cause.value not in ROTATION_CAUSES or diagnosis.app is None:
        return diagnosis
    rotations = deps.rotations
    if rotations is None:
        return replace(diagnosis, rotation_offer=RotationOffer(diagnosis.app.app_id, NOT_SET_UP_WHY))
    why_not = await rotations.why_not_rotatable(diagnosis.app)
    return replace(diagnosis, rotation_offer=RotationOffer(diagnosis.app.app_id, why_not))


async def why_not_rotatable(credential: InventoryCredential, rotations: Rotations | None) -> str | None:
    """For a warning digest's row: None when the bot may rotate its app, else why not (from what the
    scan read of the app: its tags and owners; no Graph request)."""
    if rotations is None:
        return NOT_SET_UP_WHY
    app = Application(
        credential.object_id, credential.app_id, credential.display_name, owners=credential.owners, tags=credential.tags
    )
    return await rotations.why_not_rotatable(app)


async def rotation_answer(rotation: Rotation, deps: Deps) -> Diagnosis:
    """A rotation drawn as an answer: every adapter shows a Diagnosis, so the card travels as one."""
    return replace(await diagnose("", directory=None, now=deps.now()), rotation=rotation)


async def redraw(rotation_id: str, deps: Deps) -> Diagnosis | None:
    """A rotation's card as its record is now (None: no such rotation, or rotation is off). A job run
    again after a crash draws the request its first run opened, instead of opening a second one."""
    rotations = deps.rotations
    rotation = await rotations.store.get(rotation_id) if rotations else None
    return await rotation_answer(rotation, deps) if rotation else None


async def follow(rotation_id: str, place: dict[str, str], deps: Deps) -> Rotation | None:
    """Remember that the message at `place` (platform, channel, message_id[, reference]) shows this
    rotation's card, so every later step updates it too. Returns the record as it is now: when it moved
    on while that message was being posted (no card job knew the message then), draw it again."""
    rotations = deps.rotations
    if rotations is None:
        return None
    now, _ = await rotations.store.change(rotation_id, lambda current: current.showing(place))
    return now


async def _answer(deps: Deps, step: Awaitable[Rotation | Notice]) -> Diagnosis | Notice:
    try:
        outcome = await step
    except StateUnavailable as error:
        log.warning("rotation: state store unavailable (%s)", error.reason)
        return Notice(NoticeReason.UNAVAILABLE, UNAVAILABLE)
    except (DirectoryError, GraphWriteError) as error:
        log.warning("rotation: Graph did not answer (%s)", type(error).__name__)
        return Notice(
            NoticeReason.UNAVAILABLE, f"Microsoft Graph could not be asked just now; nothing changed. {error}"
        )
    if isinstance(outcome, Notice):
        return outcome
    return await rotation_answer(outcome, deps)


async def _from_digest(digest_id: str, deps: Deps) -> tuple[str, str] | Notice:
    try:
        digest = await deps.state.warnings.digest(digest_id[:64])
    except StateUnavailable:
        return Notice(NoticeReason.UNAVAILABLE, UNAVAILABLE)
    if digest is None:
        return Notice(NoticeReason.EXPIRED, "This warning is too old to act on, or it was never kept.")
    candidates = [row for row in digest.rows if rotation_candidate(row)]
    if digest.rotatable is not None:  # checked when posted: an app the bot may rotate comes first
        allowed = {app.lower() for app in digest.rotatable}
        candidates.sort(key=lambda row: row.credential.app_id.lower() not in allowed)
    for row in candidates[:1]:
        credential = row.credential
        ends = f"{credential.end:%Y-%m-%d}" if credential.end else "soon"
        return credential.app_id, f"expiry warning: secret {credential.name or credential.hint or ''} ends {ends}"
    return Notice(NoticeReason.REFUSED, "No client secret on this warning needs a rotation.")
