"""Typed configuration from the environment. Secrets have no defaults; names follow each ecosystem."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from bot.expiry import Routes
from bot.routes import load_routes

DEFAULT_GRAPH_BASE_URL = "https://graph.microsoft.com"
DEFAULT_SLACK_API_URL = "https://slack.com/api/"
# Graph batches one replica keeps in flight. With Graph answering in L seconds and two round trips
# per diagnosis, a replica answers at most MAX / (2 * L) diagnoses a second: 32 / 0.2 s = 160/s at
# 100 ms (docs/benchmarks.md has the measurements behind the default).
DEFAULT_GRAPH_MAX_IN_FLIGHT = 32
MAX_GRAPH_MAX_IN_FLIGHT = 256  # far beyond any measured gain; httpcore's pool work grows with it
LOG_LEVELS = ("debug", "info", "warning", "error")
LOOPBACK = "127.0.0.1"  # where `secretbot demo` listens unless told otherwise: this machine only
# The Agents SDK's own names for the bot's Azure registration (CONNECTIONS__SERVICE_CONNECTION__…).
TEAMS_PREFIX = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"
# Turning Teams authentication off is for a laptop and a local emulator only; the name says so.
INSECURE_TEAMS_FLAG = "SECRETBOT_INSECURE_LOCAL_TESTING_TEAMS_WITHOUT_AUTH"

DEFAULT_SCAN_CRON = "0 7 * * *"  # daily at 07:00 UTC: before the working day in Europe, after it in Asia

# azure-identity's DefaultAzureCredential reads these; any of them means "a credential is configured".
_CREDENTIAL_MARKERS = (
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_FEDERATED_TOKEN_FILE",
    "IDENTITY_ENDPOINT",  # managed identity on App Service, Functions, Container Apps
    "MSI_ENDPOINT",
)


@dataclass(frozen=True)
class Settings:
    graph_base_url: str = DEFAULT_GRAPH_BASE_URL
    snapshot: str | None = None
    snapshot_latency: float = 0.0  # seconds the snapshot's fake Graph waits per request (demos, benchmarks)
    graph_credentials: bool = False
    graph_max_in_flight: int = DEFAULT_GRAPH_MAX_IN_FLIGHT
    # Where the Graph credential comes from, for the answer when Graph refuses it; never its value.
    graph_credential_source: str = "the bot's Graph credential (the AZURE_* variables)"
    port: int = 3978
    host: str = "0.0.0.0"
    redis_url: str | None = None
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    teams_app_id: str | None = None
    teams_app_secret: str | None = None
    teams_tenant_id: str | None = None
    teams_insecure_no_auth: bool = False
    log_level: str = "info"
    # Jobs one worker runs at once. Answers mostly wait on Graph, so more than the cores; the Graph
    # cap (graph_max_in_flight) still bounds requests in flight.
    worker_concurrency: int = 16
    # SECRETBOT_WORKER_NICENESS: how much a worker process (`secretbot worker`) lowers its own CPU
    # priority. Beside a web tier on the same cores it leaves them to the acks (Slack's 3 s deadline);
    # answers wait a moment instead. Alone in its own container it changes nothing. 0 keeps the priority.
    worker_niceness: int = 10
    # SECRETBOT_ROUTES: the TOML routes file (bot/routes.py), read and checked here so a mistake
    # stops the server at start with the file, line and reason; unset: no routes, no defaults.
    routes: Routes = field(default_factory=Routes)
    # SECRETBOT_SCAN_CRON: when the expiry scan runs (five cron fields, UTC), once per tick across replicas.
    scan_cron: str = DEFAULT_SCAN_CRON
    # Rotation (handlers/rotation.py). Approvers: Slack user ids, Entra object ids, `group:<object id>`.
    approvers: tuple[str, ...] = ()
    approval_ttl: timedelta = timedelta(hours=24)  # a request nobody approved in this time expires
    secret_lifetime_days: int = 180  # a new secret's lifetime, shortened to what the tenant's policy allows
    retire_grace: timedelta = timedelta(days=7)  # the old secret may go after this even without sign-in evidence
    rotation_apps: tuple[str, ...] = ()  # app ids or `tag:NAME` beside the `secretbot:rotate` tag
    keyvault_url: str | None = None  # where new secrets go; with live Graph, no vault means no rotation
    # Where every rotation request is posted too, for the approvers (a Slack channel id; a Teams
    # conversation id the bot is installed in, as in the routes file's `teams_channel`).
    approvers_slack_channel: str | None = None
    approvers_teams_channel: str | None = None

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_bot_token and (self.slack_signing_secret or self.slack_app_token))

    @property
    def teams_enabled(self) -> bool:
        return bool(self.teams_app_id or self.teams_insecure_no_auth)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            graph_base_url=env.get("GRAPH_BASE_URL") or DEFAULT_GRAPH_BASE_URL,
            snapshot=env.get("SECRETBOT_SNAPSHOT") or None,
            snapshot_latency=_milliseconds(env, "SECRETBOT_SNAPSHOT_LATENCY_MS"),
            graph_credentials=_has_credentials(env),
            graph_max_in_flight=_max_in_flight(env.get("SECRETBOT_GRAPH_MAX_IN_FLIGHT")),
            graph_credential_source=graph_credential_source(env),
            port=_port(env.get("PORT")),
            host=env.get("HOST") or "0.0.0.0",
            redis_url=env.get("REDIS_URL") or None,
            slack_bot_token=env.get("SLACK_BOT_TOKEN") or None,
            slack_signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
            slack_app_token=env.get("SLACK_APP_TOKEN") or None,
            slack_api_url=env.get("SLACK_API_URL") or DEFAULT_SLACK_API_URL,
            teams_app_id=env.get(TEAMS_PREFIX + "CLIENTID") or None,
            teams_app_secret=env.get(TEAMS_PREFIX + "CLIENTSECRET") or None,
            teams_tenant_id=env.get(TEAMS_PREFIX + "TENANTID") or None,
            teams_insecure_no_auth=_flag(env, INSECURE_TEAMS_FLAG),
            log_level=_log_level(env.get("SECRETBOT_LOG_LEVEL")),
            worker_concurrency=_concurrency(env.get("SECRETBOT_WORKER_CONCURRENCY")),
            worker_niceness=_niceness(env.get("SECRETBOT_WORKER_NICENESS")),
            routes=load_routes(env.get("SECRETBOT_ROUTES") or None),
            scan_cron=_cron(env.get("SECRETBOT_SCAN_CRON")),
            approvers=_approvers(env.get("SECRETBOT_APPROVERS")),
            approval_ttl=_duration(env, "SECRETBOT_APPROVAL_TTL", timedelta(hours=24)),
            secret_lifetime_days=_days(env.get("SECRETBOT_SECRET_LIFETIME_DAYS")),
            retire_grace=_duration(env, "SECRETBOT_RETIRE_GRACE", timedelta(days=7)),
            rotation_apps=_rotation_apps(env.get("SECRETBOT_ROTATION_APPS")),
            keyvault_url=_keyvault_url(env.get("KEYVAULT_URL")),
            approvers_slack_channel=(env.get("SECRETBOT_APPROVERS_SLACK_CHANNEL") or "").strip() or None,
            approvers_teams_channel=(env.get("SECRETBOT_APPROVERS_TEAMS_CHANNEL") or "").strip() or None,
        )._checked()

    def _checked(self) -> Settings:
        # A Teams registration without its secret or tenant would accept messages and fail every
        # reply; say so at start rather than on the first message.
        if self.teams_app_id and not (self.teams_app_secret and self.teams_tenant_id):
            missing = [
                n for n, v in (("CLIENTSECRET", self.teams_app_secret), ("TENANTID", self.teams_tenant_id)) if not v
            ]
            names = " and ".join(TEAMS_PREFIX + name for name in missing)
            raise ValueError(f"Teams is configured ({TEAMS_PREFIX}CLIENTID) but {names} is not set")
        if self.slack_bot_token and not (self.slack_signing_secret or self.slack_app_token):
            # Without either, no Slack request could be verified or received.
            raise ValueError("SLACK_BOT_TOKEN is set but neither SLACK_SIGNING_SECRET nor SLACK_APP_TOKEN is")
        return self


def _has_credentials(env: Mapping[str, str]) -> bool:
    if env.get("SECRETBOT_GRAPH_CREDENTIAL", "").lower() == "default":
        return True  # e.g. a system-assigned managed identity, which sets no variable we can see
    return any(env.get(name) for name in _CREDENTIAL_MARKERS)


def graph_credential_source(env: Mapping[str, str]) -> str:
    """Which credential DefaultAzureCredential will use, in its own order, named by its variables."""
    ids = f"client id {env.get('AZURE_CLIENT_ID') or '(AZURE_CLIENT_ID not set)'}"
    ids += f" in tenant {env.get('AZURE_TENANT_ID') or '(AZURE_TENANT_ID not set)'}"
    if env.get("AZURE_CLIENT_SECRET"):
        return f"the client secret in AZURE_CLIENT_SECRET for {ids} (azure-identity EnvironmentCredential)"
    if env.get("AZURE_CLIENT_CERTIFICATE_PATH"):
        return f"the certificate in AZURE_CLIENT_CERTIFICATE_PATH for {ids} (azure-identity EnvironmentCredential)"
    if env.get("AZURE_FEDERATED_TOKEN_FILE"):
        return (
            f"the federated token in AZURE_FEDERATED_TOKEN_FILE for {ids} (azure-identity WorkloadIdentityCredential)"
        )
    if env.get("IDENTITY_ENDPOINT") or env.get("MSI_ENDPOINT"):
        which = f"client id {env['AZURE_CLIENT_ID']}" if env.get("AZURE_CLIENT_ID") else "system-assigned"
        return f"this host's managed identity ({which}; azure-identity ManagedIdentityCredential)"
    return (
        "the credential DefaultAzureCredential found (SECRETBOT_GRAPH_CREDENTIAL=default: a managed identity"
        " or an Azure CLI login)"
    )


def _cron(value: str | None) -> str:
    if not value:
        return DEFAULT_SCAN_CRON  # valid: croniter (~15 ms to import, every command) checks only what is set
    from croniter import croniter  # type: ignore[import-untyped]  # SAQ's own cron parser

    cron = value.strip()
    # Five fields; a sixth (seconds) as SAQ allows, for tests and demos that cannot wait a minute.
    if len(cron.split()) not in (5, 6) or not croniter.is_valid(cron):
        raise ValueError(f"SECRETBOT_SCAN_CRON must be cron fields in UTC, like {DEFAULT_SCAN_CRON!r}, got {cron!r}")
    return cron


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise ValueError(f"{name} must be true or false, got {value!r}")


def _milliseconds(env: Mapping[str, str], name: str) -> float:
    value = env.get(name, "").strip()
    try:
        return max(float(value or 0), 0.0) / 1000
    except ValueError:
        raise ValueError(f"{name} must be a number of milliseconds, got {value!r}") from None


def _port(value: str | None) -> int:
    if not value:
        return 3978
    try:
        port = int(value)
    except ValueError:
        raise ValueError(f"PORT must be a number, got {value!r}") from None
    if not 0 < port < 65536:
        raise ValueError(f"PORT must be between 1 and 65535, got {port}")
    return port


def _max_in_flight(value: str | None) -> int:
    name = "SECRETBOT_GRAPH_MAX_IN_FLIGHT"
    if not value or not value.strip():
        return DEFAULT_GRAPH_MAX_IN_FLIGHT
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {value!r}") from None
    if not 1 <= number <= MAX_GRAPH_MAX_IN_FLIGHT:
        raise ValueError(f"{name} must be between 1 and {MAX_GRAPH_MAX_IN_FLIGHT}, got {number}")
    return number


def _log_level(value: str | None) -> str:
    level = (value or "info").strip().lower()
    if level not in LOG_LEVELS:
        raise ValueError(f"SECRETBOT_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return level


def _concurrency(value: str | None) -> int:
    if not value:
        return 16
    if not value.isdigit() or not 1 <= int(value) <= 1000:
        raise ValueError(f"SECRETBOT_WORKER_CONCURRENCY must be a whole number from 1 to 1000, got {value!r}")
    return int(value)


def _niceness(value: str | None) -> int:
    if value is None or value.strip() == "":
        return 10
    if not value.strip().isdigit() or not 0 <= int(value.strip()) <= 19:
        raise ValueError(f"SECRETBOT_WORKER_NICENESS must be a whole number from 0 to 19, got {value!r}")
    return int(value)


_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,20}")
_DURATION = re.compile(r"(\d+)\s*([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_LIFETIME_DAYS = 730  # Entra's longest custom secret lifetime in the portal is 24 months


def _items(value: str | None) -> list[str]:
    return [item for item in re.split(r"[,\s]+", value or "") if item]


def _approvers(value: str | None) -> tuple[str, ...]:
    found = []
    for item in _items(value):
        guid = item.removeprefix("group:")
        if _GUID.fullmatch(guid) or (not item.startswith("group:") and _SLACK_USER.fullmatch(item)):
            found.append(item.lower() if _GUID.fullmatch(guid) else item)
            continue
        raise ValueError(
            f"SECRETBOT_APPROVERS: {item!r} is neither a Slack user id (U...), an Entra object id nor "
            "group:<Entra group object id>"
        )
    return tuple(found)


def _rotation_apps(value: str | None) -> tuple[str, ...]:
    found = []
    for item in _items(value):
        if _GUID.fullmatch(item):
            found.append(item.lower())
        elif item.startswith("tag:") and len(item) > 4:
            found.append(item)
        else:
            raise ValueError(f"SECRETBOT_ROTATION_APPS: {item!r} is neither an app id nor tag:NAME")
    return tuple(found)


def _duration(env: Mapping[str, str], name: str, default: timedelta) -> timedelta:
    """`90m`, `24h`, `7d`, `1d 12h` or a number of seconds."""
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    if value.isdigit():
        seconds = int(value)
    elif _DURATION.sub("", value).strip() == "":
        seconds = sum(int(n) * _UNITS[unit] for n, unit in _DURATION.findall(value))
    else:
        raise ValueError(f"{name} must be a duration like 90m, 24h or 7d, got {value!r}")
    if seconds <= 0:
        raise ValueError(f"{name} must be longer than zero, got {value!r}")
    return timedelta(seconds=seconds)


def _days(value: str | None) -> int:
    name = "SECRETBOT_SECRET_LIFETIME_DAYS"
    if not value or not value.strip():
        return 180
    if not value.strip().isdigit() or not 1 <= int(value) <= MAX_LIFETIME_DAYS:
        raise ValueError(f"{name} must be a whole number of days from 1 to {MAX_LIFETIME_DAYS}, got {value!r}")
    return int(value)


def _keyvault_url(value: str | None) -> str | None:
    if not value or not value.strip():
        return None
    url = value.strip().rstrip("/")
    if not url.startswith("https://"):
        raise ValueError(f"KEYVAULT_URL must be the vault's https:// URL (https://NAME.vault.azure.net), got {url!r}")
    return url
