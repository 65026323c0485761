"""`secretbot scan --post`, run as a Kubernetes CronJob would run it: the warnings go to Slack through
the server's Redis, so a second run (or the server's own scan) warns nothing twice."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from tests.fake_slack import FakeSlack
from tests.redis_server import redis_server
from tests.test_slack import card_text

ROOT = Path(__file__).resolve().parent.parent
NOW = "2026-11-20T09:00:00Z"


async def post(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "bot", "scan", "--snapshot", "sample", "--now", NOW, "--post", *args]
    return await asyncio.to_thread(
        subprocess.run, command, cwd=ROOT, env=os.environ | env, capture_output=True, text=True, timeout=120
    )


async def test_scan_post_warns_each_threshold_once_across_runs(fake_slack: FakeSlack, tmp_path: Path) -> None:
    routes = tmp_path / "routes.toml"
    routes.write_text('[defaults]\nslack_channel = "C0CRON"\n', encoding="utf-8")
    with redis_server() as server:
        env = {
            "REDIS_URL": server.url,
            "SLACK_BOT_TOKEN": "xoxb-test-token",
            "SLACK_SIGNING_SECRET": "test-signing-secret",
            "SLACK_API_URL": fake_slack.url("/api/"),
            "SECRETBOT_ROUTES": str(routes),
        }
        first = await post(env)
        second = await post(env, "--format", "json")
    assert first.returncode == 0, first.stderr
    assert "posted 1 warnings" in first.stderr and "posted 0 warnings" in second.stderr
    [digest] = fake_slack.delivered("chat.postMessage")
    assert digest["channel"] == "C0CRON"
    assert "warehouse-sync" in card_text(digest["blocks"])
    assert second.stdout.startswith("{")  # the report is printed as asked, posting or not


async def test_scan_post_without_slack_or_teams_says_what_to_set(tmp_path: Path) -> None:
    with redis_server() as server:
        result = await post({"REDIS_URL": server.url, "SLACK_BOT_TOKEN": ""})
    assert result.returncode == 2 and "--post needs Slack" in result.stderr and "Traceback" not in result.stderr
