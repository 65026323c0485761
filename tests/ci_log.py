"""A realistic CI log, generated: what people paste when a pipeline fails to sign in.

GitHub Actions, Azure DevOps and Terraform lines with ANSI colour codes, timestamps, Unicode (✓ ✗ →
… emoji, CJK file names, accented names, box drawing), carriage-return progress bars and masked
values, and three Entra errors at known places: an AADSTS7000215 with app id, trace id,
correlation id and timestamp, an AADSTS7000222, and an MSAL JSON body. The same seed gives the same
text; `colour=False` gives the same log without its colour codes, character for character otherwise.
Used by the parser tests and by benchmarks/parser_throughput.py (no 1 MB blob in the repository).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

APP = "3f9c2a71-58d4-4b6e-9a0f-c1d2e3f4a5b6"
TENANT = "7b1e4c90-2d3a-4f5b-8c6d-9e0f1a2b3c4d"
TRACE = "e4d3c2b1-a098-4765-b432-10fedcba9876"
CORRELATION = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
TIMESTAMP = "2026-11-20 08:41:17"  # the first error's, as Entra prints it (UTC)
SECOND_TRACE = "0f1e2d3c-4b5a-4968-8776-655443322110"
CODES = (7000215, 7000222)
SEED = 20261206

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# SGR codes as CI runners and Terraform print them.
GREEN, RED, BOLD_RED, YELLOW, CYAN, BOLD, DIM, RESET = (
    "\x1b[32m", "\x1b[31m", "\x1b[1;31m", "\x1b[33m", "\x1b[36;1m", "\x1b[1m", "\x1b[90m", "\x1b[0m",
)  # fmt: skip

_FILES = ("src/数据/处理器.py", "docs/日本語/はじめに.md", "tests/테스트/검증.py", "assets/图标/标志.svg",
          "src/café/crème.ts", "lib/naïve_bayes.py", "app/Ärger/Übersicht.vue", "README.md")  # fmt: skip
_PEOPLE = ("José Muñoz", "Zoë Ångström", "François Lefèvre", "Jürgen Weiß", "Søren Kierkegård", "李小龙", "Ana Ñáñez")
_STEPS = ("Checkout", "Set up Python 3.11", "Install dependencies", "Lint", "Unit tests", "Build image", "Deploy")
_RESOURCES = ("azurerm_resource_group.main", "azurerm_key_vault.secrets", "azurerm_linux_web_app.api",
              "azurerm_storage_account.logs", "azuread_application.ci", "azurerm_role_assignment.deploy")  # fmt: skip
_ICONS = ("✓", "✔", "✗", "→", "…", "🚀", "📦", "⚠️", "🔒", "⏱")


@dataclass(frozen=True)
class CiLog:
    text: str
    error_lines: tuple[int, ...]  # the 0-based line numbers where the three errors begin


def ci_log(size: int = 1_000_000, *, colour: bool = True, seed: int = SEED) -> CiLog:
    """About `size` characters of CI log (whole lines), the errors at 30 %, 55 % and 80 % of it."""
    rng = random.Random(seed)
    lines: list[str] = []
    length = 0
    placed: list[int] = []
    errors = [(0.30, _first_error), (0.55, _second_error), (0.80, _msal_body)]
    second = 0
    while length < size:
        if errors and length >= errors[0][0] * size:
            placed.append(len(lines))
            block = errors.pop(0)[1]()
        else:
            block = _filler(rng, second)
        second += 1
        for line in block:
            lines.append(line)
            length += len(line) + 1
    text = "\n".join(lines)
    return CiLog(text if colour else _ANSI.sub("", text), tuple(placed))


def _stamp(second: int) -> str:
    minutes, seconds = divmod(second // 20, 60)
    return f"2026-11-20T08:{minutes % 60:02d}:{seconds:02d}.{(second * 7919) % 10**7:07d}Z"


def _filler(rng: random.Random, second: int) -> list[str]:
    at = _stamp(second)
    kind = rng.randrange(9)
    if kind == 0:
        step = rng.choice(_STEPS)
        return [
            f"{at} ##[group]{CYAN}Run {step}{RESET}",
            f"{at} {DIM}shell: /usr/bin/bash -e {{0}}{RESET}",
            f"{at} ##[endgroup]",
        ]
    if kind == 1:
        bar = "".join(f"\r[{'=' * n}>{' ' * (20 - n)}] {n * 5}%" for n in range(0, 21, rng.choice((2, 4, 5))))
        return [f"{at} Downloading {rng.choice(_FILES)} {bar} {GREEN}✓{RESET}"]
    if kind == 2:
        ok = rng.random() < 0.9
        mark = f"{GREEN}✓ PASSED{RESET}" if ok else f"{BOLD_RED}✗ FAILED{RESET}"
        test = f"test_{rng.choice(('parse', 'render', 'sync', 'évaluer', 'überprüfen'))}_{rng.randrange(999)}"
        return [f"{at} {rng.choice(_FILES)}::{test} {mark} {DIM}({rng.randrange(1, 900)} ms){RESET}"]
    if kind == 3:
        resource = rng.choice(_RESOURCES)
        return [
            f"{BOLD}{resource}: Refreshing state... [id=/subscriptions/{_guid(rng)}/resourceGroups/rg-ci]{RESET}",
            f'{GREEN}  + {RESET}resource "{resource.split(".")[0]}" "{resource.split(".")[1]}" {{',
        ]
    if kind == 4:
        commit = "".join(rng.choices("0123456789abcdef", k=40))
        change = (
            f"{rng.choice(('Fix', 'Add', 'Update'))} {rng.choice(_FILES)} → v{rng.randrange(9)}.{rng.randrange(30)}"
        )
        return [
            f"{at} {YELLOW}commit {commit}{RESET}",
            f"{at} Author: {rng.choice(_PEOPLE)} <dev@example.com>",
            f"{at}     {rng.choice(_ICONS)} {change}",
        ]
    if kind == 5:
        return [
            f"##[section]Starting: {rng.choice(_STEPS)}",
            f"{'═' * 40}",
            "Task         : Azure CLI",
            f"Version      : 2.{rng.randrange(300)}.0",
            "Author       : Microsoft Corporation",
            f"{'═' * 40}",
        ]
    if kind == 6:
        return [
            f"{at} {DIM}env:{RESET}",
            f"{at}   AZURE_CLIENT_ID: ***",
            f"{at}   AZURE_CLIENT_SECRET: ***",
            f"{at}   ARM_SUBSCRIPTION_ID: {_guid(rng)}",
        ]
    if kind == 7:
        digest = "".join(rng.choices("0123456789abcdef", k=64))
        layer = f"#{rng.randrange(40)} {rng.randrange(90)}.{rng.randrange(10)}s {BOLD}⠋{RESET}"
        return [
            f"{at} {layer} pulling sha256:{digest}",
            f"{at} {rng.choice(_ICONS)} {rng.randrange(1, 800)} packages in {rng.randrange(2, 60)}s … done",
        ]
    return [f"┌{'─' * 30}┐", f"│ {rng.choice(_STEPS):<28} │", f"│ {rng.choice(_PEOPLE):<28} │", f"└{'─' * 30}┘"]


def _guid(rng: random.Random) -> str:
    hexes = "".join(rng.choices("0123456789abcdef", k=32))
    return f"{hexes[:8]}-{hexes[8:12]}-{hexes[12:16]}-{hexes[16:20]}-{hexes[20:]}"


def _first_error() -> list[str]:
    return [
        f"{BOLD_RED}╷{RESET}",
        f"{BOLD_RED}│{RESET} {BOLD_RED}Error: {RESET}{BOLD}building account: could not acquire access token{RESET}",
        f"{BOLD_RED}│{RESET} ",
        f"{BOLD_RED}│{RESET} ClientSecretCredential authentication failed: POST "
        f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token",
        f"{BOLD_RED}│{RESET} {RED}AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the"
        f" request is the client secret value, not the client secret ID, for a secret added to app"
        f" '{YELLOW}{APP}{RESET}{RED}'.{RESET}",
        f"{BOLD_RED}│{RESET} Trace ID: {YELLOW}{TRACE}{RESET}",
        f"{BOLD_RED}│{RESET} Correlation ID: {YELLOW}{CORRELATION}{RESET}",
        f"{BOLD_RED}│{RESET} Timestamp: {YELLOW}{TIMESTAMP}Z{RESET}",
        f"{BOLD_RED}╵{RESET}",
        f"##[error]{BOLD_RED}Terraform exited with code 1.{RESET} ✗",
    ]


def _second_error() -> list[str]:
    return [
        f"2026-11-20T09:02:44.0000000Z ##[error]{RED}AADSTS7000222: The provided client secret keys for app"
        f" '{APP}' are expired. Visit the Azure portal to create new keys for your app:"
        f" https://aka.ms/NewClientSecret, or consider using certificate credentials for added security:"
        f" https://aka.ms/certCreds. Trace ID: {SECOND_TRACE} Correlation ID: {CORRELATION}"
        f" Timestamp: 2026-11-20 09:02:44Z{RESET}",
        "2026-11-20T09:02:44.0000000Z ##[error]Az CLI Login failed. → retrying in 30 s …",
    ]


def _msal_body() -> list[str]:
    return [
        f"{DIM}msal.token_cache DEBUG{RESET} {RED}response:{RESET} "
        f'{{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.'
        f" Ensure the secret being sent in the request is the client secret value, not the client secret ID,"
        f" for a secret added to app '{APP}'.\\r\\nTrace ID: {SECOND_TRACE}\\r\\nCorrelation ID: {CORRELATION}"
        f'\\r\\nTimestamp: 2026-11-20 09:31:05Z","error_codes":[7000215],"timestamp":"2026-11-20 09:31:05Z",'
        f'"trace_id":"{SECOND_TRACE}","correlation_id":"{CORRELATION}","error_uri":'
        f'"https://login.microsoftonline.com/error?code=7000215"}}',
    ]
