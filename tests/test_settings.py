"""Configuration mistakes stop the server at start with a message naming the variable."""

from __future__ import annotations

import pytest

from bot.settings import INSECURE_TEAMS_FLAG, TEAMS_PREFIX, Settings


def test_defaults_need_no_environment() -> None:
    settings = Settings.from_env({})
    assert (settings.port, settings.redis_url, settings.slack_enabled, settings.teams_enabled) == (
        3978,
        None,
        False,
        False,
    )


def test_teams_registration_without_secret_and_tenant_is_refused() -> None:
    with pytest.raises(ValueError) as error:
        Settings.from_env({TEAMS_PREFIX + "CLIENTID": "11111111-2222-3333-4444-555555555555"})
    assert TEAMS_PREFIX + "CLIENTSECRET" in str(error.value)
    assert TEAMS_PREFIX + "TENANTID" in str(error.value)


def test_teams_registration_without_tenant_names_only_the_tenant() -> None:
    env = {TEAMS_PREFIX + "CLIENTID": "11111111-2222-3333-4444-555555555555", TEAMS_PREFIX + "CLIENTSECRET": "s"}
    with pytest.raises(ValueError) as error:
        Settings.from_env(env)
    assert "TENANTID" in str(error.value)
    assert "CLIENTSECRET" not in str(error.value).split("but", 1)[1]


def test_complete_teams_registration_enables_teams_with_authentication() -> None:
    env = {TEAMS_PREFIX + "CLIENTID": "a", TEAMS_PREFIX + "CLIENTSECRET": "b", TEAMS_PREFIX + "TENANTID": "c"}
    settings = Settings.from_env(env)
    assert settings.teams_enabled and not settings.teams_insecure_no_auth


def test_insecure_teams_flag_must_be_spelled_out() -> None:
    assert Settings.from_env({INSECURE_TEAMS_FLAG: "true"}).teams_insecure_no_auth
    with pytest.raises(ValueError, match=INSECURE_TEAMS_FLAG):
        Settings.from_env({INSECURE_TEAMS_FLAG: "maybe"})


def test_slack_bot_token_alone_is_refused() -> None:
    with pytest.raises(ValueError, match="SLACK_SIGNING_SECRET"):
        Settings.from_env({"SLACK_BOT_TOKEN": "xoxb-1"})
    assert Settings.from_env({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}).slack_enabled


@pytest.mark.parametrize("port", ["0", "65536", "eighty"])
def test_bad_port_is_refused(port: str) -> None:
    with pytest.raises(ValueError, match="PORT"):
        Settings.from_env({"PORT": port})


def test_graph_max_in_flight_defaults_to_32_and_can_be_set() -> None:
    assert Settings.from_env({}).graph_max_in_flight == 32
    assert Settings.from_env({"SECRETBOT_GRAPH_MAX_IN_FLIGHT": " 64 "}).graph_max_in_flight == 64


@pytest.mark.parametrize("value", ["0", "-3", "many", "1.5", "257"])
def test_graph_max_in_flight_out_of_range_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="SECRETBOT_GRAPH_MAX_IN_FLIGHT must be"):
        Settings.from_env({"SECRETBOT_GRAPH_MAX_IN_FLIGHT": value})


def test_a_worker_lowers_its_priority_by_ten_unless_told_otherwise() -> None:
    assert Settings.from_env({}).worker_niceness == 10
    assert Settings.from_env({"SECRETBOT_WORKER_NICENESS": " 0 "}).worker_niceness == 0
    for value in ("-5", "20", "low"):
        with pytest.raises(ValueError, match="SECRETBOT_WORKER_NICENESS must be a whole number from 0 to 19"):
            Settings.from_env({"SECRETBOT_WORKER_NICENESS": value})


def test_log_level_is_one_of_four_words() -> None:
    assert Settings.from_env({}).log_level == "info"
    assert Settings.from_env({"SECRETBOT_LOG_LEVEL": "DEBUG"}).log_level == "debug"
    with pytest.raises(ValueError, match="SECRETBOT_LOG_LEVEL must be one of debug, info, warning, error"):
        Settings.from_env({"SECRETBOT_LOG_LEVEL": "verbose"})


def test_the_scan_runs_daily_at_seven_utc_unless_told_otherwise() -> None:
    assert Settings.from_env({}).scan_cron == "0 7 * * *"
    assert Settings.from_env({"SECRETBOT_SCAN_CRON": " 30 6 * * 1-5 "}).scan_cron == "30 6 * * 1-5"


@pytest.mark.parametrize("cron", ["every day", "0 7 * *", "61 7 * * *", "0 7 * * * * *"])
def test_a_malformed_scan_schedule_is_refused_with_the_value(cron: str) -> None:
    with pytest.raises(ValueError, match="SECRETBOT_SCAN_CRON") as refused:
        Settings.from_env({"SECRETBOT_SCAN_CRON": cron})
    assert repr(cron) in str(refused.value)
