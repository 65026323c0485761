"""Slack's jobs: the answers and button work the web tier queued, run by a worker.

Each job is safe to run again after its worker died: an answer claims its event under the job's own
token (a later Slack retry of an answered event gets nothing), the "Checking…" placeholder is posted
once and remembered, and the final card replaces it with `chat.update`, which can be repeated.
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
from cards.blockkit import render_blockkit
from cards.digest_blockkit import render_digest_blockkit
from handlers.inbound import Actor, InboundAction
from handlers.rotation_actions import rotation_answer

log = logging.getLogger(__name__)

ANSWER = "slack.answer"
COMMAND = "slack.command"
ACTION = "slack.action"
ROTATION_CARD = "slack.rotation_card"
CHECKING = "Checking… :hourglass_flowing_sand:"
SORRY = "Sorry, something went wrong on my side while checking this. Please paste it again in a minute."


class SlackJobs:
    def __init__(
        self, client: AsyncWebClient, dispatcher: Callable[[], Dispatcher], state: Callable[[], StateStore]
    ) -> None:
        self._client = client
        self._dispatcher = dispatcher
        self._state = state

    def table(self) -> dict[str, JobFunction]:
        return {ANSWER: self.answer, COMMAND: self.command, ACTION: self.action, ROTATION_CARD: self.rotation_card}

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
            diagnosis = await self._dispatcher().asked(asked_from_json(asked), Actor("slack", user), channel)
        except Exception:
            if job.is_last_attempt:  # else another attempt will answer
                await self._client.chat_update(channel=channel, ts=ts, text=SORRY)
            raise
        await self._client.chat_update(channel=channel, ts=ts, **message(diagnosis))

    async def command(
        self, job: RunningJob, *, asked: dict[str, Any], channel: str, user: str, response_url: str
    ) -> None:
        """The slash command: its ephemeral "Checking…" ack is replaced through the response URL."""
        webhook = AsyncWebhookClient(response_url, session=self._client.session)
        try:
            diagnosis = await self._dispatcher().asked(asked_from_json(asked), Actor("slack", user), channel)
        except Exception:
            if job.is_last_attempt:
                await webhook.send(text=SORRY, response_type="ephemeral", replace_original=True)
            raise
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
        answer = await self._dispatcher().action(inbound)
        if answer is None:
            return
        webhook = AsyncWebhookClient(response_url, session=self._client.session) if response_url else None
        if isinstance(answer, Notice):
            if webhook:
                await webhook.send(text=answer.text, response_type="ephemeral", replace_original=False)
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
