"""The routes file: what it means (who receives which app's warnings, at which thresholds) and how a
mistake in it stops the server at start with the file, the line and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import cli
from bot.domain import CredentialKind, InventoryCredential, ObjectType
from bot.expiry import DEFAULT_THRESHOLDS, AppMatcher, Destination, MatchBy, Platform, Routes, Subscription
from bot.routes import RoutesError, load_routes, parse_routes
from bot.settings import Settings
from handlers.routing import destinations_for

PAYMENTS_ID = "1b4e28ba-2fa1-4d2e-8a8e-0d7c5b1e9f01"
ROUTES = """\
# Where expiry warnings go.
[defaults]
slack_channel = "C0DEFAULT"
teams_channel = "19:defaults@thread.tacv2"
thresholds = [30, 14, 7, 1]

[[route]]
name = "payments-*"
slack_channel = "C0PAYMENTS"
thresholds = [60, 30, 7]

[[route]]
tag = ["team:identity", "critical"]
teams_channel = "19:identity@thread.tacv2"

[[route]]
app_id = "1B4E28BA-2FA1-4D2E-8A8E-0D7C5B1E9F01"
slack_channel = "C0PAYMENTS"
thresholds = [90]
"""

SLACK_DEFAULT = Destination(Platform.SLACK, "C0DEFAULT")
TEAMS_DEFAULT = Destination(Platform.TEAMS, "19:defaults@thread.tacv2")
PAYMENTS = Destination(Platform.SLACK, "C0PAYMENTS")
IDENTITY = Destination(Platform.TEAMS, "19:identity@thread.tacv2")
OPS = Destination(Platform.SLACK, "C0OPS")


def app(
    name: str, app_id: str = "9d0c7f4e-0000-4000-8000-000000000001", tags: tuple[str, ...] = ()
) -> InventoryCredential:
    return InventoryCredential(
        ObjectType.APPLICATION,
        app_id,
        "0b7a4c1e-0000-4000-8000-0000000000aa",
        name,
        CredentialKind.SECRET,
        "5f1e2d3c-0000-4000-8000-000000000001",
        "ci",
        "abc",
        None,
        None,
        tags=tags,
    )


@pytest.fixture
def routes() -> Routes:
    return parse_routes(ROUTES, "routes.toml")


def test_an_app_no_route_matches_goes_to_the_defaults(routes: Routes) -> None:
    assert destinations_for(app("billing-api"), routes, []) == {
        SLACK_DEFAULT: (30, 14, 7, 1),
        TEAMS_DEFAULT: (30, 14, 7, 1),
    }


def test_a_matching_route_replaces_the_defaults_and_brings_its_thresholds(routes: Routes) -> None:
    assert destinations_for(app("Payments-Gateway"), routes, []) == {PAYMENTS: (60, 30, 7)}


def test_every_matching_route_combines_and_a_shared_channel_gets_the_union(routes: Routes) -> None:
    both = app("payments-refunds", app_id=PAYMENTS_ID, tags=("Critical",))
    assert destinations_for(both, routes, []) == {
        PAYMENTS: (90, 60, 30, 7),  # the name route and the app id route, one channel
        IDENTITY: (30, 14, 7, 1),  # a route without thresholds takes the defaults'
    }


def test_subscriptions_add_channels_and_leave_the_defaults_alone(routes: Routes) -> None:
    watch_all = Subscription(OPS, AppMatcher(MatchBy.ALL), (3,))
    watch_payments = Subscription(SLACK_DEFAULT, AppMatcher(MatchBy.NAME, "payments-*"), (45,))
    subscriptions = [watch_all, watch_payments]

    assert destinations_for(app("billing-api"), routes, subscriptions) == {
        SLACK_DEFAULT: (30, 14, 7, 1),
        TEAMS_DEFAULT: (30, 14, 7, 1),
        OPS: (3,),
    }
    assert destinations_for(app("payments-gateway"), routes, subscriptions) == {
        PAYMENTS: (60, 30, 7),
        SLACK_DEFAULT: (45,),  # the subscription, not the defaults: a route matched this app
        OPS: (3,),
    }


def test_without_a_routes_file_only_subscriptions_receive_warnings() -> None:
    none = load_routes(None)
    assert none == Routes() and none.thresholds == DEFAULT_THRESHOLDS
    assert destinations_for(app("billing-api"), none, []) == {}
    tagged = Subscription(OPS, AppMatcher(MatchBy.TAG, "critical"), (7,))
    assert destinations_for(app("x", tags=("CRITICAL",)), none, [tagged]) == {OPS: (7,)}


def test_the_routes_file_is_read_from_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "routes.toml"
    path.write_text(ROUTES)
    settings = Settings.from_env({"SECRETBOT_ROUTES": str(path)})
    assert settings.routes.defaults == (SLACK_DEFAULT, TEAMS_DEFAULT)
    assert [route.line for route in settings.routes.routes] == [7, 12, 16]
    assert Settings.from_env({}).routes == Routes()


# --- mistakes: the line and the reason ---------------------------------------------------------------

MISTAKES = {
    "toml syntax": ('[defaults]\nslack_channel = "C1"\nthresholds = [30, 14,\n[[route]]\n', 4, "not valid TOML"),
    "unknown key in a route": (
        '[[route]]\nname = "a*"\nslack_channel = "C1"\nchannel = "C2"\n',
        4,
        "unknown key 'channel'",
    ),
    "unknown key in defaults": ('[defaults]\nslack_chanel = "C1"\n', 2, "unknown key 'slack_chanel'"),
    "unknown table": ('[defaults]\nslack_channel = "C1"\n\n[routes]\nname = "x"\n', 4, "unknown key 'routes'"),
    "route as a single table": ('[route]\nname = "a*"\nslack_channel = "C1"\n', 1, "list of tables"),
    "wrong type": ("[defaults]\nslack_channel = 42\n", 2, "slack_channel must be a channel id"),
    "no matcher": (
        '[defaults]\nslack_channel = "C1"\n\n[[route]]\nname = "a*"\nslack_channel = "C1"\n\n'
        '[[route]]\nslack_channel = "C2"\n',
        8,
        "matches nothing",
    ),
    "no destination": ('[[route]]\n# payments\ntag = "payments"\nthresholds = [7]\n', 1, "sends nowhere"),
    "threshold not a number": (
        '[[route]]\nname = "a*"\nslack_channel = "C1"\nthresholds = [30, "14"]\n',
        4,
        "threshold '14' is not a whole number",
    ),
    "threshold negative": ("[defaults]\nthresholds = [30, -1]\n", 2, "threshold -1 is out of range"),
    "threshold twice": ("[defaults]\nthresholds = [7, 7]\n", 2, "threshold 7 is listed twice"),
    "thresholds empty": ("[defaults]\nthresholds = []\n", 2, "non-empty list"),
    "bad app id": ('[[route]]\napp_id = "payments"\nslack_channel = "C1"\n', 2, "not an application (client) id"),
    "empty name": ('[[route]]\nname = " "\nslack_channel = "C1"\n', 2, "name is empty"),
    "matcher not a string": (
        '[[route]]\ntag = [1, 2]\nslack_channel = "C1"\n',
        2,
        "tag must be a string or a list of strings",
    ),
}


@pytest.mark.parametrize("name", list(MISTAKES))
def test_a_mistake_names_the_file_the_line_and_the_reason(name: str) -> None:
    text, line, reason = MISTAKES[name]
    with pytest.raises(RoutesError) as info:
        parse_routes(text, "/etc/secretbot/routes.toml")
    assert info.value.line == line, str(info.value)
    assert reason in info.value.reason
    assert str(info.value).startswith(f"routes file /etc/secretbot/routes.toml, line {line}: ")


def test_an_unreadable_file_says_so_without_a_line(tmp_path: Path) -> None:
    with pytest.raises(RoutesError) as info:
        load_routes(str(tmp_path / "missing.toml"))
    assert info.value.line is None and "cannot be read" in str(info.value)


def test_a_malformed_routes_file_stops_the_server_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "routes.toml"
    path.write_text('[defaults]\nslack_channel = "C1"\n\n[[route]]\nname = "payments-*"\nthresholds = [30]\n')
    monkeypatch.setenv("SECRETBOT_ROUTES", str(path))

    assert cli.main(["serve"]) == 2  # before anything listens
    err = capsys.readouterr().err
    assert (
        err
        == f"secretbot: routes file {path}, line 4: this route sends nowhere: give it slack_channel or teams_channel\n"
    )
