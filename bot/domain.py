"""Domain vocabulary shared by every layer: plain frozen dataclasses and enums, stdlib only.

Graph objects, platform payloads and card JSON are translated to and from these types at the
edges, so the use cases in `handlers` never see a wire format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from bot.rotation_types import Rotation, RotationOffer


class Cause(StrEnum):
    """Why a credential failed: the firm vocabulary of `findings[].cause`."""

    SECRET_VALUE_PASTED = "secret_value_pasted"
    SECRET_ID_USED_AS_VALUE = "secret_id_used_as_value"
    ALL_SECRETS_EXPIRED = "all_secrets_expired"
    EXPIRED_SECRET_IN_USE = "expired_secret_in_use"
    SECRET_MISMATCH = "secret_mismatch"
    SECRET_RECENTLY_ADDED = "secret_recently_added"
    NO_SECRETS = "no_secrets"
    SECRET_MISSING_FROM_REQUEST = "secret_missing_from_request"
    APP_NOT_FOUND = "app_not_found"
    APP_DELETED = "app_deleted"
    APP_IN_OTHER_TENANT = "app_in_other_tenant"
    APP_DISABLED = "app_disabled"
    TENANT_MISMATCH = "tenant_mismatch"
    SECRET_LIMIT_REACHED = "secret_limit_reached"
    SECRET_EXPIRING_SOON = "secret_expiring_soon"
    APP_ID_MASKED = "app_id_masked"
    NO_APP_ID = "no_app_id"
    UNKNOWN_CODE = "unknown_code"
    PERMISSION_MISSING = "permission_missing"


class Verb(StrEnum):
    """Button verbs, shared by Slack (`action_id`) and Teams (`Action.Execute` verb)."""

    # id: a stored question's id (old cards: a bare app id); ask the first question again, Graph as it is now
    RECHECK = "diagnosis.recheck"
    # id: a warning digest's id. Acknowledge: those credentials are not warned again at these thresholds.
    EXPIRY_ACK = "expiry.ack"
    # Two snooze verbs rather than a duration in the id: Slack wants action ids unique within a block
    # and our action_id is the verb, and the id stays a bare id (the state stays server side).
    EXPIRY_SNOOZE_DAY = "expiry.snooze.1d"
    EXPIRY_SNOOZE_WEEK = "expiry.snooze.7d"
    EXPIRY_RECHECK = "expiry.recheck"  # id: a warning digest's id; its apps' credentials asked of Graph now
    ROTATION_REQUEST = "rotation.request"  # id: an app id (diagnosis cards) or a warning digest's id
    ROTATION_APPROVE = "rotation.approve"  # id: a rotation request's id (handlers/rotation.py)
    ROTATION_REJECT = "rotation.reject"  # id: a rotation request's id; a reason comes with the `reject` command
    ROTATION_RETIRE = "rotation.retire"  # id: a rotation request's id; removes the secret it replaced


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Category(StrEnum):
    """Families of AADSTS codes, used to pick the checks and the tone of an answer."""

    CLIENT_CREDENTIAL = "client credential"
    CERTIFICATE = "certificate/assertion"
    FEDERATION = "federation"
    TENANT = "tenant/cloud"
    CONSENT = "consent"
    CONDITIONAL_ACCESS = "conditional access"
    USER_SIGN_IN = "user sign-in"
    THROTTLING = "throttling"
    OTHER = "other"


class CredentialKind(StrEnum):
    SECRET = "secret"
    CERTIFICATE = "certificate"


class CredentialState(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"


class FoundIn(StrEnum):
    TENANT = "tenant"
    DELETED = "deleted"
    OTHER_TENANT = "other_tenant"
    NOWHERE = "nowhere"


class GraphMode(StrEnum):
    LIVE = "live"
    SNAPSHOT = "snapshot"
    NONE = "none"


# --- what a paste says -------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedInput:
    """The facts read from a pasted error. Never holds a secret value, only that one was seen."""

    codes: tuple[int, ...] = ()
    app_id: str | None = None
    app_id_masked: bool = False
    tenant: str | None = None
    trace_id: str | None = None
    correlation_id: str | None = None
    timestamp: datetime | None = None
    error: str | None = None
    secret_value_detected: bool = False
    # Internal evidence, not part of the JSON `input` object:
    secret_value_certain: bool = False
    leaked_hints: tuple[str, ...] = ()  # first three characters of each pasted secret (Graph's `hint`)
    guids: tuple[str, ...] = ()  # every well-formed GUID, to compare with secret key ids
    secret_guid: str | None = None  # a GUID passed where a secret value belongs (-p, client_secret=)
    bare_guid: bool = False  # the paste is one GUID alone: an app id to look up, or a secret's ID
    login_host: str | None = None  # a national cloud's sign-in host the paste names (login.microsoftonline.us)
    common_authority: bool = False  # the token URL used /common, /organizations or /consumers
    client_credentials: bool = False  # the paste shows an app signing in with its own credential

    @property
    def recognised(self) -> bool:
        return bool(self.codes or self.app_id or self.app_id_masked or self.secret_value_detected)


# --- the AADSTS catalog ------------------------------------------------------------------------


LOOKUP_URL = "https://login.microsoftonline.com/error?code={code}"


@dataclass(frozen=True)
class CodeInfo:
    """One AADSTS code explained in our words."""

    code: int
    name: str
    summary: str
    category: Category
    fix: tuple[str, ...] = ()

    @property
    def lookup_url(self) -> str:
        return LOOKUP_URL.format(code=self.code)


# --- what the directory says -------------------------------------------------------------------


@dataclass(frozen=True)
class Credential:
    kind: CredentialKind
    key_id: str
    display_name: str | None
    hint: str | None
    start: datetime | None
    end: datetime | None

    def state_at(self, when: datetime) -> CredentialState:
        if self.start is not None and when < self.start:
            return CredentialState.NOT_YET_VALID
        if self.end is not None and when >= self.end:
            return CredentialState.EXPIRED
        return CredentialState.ACTIVE

    def is_valid_at(self, when: datetime) -> bool:
        return self.state_at(when) is CredentialState.ACTIVE

    def days_left(self, when: datetime) -> int | None:
        """Whole days until expiry (negative once expired); None for a credential that never ends."""
        if self.end is None:
            return None
        return (self.end - when).days


@dataclass(frozen=True)
class FederatedCredential:
    name: str
    issuer: str
    subject: str
    audiences: tuple[str, ...] = ()


@dataclass(frozen=True)
class Owner:
    display_name: str | None
    user_principal_name: str | None
    mail: str | None = None
    object_id: str | None = None  # the owner's Entra object id (Teams mentions, scan reports, rotation)

    @property
    def label(self) -> str:
        return self.display_name or self.user_principal_name or self.mail or "unnamed owner"


@dataclass(frozen=True)
class Application:
    object_id: str
    app_id: str
    display_name: str
    sign_in_audience: str | None = None
    credentials: tuple[Credential, ...] = ()
    federated_credentials: tuple[FederatedCredential, ...] = ()
    owners: tuple[Owner, ...] = ()
    deleted_at: datetime | None = None
    disabled_by_microsoft: bool = False
    tags: tuple[str, ...] | None = None  # None: not read (a source without them)

    @property
    def secrets(self) -> tuple[Credential, ...]:
        return tuple(c for c in self.credentials if c.kind is CredentialKind.SECRET)

    @property
    def certificates(self) -> tuple[Credential, ...]:
        return tuple(c for c in self.credentials if c.kind is CredentialKind.CERTIFICATE)


@dataclass(frozen=True)
class ServicePrincipal:
    object_id: str
    app_id: str
    display_name: str
    account_enabled: bool = True
    app_owner_organization_id: str | None = None


@dataclass(frozen=True)
class Tenant:
    id: str
    domains: tuple[str, ...] = ()

    def names(self, value: str) -> bool:
        """True when `value` (a GUID or a domain) refers to this tenant."""
        value = value.lower()
        return value == self.id or value in self.domains


@dataclass(frozen=True)
class Coverage:
    """What a directory source holds. Live Graph holds it all; an exported file often less
    (`az ad app list --all` prints applications only), and what a source lacks proves nothing."""

    tenant: bool = True
    service_principals: bool = True
    deleted_applications: bool = True
    sign_ins: bool = True
    audits: bool = True

    @property
    def complete_directory(self) -> bool:
        """True when an app missing from the source is missing from the tenant."""
        return self.service_principals and self.deleted_applications


@dataclass(frozen=True)
class AppLookup:
    """Everything the core lookup learned about one appId, in one Graph round trip where possible."""

    app_id: str
    application: Application | None = None
    service_principal: ServicePrincipal | None = None
    deleted_application: Application | None = None
    tenant: Tenant | None = None
    missing_permissions: tuple[str, ...] = ()
    round_trips: int = 1  # of the lookup; `activity` counts the ones it needed beyond them
    coverage: Coverage = Coverage()
    activity: Activity | None = None  # the logs, when the lookup was asked for them (`ActivityQuery`)


@dataclass(frozen=True)
class SignIn:
    created: datetime
    error_code: int | None
    ip_address: str | None
    credential_key_id: str | None
    correlation_id: str | None
    credential_type: str | None = None


@dataclass(frozen=True)
class AuditedKey:
    """A secret or certificate named in an audit entry's KeyDescription."""

    key_id: str
    kind: CredentialKind | None  # None: a key type other than Password or AsymmetricX509Cert
    display_name: str | None


@dataclass(frozen=True)
class AuditEntry:
    when: datetime
    activity: str
    actor: str | None
    result: str | None = None
    target_type: str | None = None  # "Application" or "ServicePrincipal"
    added: tuple[AuditedKey, ...] = ()
    removed: tuple[AuditedKey, ...] = ()
    account_enabled: bool | None = None  # the new accountEnabled when the entry changed it

    @property
    def is_deletion(self) -> bool:
        return self.activity.strip().lower().startswith("delete application")


SIGN_IN_WINDOW = timedelta(minutes=15)  # sign-ins read either side of an error's timestamp


@dataclass(frozen=True)
class ActivityQuery:
    """Which logs a paste asks about: its correlation id, the error's time (`around`), where the logs end."""

    since: datetime
    correlation_id: str | None = None
    around: datetime | None = None


@dataclass(frozen=True)
class Activity:
    """Optional evidence from the audit logs; empty when the tenant or permissions do not allow it."""

    sign_ins: tuple[SignIn, ...] = ()  # the app's sign-ins: around `around`, else the latest
    audits: tuple[AuditEntry, ...] = ()
    missing_permissions: tuple[str, ...] = ()
    round_trips: int = 1
    correlation_id: str | None = None  # asked for; `correlated` holds the sign-ins that carry it
    correlated: tuple[SignIn, ...] = ()
    around: datetime | None = None  # `sign_ins` are from SIGN_IN_WINDOW either side of this time
    not_in_source: tuple[str, ...] = ()  # logs the source does not hold ("sign-in", "audit"): a file


# --- the answer --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    cause: Cause
    severity: Severity
    summary: str
    evidence: tuple[str, ...] = ()
    fix: tuple[str, ...] = ()


@dataclass(frozen=True)
class GraphReport:
    mode: GraphMode
    round_trips: int = 0
    missing_permissions: tuple[str, ...] = ()
    coverage: Coverage = Coverage()  # what the source held: a file may lack SPs, deleted apps, logs


@dataclass(frozen=True)
class Change:
    """One difference in Graph between the first answer and a re-check, and what it means for the client."""

    what: str
    meaning: str


@dataclass(frozen=True)
class Recheck:
    """How a re-checked answer relates to the first answer to the same question."""

    checked_at: datetime
    first_answered_at: datetime | None  # None: the question was not kept (old card, store down)
    changes: tuple[Change, ...] = ()
    cause_kept: bool = False  # the first answer's cause stands although Graph no longer shows its evidence
    note: str | None = None


@dataclass(frozen=True)
class CommandReply:
    """The answer to a chat command (`watch`, `unwatch`, `watching`): our own wording, in headed lines.
    Carried by a Diagnosis (`command`) so every adapter shows it as it shows the welcome."""

    title: str
    sections: tuple[tuple[str, tuple[str, ...]], ...] = ()
    understood: bool = True  # False: the command was not understood; the sections say how to write it


@dataclass(frozen=True)
class Diagnosis:
    input: ParsedInput
    errors: tuple[CodeInfo, ...]
    app: Application | None
    found_in: FoundIn | None
    findings: tuple[Finding, ...]
    graph: GraphReport
    reference_time: datetime
    activity: Activity | None = None
    notes: tuple[str, ...] = field(default=())
    question_id: str | None = None  # where the question is kept for Check again; the button carries it
    recheck: Recheck | None = None

    @property
    def recheckable(self) -> bool:
        """Check again needs an app to look up and a Graph to ask."""
        return bool(self.input.app_id) and self.graph.mode is not GraphMode.NONE

    asked_for_help: bool = False  # the message asked what the bot does: answered with the welcome
    command: CommandReply | None = None  # the message was a chat command (`watch` ...): answered with this
    rotation: Rotation | None = None  # the answer is a rotation request's card (handlers/rotation.py)
    rotation_offer: RotationOffer | None = None  # a Request rotation button, or why there is none

    @property
    def primary(self) -> Finding | None:
        """The first error finding is the headline cause; else the most important finding."""
        for finding in self.findings:
            if finding.severity is Severity.ERROR:
                return finding
        return self.findings[0] if self.findings else None


@dataclass(frozen=True)
class FirstAnswer:
    """What the first answer said and saw, kept to tell what changed when the question is asked again."""

    answered_at: datetime
    finding: Finding | None  # the primary finding
    found_in: FoundIn | None
    credentials: tuple[Credential, ...] = ()


@dataclass(frozen=True)
class Question:
    """A pasted error as facts (never a secret value) plus its first answer: what Check again re-asks."""

    input: ParsedInput
    first: FirstAnswer


class NoticeReason(StrEnum):
    EXPIRED = "expired"  # no question under that id: too old, or never kept
    UNAVAILABLE = "unavailable"  # the state store could not be asked
    NOT_SET_UP = "not_set_up"  # the button's feature is not configured here (rotation, for now)
    REFUSED = "refused"  # the person may not do that (a rotation's requester approving, a non-approver)


@dataclass(frozen=True)
class Notice:
    """A short answer to a button when there is no diagnosis to show; the card it was on stays as it is."""

    reason: NoticeReason
    text: str


# --- failures of the directory port -------------------------------------------------------------


class DirectoryError(Exception):
    """Graph could not answer; the message is safe to show (never contains a secret)."""

    round_trips: int = 1  # requests sent before giving up, for the answer's Graph report


class PermissionDenied(DirectoryError):
    def __init__(self, permission: str, what: str) -> None:
        super().__init__(f"Graph refused {what}: the bot needs {permission}")
        self.permission = permission
        self.what = what


class Throttled(DirectoryError):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"Graph is throttling requests; retry after {retry_after:g} s")
        self.retry_after = retry_after


class DirectoryUnavailable(DirectoryError):
    pass


class GraphAuthFailed(DirectoryError):
    """The bot's own Graph credential was refused (HTTP 401, or no token): not a missing permission.

    `credential` names where that credential comes from (variable names, tenant and client ids),
    never a secret value.
    """

    def __init__(self, credential: str, detail: str = "") -> None:
        super().__init__(
            f"Microsoft Graph did not accept the bot's own credential{detail}: check {credential}."
            " The bot could not sign in to Graph; this is not a missing permission."
        )
        self.credential = credential


class StateUnavailable(Exception):
    """The shared state store (Redis) cannot be reached; callers degrade and log it.

    `reason` names the failure by exception types only (`ConnectionError from TimeoutError`), never a
    message or value, so it can be logged anywhere.
    """

    def __init__(self, message: str, reason: str = "unknown") -> None:
        super().__init__(message)
        self.reason = reason


# --- the tenant-wide credential scan ------------------------------------------------------------


class ObjectType(StrEnum):
    APPLICATION = "application"
    SERVICE_PRINCIPAL = "servicePrincipal"


class ExpiryState(StrEnum):
    EXPIRED = "expired"
    EXPIRING = "expiring"  # ends within the largest configured threshold
    VALID = "valid"
    NO_END = "no_end"


@dataclass(frozen=True, slots=True)  # a scan keeps one per due credential: 100,000s
class InventoryCredential:
    """One credential of one application or service principal, as the scan keeps it: only what
    warnings and the scan report need (never a value; `hint` is Graph's own three characters)."""

    object_type: ObjectType
    app_id: str
    object_id: str
    display_name: str
    kind: CredentialKind
    key_id: str
    name: str | None
    hint: str | None
    start: datetime | None
    end: datetime | None
    usage: str | None = None  # keyCredentials' "Sign" / "Verify"; None for secrets
    owners: tuple[Owner, ...] = ()
    tags: tuple[str, ...] = ()  # the app's Entra tags, for routing (`tag:NAME`)


@dataclass(frozen=True, slots=True)  # a scan keeps one per due credential: 100,000s
class ScannedCredential:
    """A credential judged at one moment: one row of `secretbot scan` and of a warning digest."""

    credential: InventoryCredential
    days_left: int | None  # as in diagnose: whole days, negative once expired, None without an end
    state: ExpiryState
    threshold: int | None  # smallest configured threshold >= days_left; 0 once expired; None if none
    replaced_by: str | None = None  # key id of a newer credential of the same kind that ends later
    last_used: datetime | None = None


@dataclass(frozen=True)
class ScanReport:
    """What `secretbot scan` prints: the tenant's totals and the judged rows it was asked for."""

    scanned_at: datetime
    tenant: str | None
    applications: int
    service_principals: int
    credentials: int  # every credential inventoried, whether or not it is among `rows`
    rows: tuple[ScannedCredential, ...]
    notes: tuple[str, ...] = ()  # what the scan could not tell (e.g. last use without AuditLog.Read.All)
