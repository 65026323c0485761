"""`Directory` over Microsoft Graph: every fact a paste needs about an app in one `$batch` round trip.

The batch is built by hand and posted through `GraphHttp` (aiohttp, an azure-identity token); its
inner responses are read here. Retries on 429/503/504 with Retry-After are ours, for the whole batch
or the parts Graph throttled inside it. Why not msgraph-sdk's transport: docs/decisions.md.

A paste that asks for logs (a code, a timestamp, a correlation id) sends the core lookup and the
log queries together to `/beta` (service-principal sign-ins exist only there, and one batch is one
version). Graph filters audit entries by their target's object id, which only the lookup returns:
the ids are remembered per appId (`ObjectIds`), so from the second paste about an app on its audits
are asked by id in the same batch. A first paste asks the tenant's application and service-principal
updates of the same window instead (Graph filters those by activity name), and keeps the entries
whose target is the app or its service principal once the lookup in the same answer has named them.
Only when that cannot stand for the query by id (more entries than one page, a deleted app: its
deletion is another activity, a recreated service principal) are the audits asked by id in a second
round trip.
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from bot.domain import (
    SIGN_IN_WINDOW,
    Activity,
    ActivityQuery,
    AppLookup,
    Coverage,
    DirectoryError,
    DirectoryUnavailable,
    GraphAuthFailed,
    GraphMode,
    PermissionDenied,
    Throttled,
)
from bot.graph import mapping
from bot.graph.hosts import MAX_IN_FLIGHT
from bot.graph.transport import GraphPoster, credential_errors, token_error, unreachable_errors

READ_PERMISSION = "Application.Read.All"
AUDIT_PERMISSION = "AuditLog.Read.All"
MAX_RETRY_WAIT = 30.0  # seconds; longer than this and the person is better told to retry
# The longest Retry-After believed: beyond MAX_RETRY_WAIT it is only reported, and a date days ahead
# (a wrong clock on either side) should not tell anyone to come back tomorrow.
MAX_RETRY_AFTER = 3600.0
UNREADABLE_RETRY_AFTER = 1.0  # seconds, when Retry-After is neither a number nor an HTTP date
SNAPSHOT_CREDENTIAL = "the snapshot's local token"
# How long a batch may wait for one of the MAX_IN_FLIGHT slots.
QUEUE_TIMEOUT = 30.0
RETRYABLE = frozenset({429, 503, 504})
LIVE_COVERAGE = Coverage()  # live Graph holds the tenant, every object and (with permission) the logs
_APP_FIELDS = ",".join(
    [
        *("id", "appId", "displayName", "signInAudience", "passwordCredentials", "keyCredentials"),
        *("deletedDateTime", "disabledByMicrosoftStatus"),
        "tags",  # which apps the bot may rotate: no second request for them
    ]
)
_SP_FIELDS = "id,appId,displayName,accountEnabled,appOwnerOrganizationId"
_OWNER_FIELDS = "id,displayName,userPrincipalName,mail"
# The logs are evidence: the answer stands without them.
_LOG_PARTS = frozenset({"signins", "correlated", "audits", "sp_audits", "app_updates", "sp_updates"})
_AUDIT_TOP = 20  # entries per app or service principal, newest first
# What audit_entry reads; the rest (additionalDetails, user agents) is left at Graph.
_AUDIT_FIELDS = "id,activityDateTime,activityDisplayName,result,initiatedBy,targetResources"
# A first paste's audits, by activity instead of target. "Update application" also covers "Update
# application - Certificates and secrets management" (an en dash in Graph): secrets and certificates
# added or removed; "Update service principal" covers enabling and disabling. Two questions, no more:
# each is a request to the reports service, which allows 5 per 10 s per app and tenant (the two
# sign-in questions are two more).
_UPDATES = {"app_updates": "Update application", "sp_updates": "Update service principal"}
# A month of a tenant's updates fits in one page unless the tenant is large; past that, audits by id.
UPDATES_TOP = 500
REMEMBERED_APPS = 10_000  # appId -> object ids kept per process (two short strings each)


@dataclass(frozen=True)
class _Inner:
    status: int
    body: Any
    retry_after: float


class ObjectIds:
    """appId -> (application object id, service principal object id), oldest forgotten first.

    An application's object id never changes (a deleted and recreated app gets a new appId too); a
    service principal can be deleted and recreated under the same appId, which the next lookup sees.
    """

    def __init__(self, capacity: int = REMEMBERED_APPS) -> None:
        self._ids: dict[str, tuple[str | None, str | None]] = {}
        self._capacity = capacity

    def get(self, app_id: str) -> tuple[str | None, str | None]:
        return self._ids.get(app_id, (None, None))

    def put(self, app_id: str, ids: tuple[str | None, str | None]) -> None:
        self._ids.pop(app_id, None)
        if len(self._ids) >= self._capacity:
            del self._ids[next(iter(self._ids))]
        self._ids[app_id] = ids


class GraphDirectory:
    """The bot's view of one tenant through Graph (live, or the fake Graph in snapshot mode)."""

    def __init__(
        self,
        http: GraphPoster,
        mode: GraphMode = GraphMode.LIVE,
        *,
        max_retries: int = 3,
        retry_delay: float = 1.0,
        max_in_flight: int = MAX_IN_FLIGHT,
        coverage: Coverage = LIVE_COVERAGE,
        credential_source: str = SNAPSHOT_CREDENTIAL,
        object_ids: ObjectIds | None = None,
    ) -> None:
        self._http = http
        self._credential_source = credential_source  # named in the answer when Graph refuses it
        self._mode = mode
        self._coverage = coverage  # what the source holds: a file may lack the tenant, SPs or logs
        self._max_retries = max_retries
        self._retry_delay = retry_delay  # back-off base when Graph gives no Retry-After
        # Batches beyond the session's connections wait here, where a deadline can be put on the wait.
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._object_ids = object_ids if object_ids is not None else ObjectIds()

    @property
    def mode(self) -> GraphMode:
        return self._mode

    async def lookup(self, app_id: str, activity: ActivityQuery | None = None) -> AppLookup:
        """The core facts; with `activity`, also the logs it asks for (`AppLookup.activity`)."""
        coverage = self._coverage
        requests = {
            "app": f"/applications(appId='{app_id}')?$select={_APP_FIELDS}",
            "sp": f"/servicePrincipals(appId='{app_id}')?$select={_SP_FIELDS}",
            "deleted": f"/directory/deletedItems/microsoft.graph.application?$filter=appId eq '{app_id}'"
            f"&$select={_APP_FIELDS}",
            "owners": f"/applications(appId='{app_id}')/owners?$select={_OWNER_FIELDS}",
            "federated": f"/applications(appId='{app_id}')/federatedIdentityCredentials",
            "org": "/organization?$select=id,verifiedDomains",
        }
        # What the source does not hold is not asked for: its absence would read as a fact.
        held = {"sp": coverage.service_principals, "deleted": coverage.deleted_applications, "org": coverage.tenant}
        requests = {key: url for key, url in requests.items() if held.get(key, True)}
        guessed = self._object_ids.get(app_id)
        if activity is not None:
            requests |= self._log_requests(app_id, activity, *guessed)
            if guessed == (None, None) and coverage.audits:
                requests |= self._update_requests(activity)
        # Service-principal sign-ins exist only in the beta API, and one batch is one version.
        version = "v1.0" if activity is None else "beta"
        answers, round_trips = await self._batch(version, requests)
        for key in ("app", "sp"):
            if key in answers and answers[key].status == 401:
                raise GraphAuthFailed(self._credential_source, " (HTTP 401)")
            if key in answers and answers[key].status == 403:
                raise PermissionDenied(READ_PERMISSION, "reading app registrations")
        missing = tuple(READ_PERMISSION for key, a in answers.items() if a.status == 403 and key not in _LOG_PARTS)
        sp = answers.get("sp")
        facts = AppLookup(
            app_id=app_id,
            application=self._application(answers),
            service_principal=mapping.service_principal(sp.body) if sp is not None and _ok(sp) else None,
            deleted_application=_first(answers.get("deleted"), mapping.application),
            tenant=_first(answers.get("org"), mapping.tenant),
            missing_permissions=missing[:1],
            round_trips=round_trips,
            coverage=coverage,
        )
        app = facts.application or facts.deleted_application
        known = (app.object_id if app else None, facts.service_principal.object_id if facts.service_principal else None)
        if app is not None:
            self._object_ids.put(app_id, known)
        if activity is None:
            return facts
        return replace(facts, activity=await self._logs_of(facts, activity, answers, guessed, known))

    async def activity(
        self,
        app_id: str,
        object_id: str | None,
        *,
        correlation_id: str | None,
        since: datetime,
        around: datetime | None = None,
        sp_object_id: str | None = None,
    ) -> Activity:
        """Sign-ins and audit entries in one `$batch`; only the logs the source holds are asked for."""
        query = ActivityQuery(correlation_id=correlation_id, since=since, around=around)
        requests = self._log_requests(app_id, query, object_id, sp_object_id)
        if not requests:
            return self._activity_from({}, query, round_trips=0)
        answers, round_trips = await self._batch("beta", requests)
        return self._activity_from(answers, query, round_trips)

    async def _logs_of(
        self,
        facts: AppLookup,
        query: ActivityQuery,
        answers: dict[str, _Inner],
        guessed: tuple[str | None, str | None],
        known: tuple[str | None, str | None],
    ) -> Activity:
        """The logs from the lookup's batch, plus the audits it could not ask for without the object ids."""
        if known == guessed or known[0] is None or not self._coverage.audits:
            return self._activity_from(answers, query, round_trips=0)
        by_id = self._log_requests(facts.app_id, query, *known)
        audits = {key: url for key, url in by_id.items() if key.endswith("audits")}
        if guessed == (None, None):
            # A first paste: the audits by id, read from the window's updates where they can stand for them.
            updates = _updates_of(answers, app_alive=facts.application is not None, ids=known)
            answers = answers | updates
            audits = {key: url for key, url in audits.items() if key not in updates}
            if not audits:
                return self._activity_from(answers, query, round_trips=0)
        # Audits by the ids just read (a recreated service principal, or updates that could not tell).
        answers = {key: answer for key, answer in answers.items() if key not in audits}
        try:
            more, round_trips = await self._batch("beta", audits)
        except DirectoryError as error:
            more, round_trips = self._failed(audits, error), error.round_trips
        return self._activity_from(answers | more, query, round_trips)

    def _log_requests(
        self, app_id: str, query: ActivityQuery, object_id: str | None, sp_object_id: str | None
    ) -> dict[str, str]:
        """With a correlation id, its sign-ins are read over the whole retention window and, in the
        same batch, the app's sign-ins around the error (or its latest), to fall back on when the
        correlation id is not in the log."""
        coverage = self._coverage
        stamp = _stamp(query.since)
        # Without an event-type clause Graph returns interactive (user) sign-ins only.
        service_principal = "signInEventTypes/any(t: t eq 'servicePrincipal')"
        window = f"createdDateTime ge {stamp}"
        if query.around is not None:
            start, end = _stamp(query.around - SIGN_IN_WINDOW), _stamp(query.around + SIGN_IN_WINDOW)
            window = f"createdDateTime ge {start} and createdDateTime le {end}"
        requests: dict[str, str] = {}
        if coverage.sign_ins:
            requests["signins"] = (
                f"/auditLogs/signIns?$filter=appId eq '{app_id}' and {window} and {service_principal}&$top=50"
            )
            if query.correlation_id:
                requests["correlated"] = (
                    f"/auditLogs/signIns?$filter=correlationId eq '{query.correlation_id}'"
                    f" and {service_principal}&$top=50"
                )
        if coverage.audits:
            # An app's and its service principal's entries: secrets added or removed, deletion, disabling.
            for key, target in (("audits", object_id), ("sp_audits", sp_object_id)):
                if target:
                    requests[key] = (
                        f"/auditLogs/directoryAudits?$filter=activityDateTime ge {stamp}"
                        f" and targetResources/any(t: t/id eq '{target}')&$select={_AUDIT_FIELDS}&$top={_AUDIT_TOP}"
                    )
        return requests

    @staticmethod
    def _update_requests(query: ActivityQuery) -> dict[str, str]:
        """The tenant's application and service-principal updates since `query.since`, newest first."""
        stamp = _stamp(query.since)
        return {
            key: f"/auditLogs/directoryAudits?$filter=activityDateTime ge {stamp}"
            f" and startswith(activityDisplayName, '{activity}')&$select={_AUDIT_FIELDS}&$top={UPDATES_TOP}"
            for key, activity in _UPDATES.items()
        }

    def _activity_from(self, answers: dict[str, _Inner], query: ActivityQuery, round_trips: int) -> Activity:
        coverage = self._coverage
        not_in_source = tuple(
            name for name, held in (("sign-in", coverage.sign_ins), ("audit", coverage.audits)) if not held
        )
        refused = any(a.status in (401, 403) for key, a in answers.items() if key in _LOG_PARTS)
        audits = [mapping.audit_entry(a) for key in ("audits", "sp_audits") for a in _values(answers.get(key))]
        return Activity(
            sign_ins=tuple(mapping.sign_in(s) for s in _values(answers.get("signins"))),
            audits=tuple(sorted(audits, key=lambda entry: entry.when, reverse=True)),
            missing_permissions=(AUDIT_PERMISSION,) if refused else (),
            round_trips=round_trips,
            correlation_id=query.correlation_id,
            correlated=tuple(mapping.sign_in(s) for s in _values(answers.get("correlated"))),
            around=query.around,
            not_in_source=not_in_source,
        )

    @staticmethod
    def _failed(requests: dict[str, str], error: DirectoryError) -> dict[str, _Inner]:
        # Logs Graph would not give are missing evidence; only a refused permission names one to grant
        # (a refused credential is the bot's own sign-in, not a missing AuditLog permission).
        status = 403 if isinstance(error, PermissionDenied) else 503
        return {key: _Inner(status=status, body=None, retry_after=0.0) for key in requests}

    def _application(self, answers: dict[str, _Inner]) -> Any:
        if not _ok(answers["app"]):
            return None
        return mapping.application(
            answers["app"].body, owners=_values(answers["owners"]), federated=_values(answers["federated"])
        )

    async def get_batch(self, version: str, requests: dict[str, str]) -> dict[str, tuple[int, Any]]:
        """GETs (id → relative URL, at most 20) in one `$batch`, retried as `_batch` does: id → (status, body)."""
        answers, _ = await self._batch(version, requests)
        return {key: (answer.status, answer.body) for key, answer in answers.items()}

    async def _batch(self, version: str, requests: dict[str, str]) -> tuple[dict[str, _Inner], int]:
        """Send `requests` as one JSON batch and return the answers and the round trips it took.

        Throttled or failing attempts are retried after Retry-After (else a short back-off): the
        whole batch when Graph refuses it, only the affected parts when Graph answers them inside it.
        Every attempt is a round trip and is counted, also when the result is an error. Log parts
        that are still throttled when retrying is no longer worth it are given up, not the answer.
        """
        answers: dict[str, _Inner] = {}
        pending, trips = dict(requests), 0
        while True:
            trips += 1
            try:
                answers.update(await self._post_batch(version, pending))
            except _Busy as busy:
                await self._back_off(busy.retry_after, busy.error, trips)
                continue
            retry = {key: url for key, url in pending.items() if answers[key].status in RETRYABLE}
            if not retry:
                return answers, trips
            wait = max(answers[key].retry_after for key in retry)
            statuses = {answers[key].status for key in retry}
            error = Throttled(wait) if 429 in statuses else DirectoryUnavailable(f"Microsoft Graph answered {statuses}")
            try:
                await self._back_off(wait, error, trips)
            except DirectoryError:
                if retry.keys() <= _LOG_PARTS:
                    return answers, trips
                raise
            pending = retry

    async def _back_off(self, retry_after: float | None, error: DirectoryError, trips: int) -> None:
        """Wait before the next attempt, or give up with `error` (which records the round trips)."""
        wait = retry_after if retry_after is not None else self._retry_delay * 2 ** (trips - 1)
        if trips > self._max_retries or wait > MAX_RETRY_WAIT:
            if isinstance(error, Throttled):
                error = Throttled(max(wait, error.retry_after))
            error.round_trips = trips
            raise error
        await asyncio.sleep(wait)

    async def _post_batch(self, version: str, requests: dict[str, str]) -> dict[str, _Inner]:
        body = {"requests": [{"id": key, "method": "GET", "url": url} for key, url in requests.items()]}
        try:
            async with asyncio.timeout(QUEUE_TIMEOUT):
                await self._in_flight.acquire()
        except TimeoutError:
            raise DirectoryUnavailable("too many Microsoft Graph requests are waiting; try again shortly") from None
        try:
            reply = await self._http.post(f"/{version}/$batch", json.dumps(body).encode())
        except credential_errors() as error:
            raise _unsent(token_error(error, self._credential_source)) from None
        except (unreachable_errors(), TimeoutError) as error:
            raise DirectoryUnavailable(f"Microsoft Graph could not be reached ({type(error).__name__})") from None
        finally:
            self._in_flight.release()
        if not 200 <= reply.status < 300:
            raise _translate(reply.status, reply.headers, self._credential_source)
        return _read_batch(reply.body or b"{}", requests)


def _read_batch(raw: bytes, requests: dict[str, str]) -> dict[str, _Inner]:
    try:
        responses = json.loads(raw).get("responses", [])
    except (ValueError, AttributeError):
        raise DirectoryUnavailable("Microsoft Graph sent a batch answer that is not JSON") from None
    answers = {}
    for item in responses:
        headers = {k.lower(): v for k, v in (item.get("headers") or {}).items()}
        answers[str(item.get("id"))] = _Inner(
            status=int(item.get("status", 500)),
            body=item.get("body"),
            retry_after=_seconds(headers.get("retry-after")),
        )
    for key in requests:
        answers.setdefault(key, _Inner(status=500, body=None, retry_after=0.0))
    return answers


class _Busy(Exception):
    """Graph refused the whole batch for now (429/503/504); worth another try later."""

    def __init__(self, error: DirectoryError, retry_after: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def _unsent(error: DirectoryError) -> DirectoryError:
    error.round_trips = 0  # without a token nothing was sent to Graph
    return error


def _translate(status: int, headers: dict[str, str], credential_source: str) -> Exception:
    retry_after = _seconds(headers["retry-after"]) if "retry-after" in headers else None
    if status == 401:
        return GraphAuthFailed(credential_source, " (HTTP 401)")
    if status == 403:
        return PermissionDenied(READ_PERMISSION, "the batch request")
    if status == 429:
        return _Busy(Throttled(retry_after or 0.0), retry_after)
    if status in RETRYABLE:
        return _Busy(DirectoryUnavailable(f"Microsoft Graph answered HTTP {status}"), retry_after)
    return DirectoryUnavailable(f"Microsoft Graph answered HTTP {status}")


def _seconds(value: object) -> float:
    """A Retry-After header in either of HTTP's forms: delta-seconds ("120") or an HTTP date."""
    if isinstance(value, list):
        value = value[0] if value else None
    text = str(value).strip() if value is not None else ""
    if not text:  # no header, as on most answers: what an unreadable one gives, without parsing a date
        return UNREADABLE_RETRY_AFTER
    try:
        seconds = float(text)
    except ValueError:
        from email.utils import parsedate_to_datetime  # ~10 ms to import, for a rare Retry-After date

        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return UNREADABLE_RETRY_AFTER
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)  # HTTP dates are GMT; "-0000" parses as naive
        seconds = math.ceil((when - datetime.now(UTC)).total_seconds())  # a date has whole seconds
    if not math.isfinite(seconds):
        return UNREADABLE_RETRY_AFTER
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _ok(answer: _Inner | None) -> bool:
    return answer is not None and 200 <= answer.status < 300 and isinstance(answer.body, dict)


def _values(answer: _Inner | None) -> list[dict[str, Any]]:
    if not _ok(answer):
        return []
    assert answer is not None
    return [v for v in answer.body.get("value", []) if isinstance(v, dict)]


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _updates_of(
    answers: dict[str, _Inner], *, app_alive: bool, ids: tuple[str | None, str | None]
) -> dict[str, _Inner]:
    """The answers the audit queries by id would have given, where the window's updates can tell.

    Each query by id is the newest `_AUDIT_TOP` entries that name its target; the updates hold all of
    them when every page was read and the target's entries are updates. An app that is deleted has
    its deletion in another activity, so its audits are asked by id. A refused or failed update query
    stands for the query by id as it is (the same permission and the same service).
    """
    parts = [answers[key] for key in _UPDATES if key in answers]
    if len(parts) < len(_UPDATES):
        return {}
    failed = next((part for part in parts if not _ok(part)), None)
    if failed is not None:
        return {key: failed for key, target in zip(("audits", "sp_audits"), ids, strict=True) if target}
    if any(part.body.get("@odata.nextLink") for part in parts):
        return {}  # more updates than one page: the ones about this app may be on the next
    entries = {str(entry.get("id")): entry for part in parts for entry in _values(part)}.values()
    found = {}
    for key, target in zip(("audits", "sp_audits"), ids, strict=True):
        if target is None or (key == "audits" and not app_alive):
            continue
        named = sorted((e for e in entries if _names(e, target)), key=lambda e: mapping.audit_entry(e).when)
        found[key] = _Inner(status=200, body={"value": named[::-1][:_AUDIT_TOP]}, retry_after=0.0)
    return found


def _names(entry: dict[str, Any], object_id: str) -> bool:
    targets = entry.get("targetResources")
    wanted = object_id.lower()
    return isinstance(targets, list) and any(
        isinstance(t, dict) and str(t.get("id") or "").lower() == wanted for t in targets
    )


def _first(answer: _Inner | None, read: Any) -> Any:
    values = _values(answer)
    return read(values[0]) if values else None
