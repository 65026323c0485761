"""Slack's jobs: the answers and button work the web tier queued, run by a worker.

Each job is safe to run again after its worker died: an answer claims its event under the job's own
token (a later Slack retry of an answered event gets nothing), the "Checking…" placeholder is posted
once and remembered, and the final card replaces it with `chat.update`, which can be repeated.

A rotation's card follows the rotation: every message showing one is remembered in its record (the
worker then updates each, `rotation_card`). So a request waiting for approval is never ephemeral: the
slash command's, or one asked from an ephemeral card, is posted in the channel instead. A request an
answer opened is remembered with the job too, so a run after a crash draws it, not a second one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.domain import Diagnosis, Notice, StateUnavailable
from bot.expiry import Digest
from bot.jobs.payloads import asked_from_json
from bot.jobs.worker import JobFunction, RunningJob
from bot.platforms.dispatch import Dispatcher
from bot.ports import StateStore
from bot.rotation_types import Rotation, RotationState
from cards.blockkit import render_blockkit
from cards.digest_blockkit import render_digest_blockkit
from handlers.inbound import Actor, InboundAction
from handlers.rotation_actions import follow, from_a_warning, redraw, rotation_answer, warning_pointing_at

log = logging.getLogger(__name__)

ANSWER = "slack.answer"
COMMAND = "slack.command"
ACTION = "slack.action"
ROTATION_CARD = "slack.rotation_card"
ROTATION_COPY = "slack.rotation_copy"
CHECKING = "Checking… :hourglass_flowing_sand:"
SORRY = "Sorry, something went wrong on my side while checking this. Please paste it again in a minute."
# chat.postMessage's answers when the bot may not post in a conversation: not a member, a DM between
# other people, an archived channel.
CANNOT_POST = frozenset({"not_in_channel", "channel_not_found", "is_archived", "restricted_action"})


class SlackJobs:
    def __init__(
        self, client: AsyncWebClient, dispatcher: Callable[[], Dispatcher], state: Callable[[], StateStore]
    ) -> None:
        self._client = client
        self._dispatcher = dispatcher
        self._state = state

    def table(self) -> dict[str, JobFunction]:
        return {
            ANSWER: self.answer,
            COMMAND: self.command,
            ACTION: self.action,
            ROTATION_CARD: self.rotation_card,
            ROTATION_COPY: self.rotation_copy,
        }

    async def answer(
        self,
        job: RunningJob,
        *,
        asked: dict[str, Any],
        channel: str,
        thread: str,
        user: str,
        event: str,
        owner: str,
    ) -> None:
        """A message in a channel or a DM: placeholder in the thread, then the card in its place."""
        if not await self._first(event, owner):
            log.info("repeated slack event dropped event_id=%s", event)
            return
        ts = job.note("placeholder")
        if ts is None:
            posted = await self._client.chat_postMessage(channel=channel, thread_ts=thread, text=CHECKING)
            ts = str(posted["ts"])
            await job.remember("placeholder", ts)
        try:
            diagnosis = await self._asked(job, asked, Actor("slack", user), channel)
        except Exception:
            if job.is_last_attempt:  # else another attempt will answer
                await self._client.chat_update(channel=channel, ts=ts, text=SORRY)
            raise
        await self._client.chat_update(channel=channel, ts=ts, **message(diagnosis))
        if diagnosis.rotation is not None:
            await self._follow(diagnosis.rotation.id, diagnosis.rotation, channel, ts)

    async def command(
        self, job: RunningJob, *, asked: dict[str, Any], channel: str, user: str, response_url: str
    ) -> None:
        """The slash command: its ephemeral "Checking…" ack is replaced through the response URL, except
        by a request waiting for approval, which is posted in the channel (the ack is then deleted)."""
        webhook = AsyncWebhookClient(response_url, session=self._client.session)
        try:
            diagnosis = await self._asked(job, asked, Actor("slack", user), channel)
        except Exception:
            if job.is_last_attempt:
                await webhook.send(text=SORRY, response_type="ephemeral", replace_original=True)
            raise
        if await self._post_request(job, channel, diagnosis):
            await webhook.send(delete_original=True)
            return
        await webhook.send(response_type="ephemeral", replace_original=True, **message(diagnosis))

    async def action(
        self,
        job: RunningJob,
        *,
        verb: str,
        item: str,
        user: str,
        user_name: str | None,
        channel: str,
        ts: str | None,
        ephemeral: bool,
        response_url: str | None,
    ) -> None:
        """A button: the answer replaces the card (chat.update, or the response URL for an ephemeral
        card, which chat.update cannot edit); a Notice goes to the person who pressed only."""
        email = await self._email(user) if verb.startswith("rotation.") else None
        actor = Actor("slack", user, user_name, email=email)
        on_message = None if ephemeral else ts
        inbound = InboundAction(verb=verb, id=item, actor=actor, conversation_id=channel, message_id=on_message)
        answer = await self._again(job) or await self._dispatcher().action(inbound)
        if answer is None:
            return
        webhook = AsyncWebhookClient(response_url, session=self._client.session) if response_url else None
        if isinstance(answer, Notice):
            if webhook:
                await webhook.send(text=answer.text, response_type="ephemeral", replace_original=False)
            return
        if isinstance(answer, Diagnosis):
            await self._note(job, answer)
            # A warning lists other credentials too: the request goes in its thread, the warning stays
            # and points at it.
            rotation = answer.rotation
            if rotation is not None and ts and not ephemeral and from_a_warning(verb, item):
                if await self._post_request(job, channel, answer, thread=ts):
                    await self._point_at_request(item, rotation, channel, ts)
                else:  # no posting in that thread: the request takes the warning's place, and is followed there
                    await self._client.chat_update(channel=channel, ts=ts, **message(answer))
                    await self._follow(rotation.id, rotation, channel, ts)
                return
            if (ephemeral or not ts) and await self._post_request(job, channel, answer):
                if webhook:  # the ephemeral card asked; the request itself is in the channel now
                    await webhook.send(delete_original=True)
                return
        card = render_digest_blockkit(answer) if isinstance(answer, Digest) else message(answer)
        if (ephemeral or not ts) and webhook:
            await webhook.send(response_type="ephemeral", replace_original=True, **card)
        elif ts:
            await self._client.chat_update(channel=channel, ts=ts, **card)

    async def rotation_card(self, _job: RunningJob, *, rotation_id: str, channel: str, ts: str) -> None:
        """A rotation moved on in a worker: its card (the message its Request button was on) follows.
        Drawn from the record as it is now, so a late or repeated run shows the latest state."""
        dispatcher = self._dispatcher()
        rotations = dispatcher.deps.rotations
        if rotations is None:
            return
        rotation = await rotations.store.get(rotation_id)
        if rotation is None:
            return
        await self._client.chat_update(
            channel=channel, ts=ts, **message(await rotation_answer(rotation, dispatcher.deps))
        )

    async def rotation_copy(self, job: RunningJob, *, rotation_id: str, channel: str) -> None:
        """A new request's copy in the approvers' channel (SECRETBOT_APPROVERS_SLACK_CHANNEL), posted
        once and then updated step by step like the card where it was asked."""
        deps = self._dispatcher().deps
        rotation = await deps.rotations.store.get(rotation_id) if deps.rotations else None
        if rotation is None:
            return
        if not await self._post_followed(job, channel, rotation):
            log.warning("slack approvers' channel %s: the bot may not post there; invite it", channel)

    async def _point_at_request(self, digest_id: str, rotation: Rotation, channel: str, ts: str) -> None:
        """The warning at `ts` drawn again with a line per rotation requested from it, this one included
        (a run again after a crash draws the same)."""
        warning = await warning_pointing_at(digest_id, rotation, self._dispatcher().deps)
        if warning is not None:
            await self._client.chat_update(channel=channel, ts=ts, **render_digest_blockkit(warning))

    async def _asked(self, job: RunningJob, asked: dict[str, Any], actor: Actor, channel: str) -> Diagnosis:
        diagnosis = await self._again(job) or await self._dispatcher().asked(asked_from_json(asked), actor, channel)
        await self._note(job, diagnosis)
        return diagnosis

    async def _again(self, job: RunningJob) -> Diagnosis | None:
        """A run after a crash: the rotation request the first run opened, drawn as it is now."""
        noted = job.note("rotation")
        return await redraw(str(noted), self._dispatcher().deps) if noted else None

    async def _note(self, job: RunningJob, answer: Diagnosis) -> None:
        if answer.rotation is not None and job.note("rotation") != answer.rotation.id:
            await job.remember("rotation", answer.rotation.id)

    async def _post_request(
        self, job: RunningJob, channel: str, answer: Diagnosis, *, thread: str | None = None
    ) -> bool:
        """A request waiting for approval, posted in the channel: an approver must see it, and only a
        message can be updated later. False when it is not one, or the bot may not post there."""
        rotation = answer.rotation
        if rotation is None or not channel:
            return False
        if rotation.state is not RotationState.REQUESTED and job.note("posted") is None:
            return False  # (a run after a crash carries on with what the first one posted, whatever its state)
        return await self._post_followed(job, channel, rotation, answer, thread=thread)

    async def _post_followed(
        self,
        job: RunningJob,
        channel: str,
        rotation: Rotation,
        drawn: Diagnosis | None = None,
        *,
        thread: str | None = None,
    ) -> bool:
        """Post a rotation's card once (its ts remembered with the job before anything else happens), then
        follow it. False when the bot may not post in `channel`."""
        ts = job.note("posted")
        shown: Rotation | None = rotation
        if ts is None:
            card = drawn or await rotation_answer(rotation, self._dispatcher().deps)
            try:
                posted = await self._client.chat_postMessage(channel=channel, thread_ts=thread, **message(card))
            except SlackApiError as error:
                if error.response.get("error") in CANNOT_POST:
                    log.info("slack: no rotation card posted in %s (%s)", channel, error.response.get("error"))
                    return False
                raise
            ts = str(posted["ts"])
            await job.remember("posted", ts)
        else:
            shown = None  # posted by an earlier run, which may have drawn an older state
        await self._follow(rotation.id, shown, channel, str(ts))
        return True

    async def _follow(self, rotation_id: str, shown: Rotation | None, channel: str, ts: str) -> None:
        """The message `ts` shows a rotation's card: remember it in the record so each step updates it,
        and draw it again if the rotation moved on since `shown` (None: not known what it shows)."""
        deps = self._dispatcher().deps
        place = {"platform": "slack", "channel": channel, "message_id": ts}
        now = await follow(rotation_id, place, deps)
        if now is not None and (shown is None or len(now.history) != len(shown.history)):
            await self._client.chat_update(channel=channel, ts=ts, **message(await rotation_answer(now, deps)))

    async def _email(self, user: str) -> str | None:
        """The presser's profile email, to match them to an Entra user when approvers are Entra ids or
        groups. Needs the users:read and users:read.email scopes; without them, only approvers listed by
        Slack user id can approve from Slack."""
        try:
            answer = await self._client.users_info(user=user)
        except SlackApiError as error:
            log.info(
                "slack users.info unavailable (%s): approvers match by Slack user id only", error.response.get("error")
            )
            return None
        email = ((answer.get("user") or {}).get("profile") or {}).get("email")
        return str(email) if email else None

    async def _first(self, event: str, owner: str) -> bool:
        try:
            return await self._state().claim_for("slack-event", event, owner)
        except StateUnavailable as error:
            log.warning("state store unavailable (%s): answering without de-duplication", error.reason)
            return True


def message(diagnosis: Diagnosis) -> dict[str, Any]:
    rendered = render_blockkit(diagnosis)
    return {"text": rendered["text"], "blocks": rendered["blocks"]}
