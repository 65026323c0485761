"""The rules that turn a paste and what the directory knows into findings.

Each rule looks at one thing and returns zero or more findings in plain words. The order of
`PRIORITY` decides which finding is the headline when several are true at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from bot.domain import (
    Activity,
    Application,
    AppLookup,
    Category,
    Cause,
    CodeInfo,
    Credential,
    CredentialState,
    Finding,
    ParsedInput,
    Severity,
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
        _SECRET_ID_FIX,
    )


_SECRET_ID_FIX = (
    "A secret's value is shown only once, right after it is created; the portal afterwards shows "
    "its Secret ID, a GUID, which Entra ID rejects as a password.",
    "If nobody kept the value, create a new secret, copy its Value column, and store it where the app reads it.",
    "Then delete the secret whose value was lost, so it cannot be confused again.",
)


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
            "Delete the leaked secret from the app registration; deleting the chat message is not enough.",
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


def from_directory(parsed: ParsedInput, facts: AppLookup, ref: datetime) -> list[Finding]:
    findings: list[Finding] = []
    tenant = facts.tenant
    if parsed.tenant and tenant and not tenant.names(parsed.tenant):
        findings.append(_tenant_mismatch(parsed.tenant, facts))
    app = facts.application
    if app is None:
        findings.extend(_not_in_tenant(parsed, facts))
        return findings
    disabled = _disabled(parsed, app, facts)
    if disabled is not None:
        findings.append(disabled)
    findings.extend(credential_findings(parsed, app, ref))
    return findings


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
            ),
        )
    ]


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
                _SECRET_ID_FIX,
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
    return findings


def _expired(secret: Credential, ref: datetime) -> bool:
    return secret.state_at(ref) is CredentialState.EXPIRED


def _secret_id_match(parsed: ParsedInput, secrets: tuple[Credential, ...]) -> Credential | None:
    pasted = set(parsed.guids) | ({parsed.secret_guid} if parsed.secret_guid else set())
    return next((s for s in secrets if s.key_id in pasted), None)


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
        findings.append(
            Finding(
                Cause.SECRET_LIMIT_REACHED,
                Severity.WARNING,
                f"'{app.display_name}' already holds the most secrets its audience allows ({PERSONAL_SECRET_LIMIT}).",
                (f"Audience {app.sign_in_audience} allows {PERSONAL_SECRET_LIMIT} secrets; it has {len(secrets)}.",),
                ("Delete a secret nobody uses before adding a new one.",),
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
                ("Rotate it before it expires: add a new secret, switch the client over, then delete the old one.",),
            )
        )
    return findings


# --- optional evidence --------------------------------------------------------------------------


def activity_evidence(activity: Activity, app: Application | None) -> tuple[str, ...]:
    """Sentences about recent sign-ins and credential changes, to add to the headline finding."""
    lines = []
    failures = [s for s in activity.sign_ins if s.error_code]
    if failures:
        latest = max(failures, key=lambda s: s.created)
        ips = sorted({s.ip_address for s in failures if s.ip_address})
        lines.append(
            f"Sign-in log: {len(failures)} failed sign-in{'' if len(failures) == 1 else 's'},"
            + f" the last at {when(latest.created)}"
            + (f" from {', '.join(ips[:5])}" if ips else "")
            + "."
        )
        names = {c.key_id: c for c in app.credentials} if app else {}
        for key_id in sorted({s.credential_key_id for s in failures if s.credential_key_id}):
            known = names.get(key_id)
            lines.append(f"Failed sign-ins used {describe(known)}." if known else f"Failed sign-ins used key {key_id}.")
    for entry in activity.audits[:3]:
        lines.append(
            f"Audit log: {entry.activity.strip()} by {entry.actor or 'an unknown actor'} at {when(entry.when)}."
        )
    return tuple(lines)
