"""The rules that turn a paste and what the directory knows into findings.

Each rule looks at one thing and returns zero or more findings in plain words. The order of
`PRIORITY` decides which finding is the headline when several are true at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta

from bot.domain import (
    SIGN_IN_WINDOW,
    Activity,
    Application,
    AppLookup,
    AuditedKey,
    AuditEntry,
    Category,
    Cause,
    CodeInfo,
    Credential,
    CredentialState,
    Finding,
    ParsedInput,
    Severity,
    SignIn,
)

PRIORITY = (
    Cause.SECRET_VALUE_PASTED,
    Cause.TENANT_MISMATCH,
    Cause.APP_NOT_FOUND,
    Cause.APP_DELETED,
    Cause.APP_IN_OTHER_TENANT,
    Cause.APP_DISABLED,
    Cause.SECRET_MISSING_FROM_REQUEST,
    Cause.SECRET_ID_USED_AS_VALUE,
    Cause.EXPIRED_SECRET_IN_USE,
    Cause.ALL_SECRETS_EXPIRED,
    Cause.SECRET_RECENTLY_ADDED,
    Cause.NO_SECRETS,
    Cause.SECRET_MISMATCH,
    Cause.SECRET_LIMIT_REACHED,
    Cause.SECRET_EXPIRING_SOON,
    Cause.APP_ID_MASKED,
    Cause.NO_APP_ID,
    Cause.UNKNOWN_CODE,
    Cause.PERMISSION_MISSING,
)
_SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}

WRONG_SECRET_CODES = frozenset({7000215, 70002, 50012})
EXPIRED_SECRET_CODE = 7000222
MISSING_SECRET_CODE = 7000218
SECRET_CODES = WRONG_SECRET_CODES | {EXPIRED_SECRET_CODE}
APP_NOT_FOUND_CODES = frozenset({700016, 700011})
# Entra ID gives these only after finding the app and comparing its secrets: the app exists there.
APP_FOUND_CODES = frozenset({7000215, EXPIRED_SECRET_CODE})
DISABLED_CODES = frozenset({7000112, 70001})
PROPAGATION_WINDOW = timedelta(minutes=15)
EXPIRY_WARNING_WINDOW = timedelta(days=30)
PERSONAL_AUDIENCES = frozenset({"AzureADandPersonalMicrosoftAccount", "PersonalMicrosoftAccount"})
PERSONAL_SECRET_LIMIT = 2
APP_ID_CATEGORIES = frozenset({Category.CLIENT_CREDENTIAL, Category.CERTIFICATE, Category.FEDERATION})


def ordered(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """Most important first: errors before warnings before info, then by cause priority."""
    return tuple(sorted(findings, key=lambda f: (_SEVERITY_ORDER[f.severity], PRIORITY.index(f.cause))))


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "no end date"


def describe(secret: Credential) -> str:
    name = f"'{secret.display_name}'" if secret.display_name else "unnamed"
    hint = f"starts with '{secret.hint}', " if secret.hint else ""
    return f"{secret.kind.value} {name} ({hint}ID {secret.key_id}, valid {when(secret.start)} to {when(secret.end)})"


# --- rules that need only the paste ------------------------------------------------------------


def from_paste(parsed: ParsedInput, codes: list[CodeInfo], unknown: list[int]) -> list[Finding]:
    findings = []
    if parsed.secret_value_detected:
        findings.append(_secret_pasted(parsed))
    if MISSING_SECRET_CODE in parsed.codes:
        findings.append(
            Finding(
                Cause.SECRET_MISSING_FROM_REQUEST,
                Severity.ERROR,
                "The request reached Entra ID without any credential: no secret and no certificate assertion.",
                ("AADSTS7000218 means the token request had neither a client_secret nor a client_assertion.",),
                (
                    "Check that the variable or setting that should hold the secret is set where the app runs "
                    "(an empty AZURE_CLIENT_SECRET or a missing pipeline secret gives exactly this error).",
                    "If the app is meant to be a public client (device code, interactive sign-in), turn on "
                    "'Allow public client flows' instead of sending a secret.",
                ),
            )
        )
    if parsed.app_id_masked and not parsed.app_id:
        findings.append(
            Finding(
                Cause.APP_ID_MASKED,
                Severity.WARNING,
                "The app id in this error is masked (***), so the app cannot be looked up.",
                ("CI systems mask values that are stored as secrets, the client id included.",),
                ("Paste the application (client) id, or look it up in the pipeline's variables, and ask again.",),
            )
        )
    needs_app = any(c.category in APP_ID_CATEGORIES for c in codes) or bool(unknown)
    if parsed.codes and not parsed.app_id and not parsed.app_id_masked and needs_app:
        findings.append(
            Finding(
                Cause.NO_APP_ID,
                Severity.INFO,
                "The error does not say which app failed, so its credentials could not be checked.",
                (),
                ("Paste the application (client) id with the error to get the app's secrets checked.",),
            )
        )
    if parsed.common_authority and (parsed.client_credentials or any(c.code in SECRET_CODES for c in codes)):
        findings.append(
            Finding(
                Cause.TENANT_MISMATCH,
                Severity.ERROR,
                "The token request went to a multi-tenant endpoint (/common or /organizations) with app credentials.",
                ("An app signing in as itself must name the tenant it wants a token for.",),
                ("Use https://login.microsoftonline.com/<tenant id>/ as the authority instead of /common.",),
            )
        )
    findings.extend(_unknown_code(code, bool(codes)) for code in unknown)
    return findings


def secret_id_from_paste(parsed: ParsedInput) -> Finding | None:
    """Without Graph: a GUID handed over where the secret value belongs is almost surely the Secret ID."""
    if not parsed.secret_guid:
        return None
    return Finding(
        Cause.SECRET_ID_USED_AS_VALUE,
        Severity.ERROR,
        "A GUID is being sent as the client secret: that is the secret's ID, not its value.",
        (f"The paste passes {parsed.secret_guid} where the secret value belongs.",),
        _secret_id_fix(None, None),
    )


def _secret_id_fix(used: Credential | None, ref: datetime | None) -> tuple[str, ...]:
    """Put the value in; never advise deleting the secret, which may be valid and used elsewhere."""
    steps = [
        "A secret's value is shown only once, right after it is created; the portal afterwards shows "
        "its Secret ID, a GUID, which Entra ID rejects as a password.",
        "Put the secret's value where the client reads its secret. If nobody kept the value, create a new "
        "secret, copy its Value column, and store that.",
    ]
    if used is None or ref is None:
        steps.append("Keep the secret with that ID: its value may be in use elsewhere.")
    elif used.is_valid_at(ref):
        steps.append(f"Keep {_name(used)}: it is valid, and other clients may be using its value.")
    else:
        steps.append(f"The {_name(used)} is {used.state_at(ref).value.replace('_', ' ')}: use a valid secret.")
    return tuple(steps)


def _name(secret: Credential) -> str:
    label = f"'{secret.display_name}'" if secret.display_name else secret.key_id
    return f"{secret.kind.value} {label}"


def _secret_pasted(parsed: ParsedInput) -> Finding:
    certain = parsed.secret_value_certain
    summary = (
        "This message contains a client secret value. Treat it as leaked and rotate it now."
        if certain
        else "This message contains a value shaped like an older client secret. If it is one, treat it as leaked."
    )
    return Finding(
        Cause.SECRET_VALUE_PASTED,
        Severity.ERROR if certain else Severity.WARNING,
        summary,
        ("The value was removed before the message was processed; it is not stored or repeated.",),
        (
            "Create a new secret for the app and update every place that uses it.",
            "Once nothing uses the leaked secret any more, delete it from the app registration; deleting the "
            "chat message is not enough.",
            "Next time, share the secret's ID or its first three characters instead of the value.",
        ),
    )


def _unknown_code(code: int, others_known: bool) -> Finding:
    return Finding(
        Cause.UNKNOWN_CODE,
        Severity.INFO if others_known else Severity.WARNING,
        f"AADSTS{code} is not in our catalog yet.",
        (f"Microsoft's lookup page may know it: https://login.microsoftonline.com/error?code={code}",),
        ("Open the lookup page for the current description, and check the message text around the code.",),
    )


# --- rules that need the directory ------------------------------------------------------------


def from_directory(parsed: ParsedInput, facts: AppLookup, ref: datetime, now: datetime | None = None) -> list[Finding]:
    """Findings judged at `ref` (the error's time); with `now`, also what changed since the error."""
    findings: list[Finding] = []
    tenant = facts.tenant
    # When the error proves the app exists elsewhere, `app_not_found` names both tenants instead.
    if parsed.tenant and tenant and not tenant.names(parsed.tenant) and not _found_elsewhere(parsed, facts):
        findings.append(_tenant_mismatch(parsed.tenant, facts))
    app = facts.application
    if app is None:
        findings.extend(_not_in_tenant(parsed, facts))
        return findings
    disabled = _disabled(parsed, app, facts)
    if disabled is not None:
        findings.append(disabled)
    findings.extend(credential_findings(parsed, app, ref))
    if now is not None:
        findings = _with_lines(findings, *since_the_error(app, ref, now))
    return findings


def since_the_error(app: Application, ref: datetime, now: datetime) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Evidence and fix lines on secrets added or expired between the error and now, so a problem
    already fixed is not fixed twice. A secret removed since cannot be seen in the app: not said."""
    if now <= ref:
        return (), ()
    added = [s for s in app.secrets if s.start is not None and ref < s.start <= now]
    ended = [s for s in app.secrets if s.end is not None and ref < s.end <= now]
    evidence = [
        f"Since the error ({when(ref)}) a new {_name(s)} was added at {when(s.start)}: "
        "if the client now uses it, the error is fixed."
        for s in added
    ]
    evidence += [f"Since the error ({when(ref)}) {_name(s)} has expired, at {when(s.end)}." for s in ended]
    fix = [
        f"First check whether the client already sends {_name(s)}, added after the error; if it does, "
        "nothing more needs to change."
        for s in added
    ]
    fix += [f"Do not switch the client to {_name(s)}: it has expired since the error." for s in ended]
    return tuple(evidence), tuple(fix)


def _with_lines(findings: list[Finding], evidence: tuple[str, ...], fix: tuple[str, ...]) -> list[Finding]:
    """Add evidence and leading fix steps to the headline finding (the first error, else the first)."""
    if not (evidence or fix) or not findings:
        return findings
    index = next((i for i, f in enumerate(findings) if f.severity is Severity.ERROR), 0)
    headline = findings[index]
    result = list(findings)
    result[index] = replace(headline, evidence=headline.evidence + evidence, fix=fix + headline.fix)
    return result


def _found_elsewhere(parsed: ParsedInput, facts: AppLookup) -> bool:
    """The error proves Entra ID found the app, yet this tenant has no trace of it."""
    absent = facts.application is None and facts.deleted_application is None and facts.service_principal is None
    return absent and bool(APP_FOUND_CODES & set(parsed.codes))


def _disabled(parsed: ParsedInput, app: Application, facts: AppLookup) -> Finding | None:
    sp = facts.service_principal
    if app.disabled_by_microsoft:
        return Finding(
            Cause.APP_DISABLED,
            Severity.ERROR,
            f"Microsoft has disabled '{app.display_name}', so it cannot get tokens.",
            ("The application's disabledByMicrosoftStatus is DisabledDueToViolationOfServicesAgreement.",),
            ("Only Microsoft support can lift this; open a support case from the Entra admin center.",),
        )
    if sp is not None and not sp.account_enabled:
        return Finding(
            Cause.APP_DISABLED,
            Severity.ERROR,
            f"The service principal of '{app.display_name}' is disabled, so it cannot get tokens.",
            (f"Service principal {sp.object_id} has accountEnabled = false.",),
            (
                "Find out who disabled it and why (the audit log shows it) before turning it back on.",
                "Enable it under Enterprise applications > Properties > 'Enabled for users to sign in'.",
            ),
        )
    if not facts.coverage.service_principals:
        return None  # a file without service principals cannot say whether the app is enabled now
    if DISABLED_CODES & set(parsed.codes):
        return Finding(
            Cause.APP_DISABLED,
            Severity.INFO,
            f"The error says '{app.display_name}' was disabled, but it is enabled now.",
            ("Its service principal is enabled and Microsoft has not disabled the application.",),
            ("Someone probably re-enabled it after the error: retry the failing call.",),
        )
    return None


def _tenant_mismatch(named: str, facts: AppLookup) -> Finding:
    assert facts.tenant is not None
    return Finding(
        Cause.TENANT_MISMATCH,
        Severity.ERROR,
        "The error names a different tenant from the one this bot reads.",
        (
            f"The paste names tenant {named}.",
            f"This bot reads tenant {facts.tenant.id} ({', '.join(facts.tenant.domains) or 'no domains'}).",
        ),
        (
            "Check the tenant id (or domain) the app is configured with: it must be the tenant where the app "
            "and its secret are registered, or one where a multi-tenant app has been consented.",
            "If the app is meant to sign in to that other tenant, ask there: this bot cannot see its directory.",
        ),
    )


def _not_in_tenant(parsed: ParsedInput, facts: AppLookup) -> list[Finding]:
    deleted, sp = facts.deleted_application, facts.service_principal
    if deleted is not None:
        return [
            Finding(
                Cause.APP_DELETED,
                Severity.ERROR,
                f"The app '{deleted.display_name}' was deleted, so nothing can sign in with it.",
                (f"Deleted on {when(deleted.deleted_at)}; deleted apps can be restored for 30 days.",),
                (
                    "If the deletion was a mistake, restore it under App registrations > Deleted applications; "
                    "its secrets and permissions come back with it.",
                    "Otherwise point the client at the app that replaced it.",
                ),
            )
        ]
    if sp is not None:
        owner = sp.app_owner_organization_id or "another tenant"
        credential_error = bool(SECRET_CODES & set(parsed.codes))
        return [
            Finding(
                Cause.APP_IN_OTHER_TENANT,
                Severity.ERROR if credential_error else Severity.INFO,
                f"'{sp.display_name}' is registered in another tenant; only its service principal lives here.",
                (f"The application belongs to tenant {owner} (appOwnerOrganizationId).",),
                (
                    f"Its secrets and certificates are managed in tenant {owner}: ask that tenant's admins to "
                    "check or renew them.",
                    "Make sure the client uses a secret of that registration, not one from a different app.",
                ),
            )
        ]
    if not facts.coverage.complete_directory:
        return [_not_in_export(facts)]
    if _found_elsewhere(parsed, facts):
        return [_app_elsewhere(parsed, facts)]
    bare = (
        ("If this GUID is a secret's ID (the Secret ID column), it names no app: paste the error instead.",)
        if parsed.bare_guid
        else ()
    )
    return [
        Finding(
            Cause.APP_NOT_FOUND,
            Severity.ERROR,
            "No app with this id exists in this tenant.",
            (f"No application or service principal has appId {facts.app_id}, and none was deleted recently.",),
            (
                "Check the client id for typos; the error quotes the id the client actually sent.",
                "Check the tenant id and the cloud (login.microsoftonline.com vs. a national cloud).",
                "A multi-tenant app must be consented in this tenant before it can sign in here.",
                *bare,
            ),
        )
    ]


def _not_in_export(facts: AppLookup) -> Finding:
    """An export without service principals or deleted apps (`az ad app list --all`) proves no absence."""
    lacks = [
        name
        for name, held in (
            ("service principals", facts.coverage.service_principals),
            ("deleted applications", facts.coverage.deleted_applications),
        )
        if not held
    ]
    return Finding(
        Cause.APP_NOT_FOUND,
        Severity.WARNING,
        "No app with this id is in this export; that alone does not say it is missing from the tenant.",
        (
            f"No application in the file has appId {facts.app_id}.",
            f"The file holds no {' and no '.join(lacks)}, so the app may still exist in the tenant: deleted, "
            "or registered in another tenant and present here only as a service principal.",
        ),
        (
            "Check the client id for typos; the error quotes the id the client actually sent.",
            "Diagnose against live Graph (or a full snapshot with servicePrincipals and deletedApplications) "
            "for a definite answer.",
        ),
    )


# Graph hosts of the national clouds, by the sign-in host their errors come from (reference/graph.md §4.3).
_NATIONAL_GRAPH = {
    "login.microsoftonline.us": "https://graph.microsoft.us (https://dod-graph.microsoft.us for DoD)",
    "login.chinacloudapi.cn": "https://microsoftgraph.chinacloudapi.cn",
    "login.partner.microsoftonline.cn": "https://microsoftgraph.chinacloudapi.cn",
}


_TOKEN_URL_TENANT = "the tenant in the error's token URL"


def _app_elsewhere(parsed: ParsedInput, facts: AppLookup) -> Finding:
    """AADSTS7000215/7000222 come only after Entra ID found the app: the bot looks in the wrong place."""
    code = next(c for c in parsed.codes if c in APP_FOUND_CODES)
    ours, theirs = facts.tenant, parsed.tenant
    same = bool(ours and theirs and ours.names(theirs))
    source = (
        f"The error came from tenant {theirs}."
        if theirs
        else "The paste does not say which tenant the error came from; the token URL "
        "(login.microsoftonline.com/<tenant>/oauth2/...) shows it."
    )
    evidence = [
        f"AADSTS{code} is given only after Entra ID has found the app and checked its secrets.",
        f"No application or service principal has appId {facts.app_id} in the tenant this bot reads, "
        "and none was deleted recently.",
        source,
    ]
    if ours:
        evidence.append(f"This bot reads tenant {ours.id} ({', '.join(ours.domains) or 'no domains'}).")
    if parsed.login_host:
        evidence.append(f"The token request went to {parsed.login_host}, a national cloud.")
    summary = (
        "Entra ID found this app in this tenant when the error happened, but the bot cannot see it here now."
        if same
        else "Entra ID found this app, so the error comes from another tenant or cloud than the one this bot reads."
    )
    where = (
        "If the bot reads a tenant snapshot, take a fresh one; an app deleted for good since the error "
        "leaves no trace here."
        if same
        else f"To diagnose it, point the bot at {theirs or _TOKEN_URL_TENANT}: set "
        "AZURE_TENANT_ID to it and give the bot an app registration there (AZURE_CLIENT_ID and its credential, "
        "Application.Read.All with admin consent)."
    )
    cloud = (
        f"For this national cloud set GRAPH_BASE_URL to {_NATIONAL_GRAPH[parsed.login_host]} and "
        f"AZURE_AUTHORITY_HOST to https://{parsed.login_host}."
        if parsed.login_host
        else "If the client signs in to a national cloud (login.microsoftonline.us, login.chinacloudapi.cn), set "
        "GRAPH_BASE_URL to that cloud's Graph (https://graph.microsoft.us, https://microsoftgraph.chinacloudapi.cn)."
    )
    secret = (
        "The client's app id and tenant are right where it signs in: what failed is its secret, so check the "
        "secret against the app's secrets in that tenant."
    )
    return Finding(Cause.APP_NOT_FOUND, Severity.ERROR, summary, tuple(evidence), (where, cloud, secret))


def credential_findings(parsed: ParsedInput, app: Application, ref: datetime) -> list[Finding]:
    codes = set(parsed.codes)
    secrets = app.secrets
    valid = [s for s in secrets if s.is_valid_at(ref)]
    findings: list[Finding] = []
    specific = False
    used_id = _secret_id_match(parsed, secrets)
    if used_id is not None:
        findings.append(
            Finding(
                Cause.SECRET_ID_USED_AS_VALUE,
                Severity.ERROR,
                "The client sends the secret's ID instead of the secret's value.",
                (f"{used_id.key_id} in the paste is the ID of {describe(used_id)}.",),
                _secret_id_fix(used_id, ref),
            )
        )
        specific = True
    if secrets and not valid:
        findings.append(_all_expired(app, secrets, ref, codes))
        specific = True
    elif EXPIRED_SECRET_CODE in codes and valid and (expired := [s for s in secrets if _expired(s, ref)]):
        findings.append(
            Finding(
                Cause.EXPIRED_SECRET_IN_USE,
                Severity.ERROR,
                "The client still sends an old, expired secret, although the app has a valid one.",
                tuple(f"Expired: {describe(s)}" for s in expired) + tuple(f"Valid: {describe(s)}" for s in valid),
                (
                    "Find where the client reads its secret (app settings, Key Vault, pipeline variables) and "
                    "put the current secret's value there; then restart or redeploy so it is picked up.",
                    "Delete the expired secret once nothing uses it, so it cannot be picked up again.",
                ),
            )
        )
        specific = True
    recent = [s for s in secrets if s.start is not None and timedelta(0) <= ref - s.start < PROPAGATION_WINDOW]
    if recent:
        propagation = bool(codes & WRONG_SECRET_CODES) and not specific
        findings.append(
            Finding(
                Cause.SECRET_RECENTLY_ADDED,
                Severity.ERROR if propagation else Severity.INFO,
                "A secret was added only minutes before the error; new secrets can take a little while to work.",
                tuple(
                    f"Added {int((ref - s.start).total_seconds() // 60)} min earlier: {describe(s)}"
                    for s in recent
                    if s.start
                ),
                ("Wait a minute and try again before changing anything else.",),
            )
        )
        specific = specific or propagation
    if not secrets:
        findings.append(_no_secrets(app, codes))
        specific = True
    if codes & WRONG_SECRET_CODES and valid and not specific:
        findings.append(_mismatch(parsed, valid))
    findings.extend(_capacity(app, secrets, valid, ref))
    return _with_lines(findings, _quoted_ids(parsed, app, ref, used_id), ())


def _expired(secret: Credential, ref: datetime) -> bool:
    return secret.state_at(ref) is CredentialState.EXPIRED


def _secret_id_match(parsed: ParsedInput, secrets: tuple[Credential, ...]) -> Credential | None:
    """The secret whose ID stands where the value goes, or is the whole paste; a mere mention is not."""
    handed = {parsed.secret_guid, parsed.app_id if parsed.bare_guid else None} - {None}
    return next((s for s in secrets if s.key_id in handed), None)


def _quoted_ids(parsed: ParsedInput, app: Application, ref: datetime, used: Credential | None) -> tuple[str, ...]:
    """Credential IDs the paste only mentions (a question, a log line): evidence of which one is meant."""
    by_id = {c.key_id: c for c in app.credentials if c is not used}
    lines = [
        f"{key_id} in the paste is the ID of {_name(c)}, {c.state_at(ref).value.replace('_', ' ')} at "
        f"{when(ref)} (valid {when(c.start)} to {when(c.end)})."
        for key_id in parsed.guids
        if (c := by_id.get(key_id)) is not None
    ]
    if lines and WRONG_SECRET_CODES & set(parsed.codes):
        lines.append("If the client sends that ID as its secret, that is the error: it must send the value.")
    return tuple(lines)


def _all_expired(app: Application, secrets: tuple[Credential, ...], ref: datetime, codes: set[int]) -> Finding:
    relevant = bool(codes & SECRET_CODES) or not codes
    return Finding(
        Cause.ALL_SECRETS_EXPIRED,
        Severity.ERROR if relevant else Severity.WARNING,
        f"Every secret of '{app.display_name}' had expired at {when(ref)}.",
        tuple(f"{s.state_at(ref).value.replace('_', ' ').capitalize()}: {describe(s)}" for s in secrets),
        (
            "Create a new secret (or ask the bot to rotate it), put its value where the client reads it, "
            "and restart the client.",
            "Delete the expired secrets afterwards.",
            "Consider a certificate or a federated credential, which do not need to be copied around.",
        ),
    )


def _no_secrets(app: Application, codes: set[int]) -> Finding:
    others = []
    if app.certificates:
        others.append(f"{len(app.certificates)} certificate{'' if len(app.certificates) == 1 else 's'}")
    if app.federated_credentials:
        others.append(
            f"{len(app.federated_credentials)} federated credential{'' if len(app.federated_credentials) == 1 else 's'}"
        )
    evidence = (
        f"It has {' and '.join(others)} instead."
        if others
        else "It has no certificates or federated credentials either."
    )
    return Finding(
        Cause.NO_SECRETS,
        Severity.ERROR if codes & SECRET_CODES else Severity.INFO,
        f"'{app.display_name}' has no client secrets, so any secret the client sends is wrong.",
        (evidence,),
        (
            "If the client should use a secret, create one and store its value where the client reads it.",
            "If the app is meant to use its certificate or federation, configure the client for that instead.",
        ),
    )


def _mismatch(parsed: ParsedInput, valid: list[Credential]) -> Finding:
    evidence = [f"Valid: {describe(s)}" for s in valid]
    leaked = [s for s in valid if s.hint and s.hint in parsed.leaked_hints]
    evidence.extend(f"The value in the paste starts like {describe(s)}." for s in leaked)
    return Finding(
        Cause.SECRET_MISMATCH,
        Severity.ERROR,
        "The secret the client sends matches none of the app's valid secrets.",
        tuple(evidence),
        (
            "Compare the first three characters of the value the client uses with the hints above.",
            "If none match, the client holds an old or mistyped value: copy the right value again, or create "
            "a new secret if nobody kept it.",
            "Check for stray spaces, quotes or a truncated value in the setting.",
        ),
    )


def _capacity(
    app: Application, secrets: tuple[Credential, ...], valid: list[Credential], ref: datetime
) -> list[Finding]:
    findings = []
    if app.sign_in_audience in PERSONAL_AUDIENCES and len(secrets) >= PERSONAL_SECRET_LIMIT:
        # Only an expired secret is offered for removal: a valid one may be what some client uses.
        expired = [s for s in secrets if _expired(s, ref)]
        room = (
            (f"To add a new secret, first remove the expired {_name(expired[0])}.",)
            if expired
            else (
                "Every slot holds a valid secret: have the client use one of them (whoever created it has its "
                "value) rather than removing one to make room.",
            )
        )
        findings.append(
            Finding(
                Cause.SECRET_LIMIT_REACHED,
                Severity.WARNING,
                f"'{app.display_name}' already holds the most secrets its audience allows ({PERSONAL_SECRET_LIMIT}).",
                (f"Audience {app.sign_in_audience} allows {PERSONAL_SECRET_LIMIT} secrets; it has {len(secrets)}.",),
                room,
            )
        )
    soon = [s for s in valid if s.end is not None and s.end - ref <= EXPIRY_WARNING_WINDOW]
    if soon:
        findings.append(
            Finding(
                Cause.SECRET_EXPIRING_SOON,
                Severity.WARNING,
                f"A valid secret of '{app.display_name}' expires within 30 days.",
                tuple(f"{s.days_left(ref)} days left: {describe(s)}" for s in soon),
                (
                    "Rotate it before it expires: add a new secret and switch every client over to it; the old "
                    "one then simply runs out.",
                ),
            )
        )
    return findings


# --- optional evidence --------------------------------------------------------------------------


def activity_evidence(activity: Activity, app: Application | None) -> tuple[str, ...]:
    """Sentences about recent sign-ins and credential changes, to add to the headline finding."""
    lines: list[str] = []
    if "sign-in" not in activity.not_in_source:
        lines.extend(_sign_in_evidence(activity, app))
    keys = {c.key_id: c for c in app.credentials} if app else {}
    audits = sorted(activity.audits, key=_audit_weight)[:MAX_AUDIT_LINES]
    lines.extend(_audit_line(entry, keys) for entry in sorted(audits, key=lambda e: e.when, reverse=True))
    if activity.not_in_source:
        logs = " or ".join(activity.not_in_source) + (" logs" if len(activity.not_in_source) > 1 else " log")
        lines.append(
            f"This file holds no {logs}, so evidence of failed sign-ins and of who changed the app's secrets "
            "needs live Graph (with AuditLog.Read.All)."
        )
    return tuple(lines)


MAX_AUDIT_LINES = 4
ACTIVITY_DAYS = 30  # how far back the logs are read (Entra ID keeps them 30 days with P1)


def _sign_in_evidence(activity: Activity, app: Application | None) -> list[str]:
    lines = []
    correlation = activity.correlation_id
    if correlation and activity.correlated:
        found = _failures(activity.correlated, app, f"correlation id {correlation}")
        latest = max(activity.correlated, key=lambda s: s.created)
        return found or [
            f"Sign-in log: the sign-in with correlation id {correlation} succeeded at {when(latest.created)}."
        ]
    if correlation:
        lines.append(
            f"Sign-in log: no sign-in with correlation id {correlation} in the last {ACTIVITY_DAYS} days of logs "
            "(a sign-in can take a few minutes to appear)."
        )
    around = activity.around
    scope = "this app's latest sign-ins"
    if around is not None:
        scope = f"this app, {when(around - SIGN_IN_WINDOW)} to {when(around + SIGN_IN_WINDOW)}"
    found = _failures(activity.sign_ins, app, scope)
    if not found and (around is not None or correlation):
        found = [f"Sign-in log ({scope}): no failed sign-ins."]
    return lines + found


def _failures(sign_ins: tuple[SignIn, ...], app: Application | None, scope: str) -> list[str]:
    failures = [s for s in sign_ins if s.error_code]
    if not failures:
        return []
    latest = max(failures, key=lambda s: s.created)
    ips = sorted({s.ip_address for s in failures if s.ip_address})
    codes = ", ".join(f"AADSTS{c}" for c in sorted({s.error_code for s in failures if s.error_code}))
    lines = [
        f"Sign-in log ({scope}): {len(failures)} failed sign-in{'' if len(failures) == 1 else 's'} with {codes}, "
        f"the last at {when(latest.created)}" + (f" from {', '.join(ips[:5])}" if ips else "") + "."
    ]
    names = {c.key_id: c for c in app.credentials} if app else {}
    for key_id in sorted({s.credential_key_id for s in failures if s.credential_key_id}):
        known = names.get(key_id)
        lines.append(f"Failed sign-ins used {describe(known)}." if known else f"Failed sign-ins used key {key_id}.")
    return lines


def _audit_weight(entry: AuditEntry) -> tuple[int, float]:
    """Deletions, credential changes and enabling or disabling first; newest first within each."""
    telling = entry.is_deletion or entry.added or entry.removed or entry.account_enabled is not None
    return (0 if telling else 1, -entry.when.timestamp())


def _audit_line(entry: AuditEntry, keys: dict[str, Credential]) -> str:
    actor = entry.actor or "an unknown actor"
    where = " on the service principal" if entry.target_type == "ServicePrincipal" else ""
    failed = "" if entry.result in (None, "success") else f" (result: {entry.result})"
    if entry.is_deletion:
        return f"Audit log: {actor} deleted the app at {when(entry.when)}{failed}."
    changes = [f"added {_audited(key, keys)}" for key in entry.added]
    changes += [f"removed {_audited(key, keys)}" for key in entry.removed]
    if entry.account_enabled is not None:
        changes.append(f"{'enabled' if entry.account_enabled else 'disabled'} the service principal")
        where = ""
    if changes:
        return f"Audit log: {actor} {' and '.join(changes)}{where} at {when(entry.when)}{failed}."
    return f"Audit log: {entry.activity.strip()} by {actor} at {when(entry.when)}{failed}."


def _audited(key: AuditedKey, keys: dict[str, Credential]) -> str:
    """The key as the audit names it, with the hint when the app still holds it."""
    kind = key.kind.value if key.kind else "key"
    name = f"'{key.display_name}'" if key.display_name else "unnamed"
    held = keys.get(key.key_id)
    hint = f"starts with '{held.hint}', " if held is not None and held.hint else ""
    return f"{kind} {name} ({hint}ID {key.key_id})"
