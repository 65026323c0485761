"""Teams end to end: the real Agents SDK in our aiohttp app, Activity JSON in, a local fake connector out.

Most tests run with authentication off (the local-testing flag). The auth tests sign Bot Framework
tokens with an RSA key made here, whose key set a local key server (`tests/teams_signing.py`) publishes
in place of Microsoft's.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from microsoft_agents.authentication.msal import MsalAuth

from bot.app import SERVICES, create_app
from bot.domain import StateUnavailable
from bot.fakegraph.samples import sample_errors
from bot.platforms import teams_auth, teams_jobs, teams_turns
from bot.platforms.dispatch import Dispatcher
from bot.settings import Settings
from cards.welcome import HELP_TITLE
from handlers.conversation import Asked
from handlers.diagnose import diagnose
from handlers.inbound import Actor
from handlers.parse import parse
from handlers.recheck import NOT_KEPT, TOO_OLD
from tests.conftest import SampleTenant
from tests.fake_connector import ConnectorCall, FakeConnector
from tests.teams_signing import KeyServer, serving_signing_keys
from tests.tenant_edits import add_secret, edited

FIXTURES = Path(__file__).parent / "fixtures" / "teams"
SAMPLE = {s.cause: s for s in sample_errors()}
SEED = SAMPLE["expired_secret_in_use"].text
LEAKED = SAMPLE["secret_value_pasted"].text
SECRET = next(word for word in LEAKED.split() if "Q~" in word)
PAYMENTS_APP = "dc36fc90-2248-4d70-aca4-a1a9f5b19f71"
BOT_APP_ID = "4b1e7f2a-9c3d-4e8f-b6a0-1d2c3e4f5a6b"  # the fixtures' recipient is 28:<this>
CARD = "application/vnd.microsoft.card.adaptive"
KID = "secretbot-test-key"
OTHER_APP_ID = "00000000-0000-0000-0000-000000000001"


def fixture(name: str, connector: FakeConnector, text: str | None = None) -> dict[str, Any]:
    activity: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text("utf-8"))
    activity["serviceUrl"] = connector.url
    if text is not None:
        mention = "<at>secretbot</at> " if activity["text"].startswith("<at>") else ""
        activity["text"] = mention + text
        activity["attachments"] = [{"contentType": "text/html", "content": f"<p>{mention}{text}</p>"}]
    return activity


@pytest.fixture
async def teams() -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(Settings(snapshot="sample", teams_insecure_no_auth=True)))) as client:
        yield client


async def post(client: TestClient, activity: dict[str, Any], **headers: str) -> tuple[int, Any]:
    response = await client.post("/api/messages", json=activity, headers=headers)
    body = await response.json() if response.content_type == "application/json" else None
    return response.status, body


def text_of(call_body: dict[str, Any]) -> str:
    return json.dumps(call_body, ensure_ascii=False)


async def primary_summary(client: TestClient, paste: str) -> str:
    """What the answer must say: the same diagnosis, against the bot's own (fake) Graph; the paste
    carries its own timestamp, so the clock does not matter."""
    directory = client.app[SERVICES].directory
    diagnosis = await diagnose(paste, directory=directory, now=datetime.now(UTC))
    assert diagnosis.primary is not None
    return diagnosis.primary.summary


async def eventually(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the bot")
        await asyncio.sleep(0.02)


async def answer_to(connector: FakeConnector, count: int = 1) -> list[ConnectorCall]:
    """A message is answered by a worker: a "Checking…" message first, then the card put in its place."""
    await eventually(lambda: len(connector.sent("message", method="PUT")) >= count)
    placeholders = {call.path.rsplit("/", 1)[0] for call in connector.sent("message")}
    assert all(call.body.get("text") == teams_jobs.CHECKING for call in connector.sent("message"))
    answers = connector.sent("message", method="PUT")
    assert all(call.path.rsplit("/", 1)[0] in placeholders for call in answers)
    return answers


# --- messages ------------------------------------------------------------------------------------


async def test_personal_message_is_answered_with_one_card_naming_the_cause(
    teams: TestClient, connector: FakeConnector
) -> None:
    activity = fixture("personal_message", connector, SEED)
    status, _ = await post(teams, activity)
    assert status == 202
    [reply] = await answer_to(connector)
    [placeholder] = connector.sent("message")
    conversation, message_id = activity["conversation"]["id"], activity["id"]
    assert placeholder.path == f"/v3/conversations/{conversation}/activities/{message_id}"
    assert placeholder.body["replyToId"] == message_id  # the answer is a reply to the paste
    [attachment] = reply.body["attachments"]
    assert attachment["contentType"] == CARD
    assert attachment["content"]["type"] == "AdaptiveCard"
    assert await primary_summary(teams, SEED) in text_of(attachment["content"])
    assert reply.body["summary"]  # the text shown where the card cannot be (notifications)
    assert "AADSTS7000222" not in reply.body.get("text", "")  # the paste is never echoed
    assert len(connector.sent("typing")) == 1  # typing first
    assert connector.calls[0].body["type"] == "typing"


async def test_group_chat_mention_is_stripped_and_answered(
    teams: TestClient, connector: FakeConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[Asked, Actor, str]] = []
    original = Dispatcher.asked

    async def spy(self: Dispatcher, asked: Asked, actor: Actor, conversation_id: str) -> Any:
        seen.append((asked, actor, conversation_id))
        return await original(self, asked, actor, conversation_id)

    monkeypatch.setattr(Dispatcher, "asked", spy)
    activity = fixture("group_chat_mention", connector, SEED)
    assert activity["text"].startswith("<at>secretbot</at> ")
    status, _ = await post(teams, activity)
    assert status == 202
    [reply] = await answer_to(connector)
    [(asked, actor, conversation_id)] = seen
    assert asked.parsed == parse(SEED)  # the mention is gone before the paste is read
    assert actor == Actor("teams", activity["from"]["id"], "Alex Wilber", activity["from"]["aadObjectId"])
    assert conversation_id == activity["conversation"]["id"]
    assert await primary_summary(teams, SEED) in text_of(reply.body["attachments"][0]["content"])


async def test_group_chat_message_without_a_mention_is_not_answered(
    teams: TestClient, connector: FakeConnector
) -> None:
    activity = fixture("group_chat_mention", connector, SEED)
    activity["text"] = SEED
    activity["entities"] = [e for e in activity["entities"] if e["type"] != "mention"]
    status, _ = await post(teams, activity)
    assert status == 202
    assert connector.calls == []


async def test_channel_message_is_answered_in_its_thread(teams: TestClient, connector: FakeConnector) -> None:
    activity = fixture("channel_message", connector, SEED)
    status, _ = await post(teams, activity)
    assert status == 202
    [reply] = await answer_to(connector)
    [placeholder] = connector.sent("message")
    assert placeholder.body["conversation"]["id"] == activity["conversation"]["id"]
    assert reply.body["conversation"]["id"] == activity["conversation"]["id"]
    assert await primary_summary(teams, SEED) in text_of(reply.body["attachments"][0]["content"])


async def test_help_message_gets_the_help_card(teams: TestClient, connector: FakeConnector) -> None:
    await post(teams, fixture("personal_message", connector, "hi"))
    [reply] = await answer_to(connector)
    assert HELP_TITLE in text_of(reply.body) and "@secretbot in a channel" in text_of(reply.body)


async def test_a_pasted_secret_is_called_leaked_and_never_sent_or_logged(
    teams: TestClient, connector: FakeConnector, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    status, _ = await post(teams, fixture("personal_message", connector, LEAKED))
    assert status == 202
    [reply] = await answer_to(connector)
    assert "leak" in text_of(reply.body).lower()
    for call in connector.calls:
        assert SECRET not in call.raw and SECRET[6:] not in call.raw
    assert SECRET not in caplog.text and SECRET[6:] not in caplog.text


async def test_a_failing_turn_apologises_without_details(
    teams: TestClient, connector: FakeConnector, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: Any) -> Any:
        raise RuntimeError("internal detail: /srv/secretbot/handlers.py line 42")

    monkeypatch.setattr(Dispatcher, "asked", broken)
    status, _ = await post(teams, fixture("personal_message", connector, SEED))
    assert status == 202
    [reply] = await answer_to(connector)  # after the last attempt, the apology takes the card's place
    assert reply.body["text"] == teams_jobs.SORRY
    assert "internal detail" not in text_of(reply.body) and "Traceback" not in text_of(reply.body)
    assert "error=RuntimeError" in caplog.text


# --- conversation references and the welcome -----------------------------------------------------


async def test_bot_added_to_a_team_stores_the_reference_and_says_hello(
    teams: TestClient, connector: FakeConnector
) -> None:
    activity = fixture("conversation_update_bot_added", connector)
    status, _ = await post(teams, activity)
    assert status == 202
    conversation = activity["conversation"]["id"]
    stored = await teams.app[SERVICES].state.conversation("teams", conversation)
    assert stored is not None
    assert stored["conversation"]["id"] == conversation
    assert stored["conversation"]["tenantId"] == activity["conversation"]["tenantId"]
    assert stored["serviceUrl"] == connector.url
    assert stored["channelId"] == "msteams"
    assert stored["bot"]["id"] == f"28:{BOT_APP_ID}"  # Activity Protocol names, not SDK ones
    assert "requestId" not in stored
    [welcome] = connector.sent("message")
    assert welcome.path.startswith(f"/v3/conversations/{conversation}/activities")
    assert HELP_TITLE in text_of(welcome.body["attachments"][0]["content"])


async def test_someone_else_joining_gets_no_welcome(teams: TestClient, connector: FakeConnector) -> None:
    activity = fixture("conversation_update_bot_added", connector)
    activity["membersAdded"] = [{"id": "29:1SomeoneElse", "aadObjectId": "1b2c3d4e-0000-4000-8000-000000000001"}]
    await post(teams, activity)
    assert connector.calls == []


async def test_installation_update_stores_the_reference_quietly(teams: TestClient, connector: FakeConnector) -> None:
    activity = fixture("installation_update_add", connector)
    status, _ = await post(teams, activity)
    assert status == 202
    assert await teams.app[SERVICES].state.conversation("teams", activity["conversation"]["id"]) is not None
    assert connector.calls == []


async def test_first_message_stores_the_reference(teams: TestClient, connector: FakeConnector) -> None:
    activity = fixture("personal_message", connector, "help")
    await post(teams, activity)
    stored = await teams.app[SERVICES].state.conversation("teams", activity["conversation"]["id"])
    assert stored is not None and stored["user"]["aadObjectId"] == activity["from"]["aadObjectId"]


async def test_state_store_down_still_answers(
    teams: TestClient, connector: FakeConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(*_: Any) -> None:
        raise StateUnavailable("redis is gone")

    monkeypatch.setattr(teams.app[SERVICES].state, "save_conversation", down)
    status, _ = await post(teams, fixture("personal_message", connector, SEED))
    assert status == 202
    assert len(await answer_to(connector)) == 1


# --- Action.Execute --------------------------------------------------------------------------------


async def test_recheck_answers_inside_the_invoke_with_the_refreshed_card(
    teams: TestClient, connector: FakeConnector
) -> None:
    status, body = await post(teams, fixture("invoke_recheck", connector))
    assert status == 200
    assert body["statusCode"] == 200
    assert body["type"] == CARD
    card = body["value"]
    assert card["type"] == "AdaptiveCard"
    assert "payments-api" in text_of(card)
    assert any(a.get("verb") == "diagnosis.recheck" and a["data"] == {"id": PAYMENTS_APP} for a in card["actions"])
    assert NOT_KEPT in text_of(card)  # an old card's bare app id: the app alone was checked, and it says so
    assert connector.calls == []  # answered in the invoke, nothing posted


async def test_unknown_verb_gets_a_small_card(teams: TestClient, connector: FakeConnector) -> None:
    activity = fixture("invoke_recheck", connector)
    activity["value"]["action"]["verb"] = "rotation.approve.v0"
    status, body = await post(teams, activity)
    assert status == 200
    assert body["statusCode"] == 200 and body["type"] == CARD
    assert teams_turns.UNSUPPORTED in text_of(body["value"])


async def test_button_without_an_id_gets_a_small_card(teams: TestClient, connector: FakeConnector) -> None:
    activity = fixture("invoke_recheck", connector)
    activity["value"]["action"]["data"] = {}
    status, body = await post(teams, activity)
    assert status == 200 and teams_turns.UNSUPPORTED in text_of(body["value"])


async def test_slow_recheck_answers_in_time_and_updates_the_card_later(
    teams: TestClient, connector: FakeConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(teams_turns, "ACTION_BUDGET_SECONDS", 0.0)  # as if Graph took longer than Teams waits
    activity = fixture("invoke_recheck", connector)
    status, body = await post(teams, activity)
    assert status == 200
    assert teams_turns.STILL_CHECKING in text_of(body["value"])
    await eventually(lambda: bool(connector.sent("message", method="PUT")))
    [update] = connector.sent("message", method="PUT")
    conversation, card_id = activity["conversation"]["id"], activity["replyToId"]
    assert update.path == f"/v3/conversations/{conversation}/activities/{card_id}"
    assert update.body["id"] == card_id
    assert "payments-api" in text_of(update.body["attachments"][0]["content"])


async def test_shutdown_lets_a_card_update_in_flight_finish(
    connector: FakeConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Dispatcher.action

    async def slow(self: Dispatcher, action: Any) -> Any:
        await asyncio.sleep(0.3)
        return await original(self, action)

    monkeypatch.setattr(Dispatcher, "action", slow)
    monkeypatch.setattr(teams_turns, "ACTION_BUDGET_SECONDS", 0.05)
    async with TestClient(TestServer(create_app(Settings(snapshot="sample", teams_insecure_no_auth=True)))) as client:
        status, body = await post(client, fixture("invoke_recheck", connector))
        assert status == 200 and teams_turns.STILL_CHECKING in text_of(body["value"])
        assert connector.calls == []
    # The server has shut down, and the update went out first, while Graph was still there.
    [update] = connector.sent("message", method="PUT")
    assert "payments-api" in text_of(update.body["attachments"][0]["content"])


@pytest.fixture
async def teams_on_tenant(sample_tenant: SampleTenant) -> AsyncIterator[TestClient]:
    """The bot on a fake tenant the test can change while it runs."""
    app = create_app(Settings(teams_insecure_no_auth=True), directory=sample_tenant.directory)
    async with TestClient(TestServer(app)) as client:
        yield client


def recheck_id(card: dict[str, Any]) -> str:
    [action] = [a for a in card["actions"] if a.get("verb") == "diagnosis.recheck"]
    assert action["type"] == "Action.Execute"
    return str(action["data"]["id"])


def invoke(connector: FakeConnector, question_id: str) -> dict[str, Any]:
    activity = fixture("invoke_recheck", connector)
    activity["value"]["action"]["data"] = {"id": question_id}
    return activity


async def test_check_again_keeps_the_cause_then_says_what_changed(
    teams_on_tenant: TestClient, connector: FakeConnector, sample_tenant: SampleTenant
) -> None:
    await post(teams_on_tenant, fixture("personal_message", connector, SEED))
    [reply] = await answer_to(connector)
    first = reply.body["attachments"][0]["content"]
    question_id = recheck_id(first)
    assert question_id != PAYMENTS_APP  # the card carries an id; the question stays on the server
    headline = await primary_summary(teams_on_tenant, SEED)

    status, body = await post(teams_on_tenant, invoke(connector, question_id))
    assert status == 200 and body["type"] == CARD
    again = body["value"]
    assert headline in text_of(again) and "Re-checked " in text_of(again)
    assert "Nothing changed in Graph since the first answer." in text_of(again)
    assert recheck_id(again) == question_id

    added = datetime.now(UTC) - timedelta(minutes=3)
    sample_tenant.graph.use_snapshot(
        edited(add_secret(PAYMENTS_APP, "ci-2026b", "Xy7", added, added + timedelta(days=180)))
    )
    status, body = await post(teams_on_tenant, invoke(connector, question_id))
    changed = text_of(body["value"])
    assert headline in changed  # the client still sends the expired secret
    assert "What changed" in changed and "secret 'ci-2026b' (starts with 'Xy7'" in changed
    assert "The client must be updated to use it" in changed
    assert len(connector.calls) == 3  # typing, "Checking…" and the first card; re-checks answer inside the invoke


async def test_check_again_on_an_expired_question_answers_with_a_message_and_keeps_the_card(
    teams_on_tenant: TestClient, connector: FakeConnector
) -> None:
    status, body = await post(teams_on_tenant, invoke(connector, "AbCdEfGhIjKlMnOpQrStUv"))
    assert status == 200
    assert body == {"statusCode": 200, "type": teams_turns.MESSAGE_TYPE, "value": TOO_OLD}
    assert connector.calls == []


async def test_a_slow_check_again_on_an_expired_question_updates_the_card_with_the_notice(
    teams_on_tenant: TestClient, connector: FakeConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(teams_turns, "ACTION_BUDGET_SECONDS", 0.0)  # the card already says "checking again"
    status, body = await post(teams_on_tenant, invoke(connector, "AbCdEfGhIjKlMnOpQrStUv"))
    assert status == 200 and teams_turns.STILL_CHECKING in text_of(body["value"])
    await eventually(lambda: bool(connector.sent("message", method="PUT")))
    [update] = connector.sent("message", method="PUT")
    assert TOO_OLD in text_of(update.body["attachments"][0]["content"])


# --- authentication ----------------------------------------------------------------------------------


def test_teams_off_means_no_endpoint() -> None:
    app = create_app(Settings(snapshot="sample"))
    assert all(r.canonical != "/api/messages" for r in app.router.resources())


async def test_startup_warns_when_authentication_is_off(caplog: pytest.LogCaptureFixture) -> None:
    async with TestClient(TestServer(create_app(Settings(snapshot="sample", teams_insecure_no_auth=True)))):
        pass
    assert any(r.levelno == logging.WARNING and "authentication is OFF" in r.getMessage() for r in caplog.records)


async def test_startup_is_quiet_about_authentication_when_it_is_on(caplog: pytest.LogCaptureFixture) -> None:
    async with TestClient(TestServer(create_app(Settings(snapshot="sample", teams_app_id=BOT_APP_ID)))):
        pass
    assert not any("authentication is OFF" in r.getMessage() for r in caplog.records)


class Signer:
    """A Bot Framework stand-in: an RSA key, its JWKS, and tokens shaped like the ones Teams sends."""

    def __init__(self, kid: str = KID) -> None:
        self.kid = kid
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        self.jwks = {"keys": [public | {"kid": kid, "use": "sig", "endorsements": ["msteams"]}]}

    def token(
        self,
        service_url: str,
        *,
        audience: str = BOT_APP_ID,
        expires_in: int = 3600,
        issuer: str = "https://api.botframework.com",
        with_kid: bool = True,
        without: str = "",
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": issuer,
            "aud": audience,
            "serviceurl": service_url,
            "nbf": now - 60,
            "iat": now - 60,
            "exp": now + expires_in,
        }
        claims.pop(without, None)
        headers = {"kid": self.kid} if with_kid else {}
        return jwt.encode(claims, self.key, algorithm="RS256", headers=headers)


@pytest.fixture
def signer() -> Signer:
    return Signer()


@pytest.fixture
def outbound_tokens(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """With authentication on, the SDK fetches the bot's own token from Entra for its replies
    (impossible offline), so exactly that call is faked: MsalAuth.get_access_token hands out a fixed
    token and records what it was asked for. Everything around it is the SDK's real path."""
    asked: list[Any] = []

    async def token(self: MsalAuth, resource_url: str, scopes: list[str], force_refresh: bool = False) -> str:
        asked.append((resource_url, scopes))
        return "outbound-test-token"

    monkeypatch.setattr(MsalAuth, "get_access_token", token)
    return asked


@asynccontextmanager
async def secured_bot(jwks: dict[str, Any], *, hang: bool = False) -> AsyncIterator[tuple[TestClient, KeyServer]]:
    """The bot with authentication on, its signing keys served by a local key server."""
    settings = Settings(
        snapshot="sample", teams_app_id=BOT_APP_ID, teams_tenant_id="5f2c9e1a-7b3d-4c8e-a6f0-9d1b2e4c7a85"
    )
    async with (
        serving_signing_keys(jwks, hang=hang) as keys,
        TestClient(TestServer(create_app(settings))) as client,
    ):
        yield client, keys


@pytest.fixture
async def secured(signer: Signer, outbound_tokens: list[Any]) -> AsyncIterator[tuple[TestClient, list[Any]]]:
    async with secured_bot(signer.jwks) as (client, _):
        yield client, outbound_tokens


async def test_without_a_token_the_request_is_refused(
    secured: tuple[TestClient, list[Any]], connector: FakeConnector
) -> None:
    client, _ = secured
    status, _ = await post(client, fixture("personal_message", connector, SEED))
    assert status == 401
    assert connector.calls == []


async def test_a_signed_token_is_accepted_and_the_reply_carries_the_bots_token(
    secured: tuple[TestClient, list[Any]], connector: FakeConnector, signer: Signer
) -> None:
    client, asked = secured
    activity = fixture("personal_message", connector, SEED)
    status, _ = await post(client, activity, Authorization=f"Bearer {signer.token(connector.url)}")
    assert status == 202
    [reply] = await answer_to(connector)  # sent by the worker, as a proactive turn
    assert {call.authorization for call in connector.calls} == {"Bearer outbound-test-token"}
    assert await primary_summary(client, SEED) in text_of(reply.body["attachments"][0]["content"])
    assert ("https://api.botframework.com", ["https://api.botframework.com/.default"]) in asked


async def test_a_late_card_update_is_sent_with_the_bots_token_too(
    secured: tuple[TestClient, list[Any]], connector: FakeConnector, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = secured
    monkeypatch.setattr(teams_turns, "ACTION_BUDGET_SECONDS", 0.0)
    token = signer.token(connector.url)
    status, _ = await post(client, fixture("invoke_recheck", connector), Authorization=f"Bearer {token}")
    assert status == 200
    await eventually(lambda: bool(connector.sent("message", method="PUT")))
    assert connector.sent("message", method="PUT")[0].authorization == "Bearer outbound-test-token"


def _bad_authorization(problem: str, signer: Signer, service_url: str) -> str | None:
    claims = {"iss": "https://api.botframework.com", "aud": BOT_APP_ID, "exp": int(time.time()) + 3600}
    return {
        "no header": lambda: None,
        "not bearer": lambda: "Basic c2VjcmV0Ym90OnNlY3JldA==",
        "empty bearer": lambda: "Bearer",
        "two tokens": lambda: f"Bearer {signer.token(service_url)} {signer.token(service_url)}",
        "garbage": lambda: "Bearer not.a.token",
        "bad base64": lambda: "Bearer %%%.$$$.***",
        "shared-key algorithm": lambda: (
            "Bearer " + jwt.encode(claims, "a-shared-key-of-32-bytes-or-more!", algorithm="HS256", headers={"kid": KID})
        ),
        "unsigned": lambda: "Bearer " + jwt.encode(claims, None, algorithm="none", headers={"kid": KID}),
        "no kid": lambda: f"Bearer {signer.token(service_url, with_kid=False)}",
        "no expiry": lambda: f"Bearer {signer.token(service_url, without='exp')}",
        "expired": lambda: f"Bearer {signer.token(service_url, expires_in=-600)}",  # past the 5 min leeway
        "wrong audience": lambda: f"Bearer {signer.token(service_url, audience=OTHER_APP_ID)}",
        "unknown kid": lambda: f"Bearer {Signer(kid='another-key').token(service_url)}",
        "another key": lambda: f"Bearer {Signer().token(service_url)}",  # same kid, not the published key
        "wrong issuer": lambda: f"Bearer {signer.token(service_url, issuer='https://issuer.example.com/')}",
        "other service url": lambda: f"Bearer {signer.token('https://smba.trafficmanager.net/emea/')}",
    }[problem]()


@pytest.mark.parametrize(
    ("problem", "reason", "key_fetches"),
    [
        ("no header", "no Authorization header", 0),
        ("not bearer", "not a Bearer token", 0),
        ("empty bearer", "not a Bearer token", 0),
        ("two tokens", "not a Bearer token", 0),
        ("garbage", "not a JWT", 0),
        ("bad base64", "not a JWT", 0),
        ("shared-key algorithm", "not signed with RS256", 0),
        ("unsigned", "not signed with RS256", 0),
        ("no kid", "no key id (kid)", 0),
        ("no expiry", "no expiry", 0),
        ("expired", "token expired", 0),
        ("wrong audience", "another audience", 0),
        ("unknown kid", "token not valid (PyJWKClientError)", 1),
        ("another key", "token not valid (InvalidSignatureError)", 1),
        ("wrong issuer", "token not valid (Invalid issuer.)", 1),
        ("other service url", "serviceUrl is not the one the token was issued for", 1),
    ],
)
async def test_bad_tokens_are_refused_with_401_and_one_warning(
    signer: Signer,
    connector: FakeConnector,
    caplog: pytest.LogCaptureFixture,
    problem: str,
    reason: str,
    key_fetches: int,
) -> None:
    async with secured_bot(signer.jwks) as (client, keys):
        authorization = _bad_authorization(problem, signer, connector.url)
        headers = {"Authorization": authorization} if authorization is not None else {}
        caplog.clear()
        status, body = await post(client, fixture("personal_message", connector, SEED), **headers)
        loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert status == 401 and set(body) == {"error"}
    assert [r.levelno for r in loud] == [logging.WARNING], [r.getMessage() for r in loud]
    assert reason in loud[0].getMessage()  # refused for this reason, not by accident
    assert not loud[0].exc_info and "Traceback" not in caplog.text
    assert keys.hits == key_fetches  # only a token that could be right costs a key fetch
    assert connector.calls == []


async def test_a_token_without_kid_is_refused_before_any_key_fetch(signer: Signer, connector: FakeConnector) -> None:
    # The key endpoint takes requests and never answers: had the bot asked it, this would be a 503.
    async with secured_bot(signer.jwks, hang=True) as (client, keys):
        token = signer.token(connector.url, with_kid=False)
        status, _ = await post(client, fixture("personal_message", connector, SEED), Authorization=f"Bearer {token}")
    assert status == 401
    assert keys.hits == 0


async def test_an_unreachable_key_endpoint_answers_503_without_holding_every_request(
    signer: Signer, connector: FakeConnector, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(teams_auth, "KEY_FETCH_TIMEOUT", 0.2)
    async with secured_bot(signer.jwks, hang=True) as (client, keys):
        activity = fixture("personal_message", connector, SEED)
        token = signer.token(connector.url)
        response = await client.post("/api/messages", json=activity, headers={"Authorization": f"Bearer {token}"})
        assert response.status == 503
        assert response.headers["Retry-After"] == str(int(teams_auth.RETRY_FETCH_AFTER))
        again = await client.post("/api/messages", json=activity, headers={"Authorization": f"Bearer {token}"})
        assert again.status == 503
    assert keys.hits == 1  # the second request did not wait for the same dead endpoint again
    assert "signing keys unavailable (TimeoutError)" in caplog.text
    assert "Traceback" not in caplog.text
    assert connector.calls == []


async def test_signing_keys_are_fetched_once_for_many_requests(
    signer: Signer, connector: FakeConnector, outbound_tokens: list[Any]
) -> None:
    async with secured_bot(signer.jwks) as (client, keys):
        sent = itertools.count()

        async def send(text: str) -> int:
            activity = fixture("personal_message", connector, text)
            activity["id"] += f"-{next(sent)}"  # each its own message: one activity id is one answer
            status, _ = await post(client, activity, Authorization=f"Bearer {signer.token(connector.url)}")
            return status

        assert await asyncio.gather(*(send("help") for _ in range(5))) == [202] * 5  # all at once, cache cold
        assert [await send("help") for _ in range(3)] == [202] * 3
        await answer_to(connector, 8)
        stranger = Signer(kid="rotated-key").token(connector.url)
        for _ in range(3):  # an unknown kid refetches at most once a minute, not per request
            status, _ = await post(
                client, fixture("personal_message", connector, "help"), Authorization=f"Bearer {stranger}"
            )
            assert status == 401
    assert keys.hits == 1
    assert len(connector.sent("message", method="PUT")) == 8


def test_the_key_endpoint_is_microsofts_again_afterwards(signer: Signer) -> None:
    async def use() -> None:
        async with serving_signing_keys(signer.jwks) as keys:
            assert teams_auth.key_endpoint_for_tests == keys.url

    asyncio.run(use())
    assert teams_auth.key_endpoint_for_tests is None
