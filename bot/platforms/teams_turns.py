"""Teams turns: activities become Inbound objects for the dispatcher, answers go back as Adaptive Cards.

Replies go through the turn context, so the SDK sends them to the activity's own `serviceUrl` with
the bot's token. Nothing here logs or echoes message text: it may hold a pasted secret.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from microsoft_agents.activity import (
    Activity,
    ActivityTypes,
    AdaptiveCardInvokeResponse,
    AdaptiveCardInvokeValue,
    InvokeResponse,
)
from microsoft_agents.hosting.core import (
    AgentApplication,
    ChannelServiceAdapter,
    ClaimsIdentity,
    RouteRank,
    TurnContext,
    TurnState,
)

from bot.domain import Diagnosis, Notice, StateUnavailable
from bot.expiry import Digest
from bot.jobs.payloads import asked_to_json
from bot.jobs.queue import JobQueue
from bot.platforms.dispatch import Dispatcher
from bot.platforms.teams_jobs import ANSWER, card_activity, card_message
from bot.ports import StateStore
from bot.rotation_types import Rotation
from bot.state import keys
from cards.adaptive import CONTENT_TYPE, adaptive_card
from cards.digest_adaptive import render_digest_adaptive
from cards.view import answer_view
from handlers.conversation import read
from handlers.inbound import Actor, InboundAction, InboundMessage
from handlers.rotation_actions import follow, from_a_warning, warning_pointing_at

log = logging.getLogger(__name__)

Json = dict[str, Any]

# Teams waits about 5 s for an invoke answer and then shows "Something went wrong"; 4 s leaves
# room for the network. Slower work answers with an interim card and updates the card later.
ACTION_BUDGET_SECONDS = 4.0
SORRY = "Sorry, something went wrong on my side. Please try again in a minute."
STILL_CHECKING = "Checking again… the card will update when the answer is ready."
UNSUPPORTED = "This button is no longer supported. Paste the error again for a fresh answer."
MESSAGE_TYPE = "application/vnd.microsoft.activity.message"  # Universal Actions' text-only answer
_GROUP_CONVERSATIONS = frozenset({"channel", "groupChat"})
_ANY_VERB = re.compile(r"")  # every Action.Execute: the dispatcher's table decides which verbs exist


class Turns:
    def __init__(
        self,
        adapter: ChannelServiceAdapter,
        dispatcher: Callable[[], Dispatcher],
        state: Callable[[], StateStore],
        jobs: Callable[[], JobQueue],
    ) -> None:
        self._adapter = adapter
        self._dispatcher = dispatcher
        self._state = state
        self._jobs = jobs
        self._pending: set[asyncio.Task[None]] = set()  # card updates still running after their invoke

    def route(self, agent: AgentApplication[TurnState]) -> None:
        agent.activity(ActivityTypes.message)(self.message)
        agent.activity(ActivityTypes.conversation_update)(self.conversation_update)
        agent.activity(ActivityTypes.installation_update)(self.installation_update)
        agent.adaptive_card.action_execute(_ANY_VERB)(self.action)
        # Anything else is ignored here, rather than by the SDK, which logs the text of unrouted activities.
        agent.add_route(lambda _context: True, _ignore, rank=RouteRank.LAST)
        agent.error(_on_error)

    async def message(self, context: TurnContext, _state: TurnState) -> None:
        activity = context.activity
        await self._remember(activity)
        # In channels and group chats only messages that @mention the bot are ours (Teams sends bots
        # little else there). The SDK has already cut the mention out of the text.
        if activity.conversation.conversation_type in _GROUP_CONVERSATIONS and not activity.is_recipient_mentioned():
            return
        await context.send_activity(Activity(type=ActivityTypes.typing))
        asked = await read(activity.text or "")
        actor = _actor(activity)
        try:
            # A worker posts the answer from the conversation reference: the facts of the paste only,
            # no text, go into the queue. The key makes a redelivered activity one answer.
            queued = await self._jobs().enqueue(
                ANSWER,
                key=keys.answer_job_key("teams", f"{activity.conversation.id}-{activity.id}"),
                asked=asked_to_json(asked),
                reference=_reference(activity),
                actor={
                    "platform": actor.platform,
                    "user_id": actor.user_id,
                    "name": actor.name,
                    "aad_object_id": actor.aad_object_id,
                },
            )
            if not queued:
                log.info("teams message already queued")
            return
        except StateUnavailable as error:
            log.warning("job queue unavailable (%s): answering in this turn", error.reason)
        await context.send_activity(
            card_message(await self._dispatcher().asked(asked, actor, activity.conversation.id))
        )

    async def conversation_update(self, context: TurnContext, _state: TurnState) -> None:
        activity = context.activity
        await self._remember(activity)
        bot = activity.recipient.id if activity.recipient else None
        if bot and any(member.id == bot for member in activity.members_added or []):
            # An empty message is a help request: the welcome says what the bot does and what to paste.
            inbound = InboundMessage("", _actor(activity), activity.conversation.id)
            await context.send_activity(card_message(await self._dispatcher().message(inbound)))

    async def installation_update(self, context: TurnContext, _state: TurnState) -> None:
        # Teams sends a conversationUpdate with the same install; the welcome goes out there, once.
        await self._remember(context.activity)

    async def action(self, context: TurnContext, _state: TurnState, data: object) -> AdaptiveCardInvokeResponse:
        """An Action.Execute click, answered inside the invoke with the refreshed card."""
        activity = context.activity
        verb = AdaptiveCardInvokeValue.model_validate(activity.value).action.verb or ""
        item = data.get("id") if isinstance(data, dict) else None
        if not isinstance(item, str) or not item:
            return _invoke_card(_notice_card(UNSUPPORTED))
        # The clicked card and its conversation: a rotation's card is updated from there by a worker.
        reference = json.dumps(_reference(activity), separators=(",", ":"))
        card = activity.reply_to_id
        inbound = InboundAction(verb, item, _actor(activity), activity.conversation.id, card, reference)
        work = asyncio.create_task(self._dispatcher().action(inbound))
        done, _ = await asyncio.wait({work}, timeout=ACTION_BUDGET_SECONDS)  # never cancels `work`
        if work in done:
            answer = work.result()
            if isinstance(answer, Diagnosis) and answer.rotation is not None and from_a_warning(verb, item):
                return await self._request_beside_the_warning(context, item, answer.rotation, answer)
            return _invoke_answer(answer)
        self._update_later(context, work, on_a_warning=from_a_warning(verb, item))
        return _invoke_card(_notice_card(STILL_CHECKING))

    async def _request_beside_the_warning(
        self, context: TurnContext, digest_id: str, rotation: Rotation, answer: Diagnosis
    ) -> AdaptiveCardInvokeResponse:
        """A warning lists other credentials too, and later scans update it: the request is sent as a
        message of its own in the conversation and followed there; the invoke answers with the warning
        drawn again, now pointing at the request."""
        sent = await context.send_activity(card_message(answer))
        deps = self._dispatcher().deps
        if sent is not None and sent.id:
            await follow(rotation.id, _place(context.activity, sent.id), deps)
            warning = await warning_pointing_at(digest_id, rotation, deps)
            if warning is not None:
                return _invoke_card(render_digest_adaptive(warning))
        text = "Rotation requested: the request is the new message in this conversation; an approver decides there."
        return AdaptiveCardInvokeResponse(status_code=HTTPStatus.OK, type=MESSAGE_TYPE, value=text)

    def _update_later(
        self,
        context: TurnContext,
        work: asyncio.Task[Diagnosis | Digest | Notice | None],
        *,
        on_a_warning: bool = False,
    ) -> None:
        """Replace the clicked card once `work` is done. The invoke's own connection to Teams is
        closed by then, so the update runs as a proactive turn from the clicked message's reference.
        A rotation requested from a warning that late takes the warning's place and is followed there."""
        activity = context.activity
        card_id = activity.reply_to_id  # the bot message that carries the clicked card
        continuation = activity.get_conversation_reference().get_continuation_activity()
        identity = context.identity or ClaimsIdentity()

        async def update() -> None:
            answer = None
            try:
                answer = await work
                card = _answer_card(answer)
            except Exception as error:
                log.error("teams action failed error=%s", type(error).__name__)
                card = _notice_card(SORRY)
            if not card_id:
                return

            async def replace(turn: TurnContext) -> None:
                await turn.update_activity(card_activity(card, id=card_id))

            try:
                await self._adapter.continue_conversation_with_claims(identity, continuation, replace)
                rotation = answer.rotation if isinstance(answer, Diagnosis) else None
                if on_a_warning and rotation is not None:
                    await follow(rotation.id, _place(activity, card_id), self._dispatcher().deps)
            except Exception as error:
                log.error("teams card update failed error=%s", type(error).__name__)

        task = asyncio.create_task(update())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def finish(self, grace: float) -> None:
        """At shutdown: let card updates in flight finish for `grace` seconds, then cancel them."""
        if not self._pending:
            return
        _, late = await asyncio.wait(set(self._pending), timeout=grace)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    async def _remember(self, activity: Activity) -> None:
        """Where the bot can post later without being spoken to: the conversation reference, as JSON."""
        try:
            await self._state().save_conversation("teams", activity.conversation.id, _reference(activity))
        except StateUnavailable as error:
            log.warning("state store unavailable (%s): teams conversation reference not saved", error.reason)


def _reference(activity: Activity) -> dict[str, Any]:
    reference: dict[str, Any] = activity.get_conversation_reference().model_dump(
        by_alias=True, exclude_none=True, mode="json", exclude={"request_id"}
    )
    return reference


def _place(activity: Activity, message_id: str) -> dict[str, str]:
    """A message of this conversation that shows a rotation's card, as its record keeps it."""
    return {
        "platform": "teams",
        "channel": activity.conversation.id,
        "message_id": message_id,
        "reference": json.dumps(_reference(activity), separators=(",", ":")),
    }


def _actor(activity: Activity) -> Actor:
    sender = activity.from_property
    if sender is None:
        return Actor("teams", "")
    return Actor("teams", sender.id or "", sender.name, sender.aad_object_id)


def _answer_card(answer: Diagnosis | Digest | Notice | None) -> Json:
    if answer is None:
        return _notice_card(UNSUPPORTED)
    if isinstance(answer, Notice):
        return _notice_card(answer.text)
    if isinstance(answer, Digest):
        return render_digest_adaptive(answer)
    return adaptive_card(answer_view(answer))


def _invoke_answer(answer: Diagnosis | Digest | Notice | None) -> AdaptiveCardInvokeResponse:
    if isinstance(answer, Notice):
        # A message response: Teams shows the text to the person who pressed and leaves the card as it is.
        return AdaptiveCardInvokeResponse(status_code=HTTPStatus.OK, type=MESSAGE_TYPE, value=answer.text)
    return _invoke_card(_answer_card(answer))


def _notice_card(text: str) -> Json:
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.5",
        "body": [{"type": "TextBlock", "text": text, "wrap": True}],
    }


def _invoke_card(card: Json) -> AdaptiveCardInvokeResponse:
    return AdaptiveCardInvokeResponse(status_code=HTTPStatus.OK, type=CONTENT_TYPE, value=card)


async def _ignore(_context: TurnContext, _state: TurnState) -> None:
    return None


async def _on_error(context: TurnContext, error: Exception) -> None:
    """A turn failed: log the type, never the message; tell the person briefly, without details."""
    activity = context.activity
    log.error("teams turn failed error=%s activity=%s", type(error).__name__, activity.type)
    try:
        if activity.type == ActivityTypes.invoke:
            body = _invoke_card(_notice_card(SORRY)).model_dump(mode="json", by_alias=True, exclude_none=True)
            await context.send_activity(
                Activity(type=ActivityTypes.invoke_response, value=InvokeResponse(status=HTTPStatus.OK, body=body))
            )
        elif activity.type == ActivityTypes.message:
            await context.send_activity(SORRY)
    except Exception as again:
        log.error("teams apology not sent error=%s", type(again).__name__)
