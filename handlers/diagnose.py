"""Diagnose a pasted error: parse it, ask the directory about the app, and decide the causes.

Channel-neutral: the platforms, the CLI and the tests all call `diagnose` and render its
`Diagnosis` in their own way.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from bot.domain import (
    Activity,
    ActivityQuery,
    Application,
    AppLookup,
    Cause,
    CodeInfo,
    Diagnosis,
    DirectoryError,
    Finding,
    FoundIn,
    GraphAuthFailed,
    GraphMode,
    GraphReport,
    ParsedInput,
    PermissionDenied,
    Severity,
)
from bot.ports import Directory
from handlers import rules
from handlers.catalog import Catalog, load_catalog
from handlers.parse import parse

READ_PERMISSION = "Application.Read.All"
AUDIT_PERMISSION = "AuditLog.Read.All"
log = logging.getLogger(__name__)
ACTIVITY_WINDOW = timedelta(days=rules.ACTIVITY_DAYS)
# Above this size a paste is parsed in a worker thread (tens of ms and more), so that one large
# paste does not hold up every other request the event loop serves; below it a thread costs more.
PARSE_IN_THREAD_CHARS = 64 * 1024


async def diagnose(
    text: str,
    *,
    directory: Directory | None,
    now: datetime,
    catalog: Catalog | None = None,
) -> Diagnosis:
    """The full answer to one paste. Never raises for bad input or an unhappy Graph."""
    import asyncio  # here, not at the top: `diagnose_paste` callers (the CLI without Graph) run no event loop

    parsed = await asyncio.to_thread(parse, text) if len(text) > PARSE_IN_THREAD_CHARS else parse(text)
    return await diagnose_parsed(parsed, directory=directory, now=now, catalog=catalog)


def diagnose_paste(text: str, *, now: datetime) -> Diagnosis:
    """`diagnose(text, directory=None, now=now)` without an event loop: the answer from the paste
    alone, for a caller with no directory to ask (the CLI without Graph)."""
    parsed = parse(text)
    known, findings = _from_paste(parsed, load_catalog())
    return _answer(parsed, known, findings, GraphReport(GraphMode.NONE), parsed.timestamp or now)


async def diagnose_parsed(
    parsed: ParsedInput,
    *,
    directory: Directory | None,
    now: datetime,
    ref: datetime | None = None,
    catalog: Catalog | None = None,
) -> Diagnosis:
    """Answer facts already read from a paste (a stored question), judging credentials at `ref`: by
    default the error's time, else `now`."""
    ref = ref or parsed.timestamp or now
    known, findings = _from_paste(parsed, catalog or load_catalog())
    mode = directory.mode if directory else GraphMode.NONE
    if directory is None or not parsed.app_id:
        return _answer(parsed, known, findings, GraphReport(mode), ref)
    return await _with_directory(parsed, known, findings, directory, ref, now)


def _from_paste(parsed: ParsedInput, catalog: Catalog) -> tuple[list[CodeInfo], list[Finding]]:
    """The pasted codes the catalog explains, and what the paste alone shows."""
    known = [info for code in parsed.codes if (info := catalog.lookup(code))]
    unknown = [code for code in parsed.codes if code not in catalog]
    return known, rules.from_paste(parsed, known, unknown)


async def _with_directory(
    parsed: ParsedInput,
    known: list[CodeInfo],
    findings: list[Finding],
    directory: Directory,
    ref: datetime,
    now: datetime,
) -> Diagnosis:
    assert parsed.app_id is not None
    # The logs a paste needs ride in the lookup's round trip where the directory can manage it.
    query = None
    if _asks_logs(parsed):
        query = ActivityQuery(ref - ACTIVITY_WINDOW, parsed.correlation_id, parsed.timestamp)
    try:
        facts = await directory.lookup(parsed.app_id, query)
    except DirectoryError as error:
        findings.extend(_missing(_permissions(error), "the app lookup"))
        graph = GraphReport(directory.mode, error.round_trips, _permissions(error))
        return _answer(parsed, known, findings, graph, ref, notes=(str(error),))
    findings.extend(rules.from_directory(parsed, facts, ref, now))
    findings.extend(_missing(facts.missing_permissions, "part of the app lookup"))
    activity = None
    if _wants_activity(parsed, facts):
        activity = facts.activity or await _activity(parsed, facts, directory, ref)
    round_trips = facts.round_trips + (activity.round_trips if activity else 0)
    missing = facts.missing_permissions + (activity.missing_permissions if activity else ())
    if activity is not None:
        findings = _with_activity(findings, activity, facts.application or facts.deleted_application)
    graph = GraphReport(directory.mode, round_trips, tuple(dict.fromkeys(missing)), facts.coverage)
    return _answer(parsed, known, findings, graph, ref, facts=facts, activity=activity)


def _asks_logs(parsed: ParsedInput) -> bool:
    return bool(parsed.codes or parsed.correlation_id)


def _wants_activity(parsed: ParsedInput, facts: AppLookup) -> bool:
    # A deleted app too: its audit log says who deleted it and when.
    app = facts.application or facts.deleted_application
    return app is not None and _asks_logs(parsed)


async def _activity(parsed: ParsedInput, facts: AppLookup, directory: Directory, ref: datetime) -> Activity:
    app = facts.application or facts.deleted_application
    assert app is not None
    try:
        return await directory.activity(
            facts.app_id,
            app.object_id,
            correlation_id=parsed.correlation_id,
            since=ref - ACTIVITY_WINDOW,
            around=parsed.timestamp,
            sp_object_id=facts.service_principal.object_id if facts.service_principal else None,
        )
    except DirectoryError as error:
        # A refused credential is not a missing AuditLog permission.
        refused = () if isinstance(error, GraphAuthFailed) else (AUDIT_PERMISSION,)
        return Activity(missing_permissions=_permissions(error) or refused, round_trips=1)


def _with_activity(findings: list[Finding], activity: Activity, app: Application | None) -> list[Finding]:
    result = list(findings) + _missing(activity.missing_permissions, "the sign-in and audit logs")
    lines = rules.activity_evidence(activity, app)
    primary = next((i for i, f in enumerate(result) if f.severity is Severity.ERROR), None)
    if lines and primary is not None:
        result[primary] = replace(result[primary], evidence=result[primary].evidence + lines)
    return result


def _missing(permissions: tuple[str, ...], what: str) -> list[Finding]:
    return [
        Finding(
            Cause.PERMISSION_MISSING,
            Severity.INFO,
            f"Graph refused {what}; the answer is based on what could be read.",
            (f"The bot's app registration needs the {permission} application permission (admin consent).",),
            (_PERMISSION_GAINS.get(permission, f"Grant {permission} to the bot for a fuller answer."),),
        )
        for permission in permissions
    ]


_PERMISSION_GAINS = {
    READ_PERMISSION: f"Grant {READ_PERMISSION} so the bot can read app registrations and their secrets.",
    AUDIT_PERMISSION: f"Grant {AUDIT_PERMISSION} (the sign-in log also needs an Entra ID P1 licence) to see "
    "which secret failing sign-ins used and who changed the app's secrets.",
}


def _permissions(error: DirectoryError) -> tuple[str, ...]:
    return (error.permission,) if isinstance(error, PermissionDenied) else ()


def _answer(
    parsed: ParsedInput,
    known: list[CodeInfo],
    findings: list[Finding],
    graph: GraphReport,
    ref: datetime,
    *,
    facts: AppLookup | None = None,
    activity: Activity | None = None,
    notes: tuple[str, ...] = (),
) -> Diagnosis:
    app, found_in = _app_view(facts)
    # A GUID handed over as the secret is wrong even when Graph does not know it as a secret ID.
    secret_id = rules.secret_id_from_paste(parsed)
    if secret_id and not any(f.cause is Cause.SECRET_ID_USED_AS_VALUE for f in findings):
        findings = [*findings, secret_id]
    ordered = rules.ordered(findings)
    # Only parsed facts and causes are logged: the paste itself may hold a secret or personal data.
    log.info(
        "diagnosed codes=%s app_id=%s causes=%s graph=%s round_trips=%d",
        list(parsed.codes),
        parsed.app_id,
        [f.cause.value for f in ordered],
        graph.mode.value,
        graph.round_trips,
    )
    return Diagnosis(
        input=parsed,
        errors=tuple(known),
        app=app,
        found_in=found_in,
        findings=ordered,
        graph=graph,
        reference_time=ref,
        activity=activity,
        notes=notes,
    )


def _app_view(facts: AppLookup | None) -> tuple[Application | None, FoundIn | None]:
    if facts is None:
        return None, None
    if facts.application is not None:
        return facts.application, FoundIn.TENANT
    if facts.deleted_application is not None:
        return facts.deleted_application, FoundIn.DELETED
    sp = facts.service_principal
    if sp is not None:
        return Application(object_id=sp.object_id, app_id=sp.app_id, display_name=sp.display_name), FoundIn.OTHER_TENANT
    return None, FoundIn.NOWHERE
