"""Read the facts out of normalised, lower-cased error text.

Every fact has patterns in tiers: the sentences Entra ID itself writes come first, then token URLs,
then configuration labels (`client_id=`, `-u`, `"appId":`). Within a tier the first match wins.
Each pattern starts with a literal or a short alternation and has bounded repeats, so a search is
linear in the length of the text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

_HEX = "[0-9a-f]"
GUID = rf"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}(?![0-9a-z]|-[0-9a-z])"
_MASK = r"\*{2,}"
_DOMAIN = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?){0,8}\.[a-z]{2,24}(?![\w.-])"
# Optional quotes around a value, typographic ones included (word processors and Teams paste them).
_Q = r"""[ \n'"‘’“”]{0,4}"""  # noqa: RUF001
# Between a label and its value: `: `, `=`, `":"`, or just a quote (`client ID "…"` in Terraform).
_SEP = r"""["']?[ \t]{0,3}(?:[:=][ \t\n]{0,4}["']?|["'])"""
_ZERO_GUID = "00000000-0000-0000-0000-000000000000"

GUID_RE = re.compile(rf"(?<![0-9a-z-]){GUID}")
# Finds GUIDs from their first dash (a literal), which is much faster than a leading class; the
# eight digits before it are checked behind it, and no letter, digit or dash may come before those.
_GUID_FROM_DASH = re.compile(
    rf"-(?=({_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}})(?![0-9a-z]|-[0-9a-z]))"
    rf"(?<=({_HEX}{{8}})-)(?<![^\W_]{_HEX}{{8}}-)(?<!-{_HEX}{{8}}-)"
)

_APP_TIERS = (
    # "for app '…'", "Application with identifier '…'", "the application '…'(name)", "Client app ID: …"
    (
        rf"app(?<![a-z]app)(?<!resource app)(?:lication)?[ \t\n]{{0,3}}"
        rf"(?:with[ \t\n]+(?:identifier|id|app[ \t]?id|client[ \t]?id)"
        rf"[ \t\n]{{0,3}})?{_Q}({GUID}|{_MASK})",
        rf"client app(?<![a-z]client app)(?:lication)? id{_SEP}({GUID}|{_MASK})",
        # "the application Payroll Sync ('…')" (AADSTS50105 and friends)
        rf"application(?<![a-z]application)[ \t][^'\"()\n]{{1,100}}\(['\"]?({GUID})['\"]?\)",
    ),
    # configuration and command lines
    (
        rf"client(?<![a-z]client)[_ -]?id{_SEP}({GUID}|{_MASK})",
        rf"app(?<![a-z]app)(?<!resource app)(?:lication)?[ _-]?(?:\(client\)[ _-]?)?id{_SEP}({GUID}|{_MASK})",
        rf"-(?<![\w-]-)(?:u|-username|applicationid|-client-id|clientid|-app-id)[ \t=]{{1,3}}{_Q}({GUID}|{_MASK})",
    ),
)

_LOGIN_HOSTS = (
    r"microsoftonline\.(?:com|us|de)|windows\.net|microsoft\.com|partner\.microsoftonline\.cn"
    r"|chinacloudapi\.cn|windows-ppe\.net"
)
_AUTHORITY = tuple(
    re.compile(rf"{host}/([^/\s?#'\"<>]{{1,253}})") for host in (rf"login\.(?:{_LOGIN_HOSTS})", r"sts\.windows\.net")
)
_TENANT_TIERS = (
    (
        rf"directory(?<![a-z]directory){_Q}({GUID}|{_DOMAIN})",
        rf"tenant(?<![a-z]tenant)(?:[ \t\n]+(?:identifier|named|id))?{_Q}({GUID}|{_DOMAIN})",
    ),
    (),  # the token URL's tenant segment, handled by _AUTHORITY
    (
        rf"tenant(?<![a-z]tenant)[ _-]?(?:id)?{_SEP}({GUID}|{_DOMAIN})",
        rf"directory[ \t]?\(tenant\)[ \t]?id{_SEP}({GUID}|{_DOMAIN})",
        rf"-(?<![\w-]-)(?:-tenant|tenant|tenantid|t)[ \t=]{{1,3}}{_Q}({GUID}|{_DOMAIN})",
    ),
)
# Sign-in hosts of the national clouds: an app there is invisible to the global Graph, and the reverse.
_NATIONAL_LOGIN = re.compile(r"login\.(?:microsoftonline\.us|chinacloudapi\.cn|partner\.microsoftonline\.cn)(?![\w.-])")
_COMMON_SEGMENTS = frozenset({"common", "organizations", "consumers"})
_TOKEN_PATH = re.compile(r"/oauth2/")  # "POST /{tenant}/oauth2/v2.0/token" without a host

_TRACE_TIERS = (
    (rf"trace(?<![a-z]trace)[ _]id{_SEP}({GUID})",),
    (rf"trace(?<![a-z]trace)-?id{_SEP}({GUID})", rf"request id(?<![\w-]request id)[ \t]{{0,3}}:[ \t\n]{{0,3}}({GUID})"),
)
_CORRELATION_TIERS = (
    (rf"correlation(?<![a-z]correlation)[ _]id{_SEP}({GUID})",),
    (rf"correlation(?<![a-z]correlation)-?id{_SEP}({GUID})",),
)
_TIMESTAMP = re.compile(rf"timestamp(?<![a-z]timestamp){_SEP}(\d{{4}}-\d\d-\d\d)[ \tt\n]{{1,4}}(\d\d:\d\d:\d\d)")

# Where a secret's value goes: a GUID there is the secret's ID handed over by mistake. Anywhere else
# (a question quoting "secret dde5…", a log line) a GUID that is a secret's ID is only a mention.
_VALUE_SEP = r"""["']?[ \t]{0,3}[:=][ \t]{0,3}["']?"""
_SECRET_VALUE_AT = (
    # client_secret=, "clientSecret": , ClientSecret=, AZURE_CLIENT_SECRET=, client_secret: (YAML)
    rf"secret(?:(?<=client[_-]secret)|(?<=clientsecret)|(?<=[a-z0-9]_secret)){_VALUE_SEP}({GUID})",
    # "Secret Value:", the portal's name for the value, and password keys (connection strings, JSON)
    rf"secret(?<![a-z0-9]secret)[ _-]?value{_VALUE_SEP}({GUID})",
    rf"password(?<![a-z]password){_VALUE_SEP}({GUID})",
    # -p GUID, --password GUID, --client-secret=GUID, --secret GUID
    rf"-(?<![\w-]-)(?:p|-password|-secret|-client-secret)[ \t=]{{1,3}}{_Q}({GUID})",
)

_CODE_MENTIONS = (
    re.compile(r"aadsts[ \t]?(\d{5,7})(?!\d)"),
    # "Error code: 7000215", "Sign-in error code 7000215", the lookup link "/error?code=7000215"
    re.compile(r"error(?<![a-z]error)(?:[ _]?code[ \t\n]{0,3}[:=]?[ \t\"']{0,3}|\?code=)(\d{5,7})(?!\d)"),
)
_ERROR_CODES_FIELD = re.compile(r"error_?codes[\"']?[ \t]{0,3}[:=][ \t]{0,3}\[([\d,\s]{1,200})\]")
# OAuth `error` values; found from their underscore (a literal), the word before it checked after.
_OAUTH_ERROR = re.compile(
    r"_(?:(?<=invalid_)(?:client|grant|request|scope|resource|tenant|target)|(?<=unauthorized_)client"
    r"|(?<=unsupported_)(?:grant_type|response_type)|(?<=interaction_)required|(?<=temporarily_)unavailable"
    r"|(?<=access_)denied|(?<=server_)error|(?<=consent_)required|(?<=login_)required)(?![\w-])"
)
_CLIENT_CREDENTIAL_HINTS = (
    "client_credentials",
    "--service-principal",
    "clientsecretcredential",
    "clientcertificatecredential",
    "confidentialclientapplication",
    "acquire_token_for_client",
    "acquiretokenforclient",
    "client_secret",
    "client_assertion",
)


def _compile(tiers: Iterable[Sequence[str]]) -> tuple[tuple[re.Pattern[str], ...], ...]:
    return tuple(tuple(re.compile(p) for p in tier) for tier in tiers)


_APP = _compile(_APP_TIERS)
_TENANT = _compile(_TENANT_TIERS)
_TRACE = _compile(_TRACE_TIERS)
_CORRELATION = _compile(_CORRELATION_TIERS)
_SECRET_VALUE = _compile((_SECRET_VALUE_AT,))


def _earliest(text: str, tier: tuple[re.Pattern[str], ...], usable: Callable[[str], bool]) -> str | None:
    """The usable value that comes first in the text among the tier's patterns (on a tie, the
    smaller value). Each pattern stops at its first usable match: a long log repeats ids."""
    best: tuple[int, str] | None = None
    for pattern in tier:
        for match in pattern.finditer(text):
            if usable(match.group(1)):
                hit = (match.start(), match.group(1))
                best = hit if best is None else min(best, hit)
                break
    return best[1] if best else None


def _not_zero(value: str) -> bool:
    return value != _ZERO_GUID


def first_in_tiers(text: str, tiers: tuple[tuple[re.Pattern[str], ...], ...]) -> str | None:
    """The earliest usable value of the highest tier that has one."""
    for tier in tiers:
        value = _earliest(text, tier, _not_zero)
        if value is not None:
            return value
    return None


def codes(text: str) -> tuple[int, ...]:
    """AADSTS numbers: a JSON body's `error_codes` first, then every mention by first appearance."""
    found: dict[int, None] = {}
    field = _ERROR_CODES_FIELD.search(text)
    if field:
        for number in re.findall(r"\d{5,7}", field.group(1)):
            found.setdefault(int(number))
    first_seen: dict[int, int] = {}
    for pattern in _CODE_MENTIONS:
        for digits, start in _first_mentions(pattern, text).items():
            number = int(digits)
            first_seen[number] = min(start, first_seen.get(number, start))
    for number in sorted(first_seen, key=first_seen.__getitem__):
        found.setdefault(number)
    return tuple(found)


def _first_mentions(pattern: re.Pattern[str], text: str) -> dict[str, int]:
    """Where each distinct number is first mentioned. A paste can repeat one code thousands of
    times, so count the distinct ones in C first and stop walking matches once all were seen."""
    distinct = len(set(pattern.findall(text)))
    seen: dict[str, int] = {}
    for match in pattern.finditer(text) if distinct else ():
        seen.setdefault(match.group(1), match.start())
        if len(seen) == distinct:
            break
    return seen


def app_id(text: str) -> tuple[str | None, bool]:
    """The application's id, and whether the paste shows it only masked (`***`).

    A real id anywhere beats a masked one: CI logs mask one line and print the id on another.
    """
    masked = False

    def real_id(value: str) -> bool:
        nonlocal masked
        if value.startswith("*"):
            masked = True
            return False
        return value != _ZERO_GUID

    for tier in _APP:
        value = _earliest(text, tier, real_id)
        if value is not None:
            return value, False
    return None, masked


def tenant(text: str) -> tuple[str | None, bool]:
    """The tenant named by the paste, and whether the token URL used a multi-tenant alias."""
    common = False
    named = first_in_tiers(text, _TENANT[:1])
    for match in sorted((m for p in _AUTHORITY for m in p.finditer(text)), key=lambda m: m.start()):
        segment = match.group(1)
        if segment in _COMMON_SEGMENTS:
            common = True
        elif named is None and (GUID_RE.fullmatch(segment) or re.fullmatch(_DOMAIN, segment)):
            named = segment if segment != _ZERO_GUID else None
    if named is None:
        named = _tenant_before_token_path(text)
    if named is None:
        named = first_in_tiers(text, _TENANT[2:])
    return named, common


def _tenant_before_token_path(text: str) -> str | None:
    for match in _TOKEN_PATH.finditer(text):
        start = text.rfind("/", max(match.start() - 254, 0), match.start())
        segment = text[start + 1 : match.start()]
        if start >= 0 and segment != _ZERO_GUID and (GUID_RE.fullmatch(segment) or re.fullmatch(_DOMAIN, segment)):
            return segment
    return None


def national_login_host(text: str) -> str | None:
    """The sign-in host of a national cloud (`login.microsoftonline.us`), when the paste names one."""
    match = _NATIONAL_LOGIN.search(text)
    return match.group(0) if match else None


def trace_id(text: str) -> str | None:
    return first_in_tiers(text, _TRACE)


def correlation_id(text: str) -> str | None:
    return first_in_tiers(text, _CORRELATION)


def timestamp(text: str) -> datetime | None:
    match = _TIMESTAMP.search(text)
    if not match:
        return None
    try:
        parsed = datetime.fromisoformat(f"{match.group(1)}T{match.group(2)}")
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC)


def oauth_error(text: str) -> str | None:
    for match in _OAUTH_ERROR.finditer(text):
        start = match.start()
        while start > 0 and text[start - 1].isalpha():
            start -= 1
        before = text[start - 1 : start]
        if not (before.isalnum() or (before in "_-" and before)):
            return text[start : match.end()]
    return None


def secret_guid(text: str) -> str | None:
    """A GUID standing where a secret's value goes (`client_secret=`, `-p`, `"clientSecret":`)."""
    return first_in_tiers(text, _SECRET_VALUE)


def guids(text: str) -> tuple[str, ...]:
    """Every well-formed GUID, in order of first appearance."""
    found = dict.fromkeys(f"{head}-{tail}" for tail, head in _GUID_FROM_DASH.findall(text))
    found.pop(_ZERO_GUID, None)
    return tuple(found)


def client_credentials(text: str) -> bool:
    return any(hint in text for hint in _CLIENT_CREDENTIAL_HINTS)
