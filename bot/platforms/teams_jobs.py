"""Teams' jobs: answers to messages the web tier queued, posted by a worker as proactive turns.

Safe to run again after a crash: the "Checking…" message is posted once and remembered, and the card
replaces it (an update of the same activity, which can be repeated).

A rotation's card follows the rotation: the message answering `rotate` and the copy in the approvers'
channel are remembered in its record (each with its conversation reference), and the worker updates
every one at each step. A request an answer opened is remembered with the job, so a run after a crash
draws it again rather than opening a second one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from microsoft_agents.activity import Activity, ActivityTypes, Attachment, ConversationReference
from microsoft_agents.hosting.core import ChannelServiceAdapter, ClaimsIdentity, TurnContext

from bot.domain import Diagnosis
from bot.jobs.payloads import asked_from_json
from bot.jobs.worker import JobFunction, RunningJob
from bot.platforms.dispatch import Dispatcher
from bot.rotation_types import Rotation
from cards.adaptive import CONTENT_TYPE, adaptive_card
from cards.view import answer_view
from handlers.inbound import Actor
from handlers.rotation_actions import follow, redraw, rotation_answer

log = logging.getLogger(__name__)

ANSWER = "teams.answer"
ROTATION_CARD = "teams.rotation_card"
ROTATION_COPY = "teams.rotation_copy"
CHECKING = "Checking…"
SORRY = "Sorry, something went wrong on my side while checking this. Please paste it again in a minute."


class TeamsJobs:
    def __init__(
        self, adapter: ChannelServiceAdapter, identity: ClaimsIdentity, dispatcher: Callable[[], Dispatcher]
    ) -> None:
        self._adapter = adapter
        self._identity = identity  # the bot's own: proactive turns carry no caller's token
        self._dispatcher = dispatcher

    def table(self) -> dict[str, JobFunction]:
        return {ANSWER: self.answer, ROTATION_CARD: self.rotation_card, ROTATION_COPY: self.rotation_copy}

    async def answer(
        self, job: RunningJob, *, asked: dict[str, Any], reference: dict[str, Any], actor: dict[str, Any]
    ) -> None:
        conversation = ConversationReference.model_validate(reference)
        continuation = conversation.get_continuation_activity()
        if conversation.activity_id:  # what the turn's replies answer: the paste itself, not the continuation
            continuation.id = conversation.activity_id
        placeholder = job.note("placeholder")
        if placeholder is None:
            placeholder = await self._send(continuation, Activity(type=ActivityTypes.message, text=CHECKING))
            await job.remember("placeholder", placeholder)
        try:
            diagnosis = await self._asked(job, asked, Actor(**actor), conversation.conversation.id)
        except Exception:
            if job.is_last_attempt:  # else another attempt will answer
                await self._replace(continuation, placeholder, Activity(type=ActivityTypes.message, text=SORRY))
            raise
        await self._replace(continuation, placeholder, card_message(diagnosis))
        if diagnosis.rotation is not None and placeholder:
            await self._follow(diagnosis.rotation.id, diagnosis.rotation, reference, placeholder)

    async def rotation_card(
        self, _job: RunningJob, *, rotation_id: str, reference: dict[str, Any], card_id: str
    ) -> None:
        """A rotation moved on in a worker: the card its Request button was on follows, drawn from the
        record as it is now (a late or repeated run shows the latest state)."""
        dispatcher = self._dispatcher()
        rotations = dispatcher.deps.rotations
        rotation = await rotations.store.get(rotation_id) if rotations else None
        if rotation is None:
            return
        continuation = ConversationReference.model_validate(reference).get_continuation_activity()
        await self._replace(continuation, card_id, card_message(await rotation_answer(rotation, dispatcher.deps)))

    async def rotation_copy(self, job: RunningJob, *, rotation_id: str, channel: str) -> None:
        """A new request's copy in the approvers' conversation (SECRETBOT_APPROVERS_TEAMS_CHANNEL, one the
        bot was installed in), posted once and then updated step by step like the card where it was asked."""
        deps = self._dispatcher().deps
        rotation = await deps.rotations.store.get(rotation_id) if deps.rotations else None
        if rotation is None:
            return
        reference = await deps.state.conversation("teams", channel)
        if reference is None:
            log.warning("teams approvers' channel %s: the bot was never installed there; no copy posted", channel)
            return
        card_id = job.note("posted")
        shown: Rotation | None = rotation
        if card_id is None:
            continuation = ConversationReference.model_validate(reference).get_continuation_activity()
            continuation.id = None  # a new post in the conversation, not a reply to an earlier message
            card_id = await self._send(continuation, card_message(await rotation_answer(rotation, deps)))
            if card_id is None:  # the connector gave no id: that copy cannot be updated
                return
            await job.remember("posted", card_id)
        else:
            shown = None  # posted by an earlier run, which may have drawn an older state
        await self._follow(rotation.id, shown, reference, str(card_id))

    async def _asked(self, job: RunningJob, asked: dict[str, Any], actor: Actor, conversation_id: str) -> Diagnosis:
        deps = self._dispatcher().deps
        noted = job.note("rotation")
        again = await redraw(str(noted), deps) if noted else None
        diagnosis = again or await self._dispatcher().asked(asked_from_json(asked), actor, conversation_id)
        if diagnosis.rotation is not None and noted != diagnosis.rotation.id:
            await job.remember("rotation", diagnosis.rotation.id)
        return diagnosis

    async def _follow(self, rotation_id: str, shown: Rotation | None, reference: dict[str, Any], card_id: str) -> None:
        """The activity `card_id` shows a rotation's card: remember it in the record so each step updates
        it, and draw it again if the rotation moved on since `shown` (None: not known what it shows)."""
        deps = self._dispatcher().deps
        conversation = ConversationReference.model_validate(reference)
        place = {
            "platform": "teams",
            "channel": conversation.conversation.id,
            "message_id": card_id,
            "reference": json.dumps(reference, separators=(",", ":")),
        }
        now = await follow(rotation_id, place, deps)
        if now is not None and (shown is None or len(now.history) != len(shown.history)):
            continuation = conversation.get_continuation_activity()
            await self._replace(continuation, card_id, card_message(await rotation_answer(now, deps)))

    async def _send(self, continuation: Activity, activity: Activity) -> str | None:
        sent: list[str | None] = []

        async def send(turn: TurnContext) -> None:
            response = await turn.send_activity(activity)
            sent.append(response.id if response else None)

        await self._adapter.continue_conversation_with_claims(self._identity, continuation, send)
        return sent[0] if sent else None

    async def _replace(self, continuation: Activity, placeholder: str | None, activity: Activity) -> None:
        if placeholder is None:  # the connector gave no id to update: post the answer instead
            await self._send(continuation, activity)
            return
        activity.id = placeholder

        async def replace(turn: TurnContext) -> None:
            await turn.update_activity(activity)

        await self._adapter.continue_conversation_with_claims(self._identity, continuation, replace)


def card_message(diagnosis: Diagnosis) -> Activity:
    view = answer_view(diagnosis)
    return card_activity(adaptive_card(view), summary=view.title)


def card_activity(card: dict[str, Any], *, summary: str | None = None, id: str | None = None) -> Activity:
    # `summary` is the Activity Protocol's text for where a card cannot be shown (notifications,
    # chat list). Teams would print `text` above the card, repeating its title.
    activity = Activity(type=ActivityTypes.message, attachments=[Attachment(content_type=CONTENT_TYPE, content=card)])
    if summary:
        activity.summary = summary
    if id:
        activity.id = id
    return activity
