"""Tell the chat platforms that a rotation moved: a job per message showing its card, which draws the
card again from the record as it is then, and when a request opens, a job that posts its copy to the
approvers' channel. Jobs are keyed, so a transition written again after a crash queues each once."""

from __future__ import annotations

import json
from dataclasses import dataclass

from bot.jobs.queue import JobQueue
from bot.platforms.slack_jobs import ROTATION_CARD as SLACK_ROTATION_CARD
from bot.platforms.slack_jobs import ROTATION_COPY as SLACK_ROTATION_COPY
from bot.rotation_types import Rotation, RotationState
from bot.settings import Settings
from bot.state import keys

# bot.platforms.teams_jobs' names: written out because that module brings the Agents SDK, which only
# the Teams adapter imports (lazily).
TEAMS_ROTATION_CARD = "teams.rotation_card"
TEAMS_ROTATION_COPY = "teams.rotation_copy"


@dataclass(frozen=True)
class RotationPosts:
    jobs: JobQueue
    slack: bool  # Slack is on in this deployment
    teams: bool
    approvers_slack: str | None = None  # SECRETBOT_APPROVERS_SLACK_CHANNEL
    approvers_teams: str | None = None  # SECRETBOT_APPROVERS_TEAMS_CHANNEL

    @classmethod
    def of(cls, settings: Settings, jobs: JobQueue) -> RotationPosts:
        return cls(
            jobs,
            settings.slack_enabled,
            settings.teams_enabled,
            settings.approvers_slack_channel if settings.slack_enabled else None,
            settings.approvers_teams_channel if settings.teams_enabled else None,
        )

    async def __call__(self, rotation: Rotation) -> None:
        if rotation.state is RotationState.REQUESTED:
            # The answer that opened the request draws its first card; the approvers get theirs.
            await self._copies(rotation)
            return
        step = len(rotation.history)
        for place in rotation.places:
            await self._update(rotation, place, step)

    async def _update(self, rotation: Rotation, place: dict[str, str], step: int) -> None:
        platform, message_id = place.get("platform"), place.get("message_id") or ""
        if platform == "slack" and self.slack and message_id:
            await self.jobs.enqueue(
                SLACK_ROTATION_CARD,
                key=keys.rotation_card_job_key("slack", rotation.id, step, message_id),
                rotation_id=rotation.id,
                channel=place["channel"],
                ts=message_id,
            )
        elif platform == "teams" and self.teams and message_id and place.get("reference"):
            await self.jobs.enqueue(
                TEAMS_ROTATION_CARD,
                key=keys.rotation_card_job_key("teams", rotation.id, step, message_id),
                rotation_id=rotation.id,
                reference=json.loads(place["reference"]),
                card_id=message_id,
            )

    async def _copies(self, rotation: Rotation) -> None:
        asked = rotation.where
        for platform, channel, function in (
            ("slack", self.approvers_slack, SLACK_ROTATION_COPY),
            ("teams", self.approvers_teams, TEAMS_ROTATION_COPY),
        ):
            if not channel or (asked.get("platform") == platform and asked.get("channel") == channel):
                continue  # none configured, or asked in the approvers' channel itself: one card is enough
            key = keys.rotation_copy_job_key(platform, rotation.id)
            await self.jobs.enqueue(function, key=key, rotation_id=rotation.id, channel=channel)
