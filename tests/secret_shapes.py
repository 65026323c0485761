"""Every shape in which people paste a client secret: ONE list, which every echo surface is tested against.

Each shape is a paste and the fragments of it that must never come back out (the value as pasted
and as any decoding would show it). All values are invented, of the real formats: the current
Entra format (`xxx8Q~` and 34 more, 40 in all), the previous one (`xxx7Q~` and 31 more), and the
legacy 32-, 34- and 44-character ones.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import quote

MODERN = "Zk38Q~pQ0vL2nA.r7Tc-Wm1xYb_3sGd9eHf4iJ~u"
PREVIOUS = "Ab17Q~Cd3Ef5Gh7Ij9Kl1Mn3Op5Qr7St9Uv1W"
LEGACY32 = "[6gyXA5S20@MN+WRXAJ]I-TO7g1:h2P8"
LEGACY34 = "Xq4-Tz8_Lm2.Vb6~Rn0-Wk5_Jh9.Pd3~Gs"
LEGACY44 = "q8Jz3Rk0Lm5Wx2Vb7Nc4Pd9Tf1Gh6Ys0Ue3Ia8Oq2Mw="
KEYED = "Pq4z9_aLm2Nc8vBx7Rt6Ys"  # no Entra shape: only its key says it is a secret
LOWER40 = "k3j9x0q7w2m5n8b1v4c6z0l3p9r2t5y8u1i4o7e2"  # lower-case letters and digits only
APP = "8c3e6f0a-1b2d-4e5f-9a8b-7c6d5e4f3a2b"
CODE = "AADSTS7000215: Invalid client secret provided."
_BASIC = base64.b64encode(f"{APP}:{KEYED}".encode()).decode()
_ZWSP = "\u200b"


@dataclass(frozen=True)
class Shape:
    name: str
    paste: str
    fragments: tuple[str, ...]  # none of these may appear in any output

    def __str__(self) -> str:
        return self.name


def _shape(name: str, paste: str, *fragments: str) -> Shape:
    return Shape(name, paste, tuple(dict.fromkeys(fragments)))


SHAPES: tuple[Shape, ...] = (
    # Entra formats, bare in a sentence
    _shape("modern bare", f"{CODE} the secret is {MODERN} for app {APP}", MODERN, MODERN[6:]),
    _shape("previous format bare", f"{CODE} tried {PREVIOUS} for app {APP}", PREVIOUS, PREVIOUS[6:]),
    _shape("legacy 32", f"{CODE} my client secret is {LEGACY32} app {APP}", LEGACY32, LEGACY32[4:]),
    _shape("legacy 34", f"{CODE} the secret: {LEGACY34}", LEGACY34, LEGACY34[4:]),
    _shape("legacy 44 base64", f"{CODE} old key secret {LEGACY44} for app {APP}", LEGACY44, LEGACY44[4:-1]),
    _shape("modern ends a sentence", f"{CODE} I used {MODERN}.", MODERN),
    # keys and flags
    _shape("client_secret=", f"{CODE} client_id={APP} client_secret={KEYED}", KEYED),
    _shape("client_secret= 40 lower-case", f"{CODE} client_id={APP}&client_secret={LOWER40}", LOWER40),
    _shape("--password", f"az login --service-principal -u {APP} --password '{KEYED}' --tenant t\n{CODE}", KEYED),
    _shape("-p", f"az login --service-principal -u {APP} -p {KEYED} --tenant t\n{CODE}", KEYED),
    _shape("--client-secret=", f"tool login --client-id {APP} --client-secret={KEYED}\n{CODE}", KEYED),
    _shape("JSON clientSecret", f'{{"clientId": "{APP}", "clientSecret": "{KEYED}", "error": "{CODE}"}}', KEYED),
    _shape("YAML clientSecret", f"auth:\n  clientId: {APP}\n  clientSecret: {KEYED}\n# {CODE}", KEYED),
    _shape("env AZURE_CLIENT_SECRET=", f"AZURE_CLIENT_ID={APP}\nAZURE_CLIENT_SECRET={KEYED}\n{CODE}", KEYED),
    _shape("env *_SECRET=", f"PAYROLL_APP_SECRET={KEYED}\n{CODE}", KEYED),
    _shape("C# ClientSecret =", f'ClientId = "{APP}", ClientSecret = "{MODERN}"; // {CODE}', MODERN),
    _shape(
        "portal Secret Value", f"Secret Value: {KEYED}\nSecret ID: 0c1d2e3f-9999-8888-7777-fedcba987654\n{CODE}", KEYED
    ),
    # encodings and chat wrappers
    _shape(
        "URL-encoded form body",
        f"POST /t/oauth2/v2.0/token\ngrant_type=client_credentials&client_id={APP}"
        f"&client_secret={quote(MODERN, safe='')}&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default\n{CODE}",
        quote(MODERN, safe=""),
        MODERN,
        MODERN[6:],
    ),
    _shape(
        "URL-encoded keyed value",
        f"client_id={APP}&client_secret={quote(KEYED + '+/=', safe='')}&grant_type=client_credentials\n{CODE}",
        quote(KEYED + "+/=", safe=""),
        KEYED,
    ),
    _shape(
        "JSON-escaped",
        '{"body": "{\\"client_secret\\": \\"' + MODERN.replace("~", "\\u007e") + '\\"}", "msg": "' + CODE + '"}',
        MODERN.replace("~", "\\u007e"),
        MODERN,
        MODERN[6:].replace("~", "\\u007e"),
    ),
    _shape("Slack code block", f"```AZURE_CLIENT_SECRET={KEYED}```\n{CODE}", KEYED),
    _shape("Slack quote and entities", f"&gt; client_secret=&lt;{KEYED}&gt;\n&gt; {CODE}", KEYED),
    _shape(
        "Teams HTML with entity",
        f"<p>client secret: <code>{MODERN.replace('~', '&#126;')}</code></p><p>{CODE}</p>",
        MODERN.replace("~", "&#126;"),
        MODERN,
        MODERN[6:].replace("~", "&#126;"),
    ),
    # shapes that used to get through
    _shape(
        "HTTP Basic header",
        f"POST /t/oauth2/v2.0/token HTTP/1.1\nAuthorization: Basic {_BASIC}\n{CODE}",
        _BASIC,
        _BASIC[8:],
        KEYED,
    ),
    _shape(
        "zero-width space inside",
        f"{CODE} the secret {MODERN[:12]}{_ZWSP}{MODERN[12:]} for app {APP}",
        f"{MODERN[:12]}{_ZWSP}{MODERN[12:]}",
        MODERN,
        MODERN[12:],
    ),
    _shape(
        "zero-width joiner in keyed value",
        f"client_secret={KEYED[:9]}\u2060{KEYED[9:]}\n{CODE}",
        f"{KEYED[:9]}\u2060{KEYED[9:]}",
        KEYED,
        KEYED[9:],
    ),
    _shape(
        "line split by a terminal",
        f"$ curl -d client_id={APP} -d client_secret={MODERN[:21]}\n{MODERN[21:]} https://login.example/token\n{CODE}",
        MODERN[:21],
        MODERN[21:],
    ),
    _shape(
        "bare modern split at terminal width",
        "x" * 60 + f" secret {MODERN[:12]}\n{MODERN[12:]} and more\n{CODE}",
        MODERN[:12] + "\n",
        MODERN[12:],
    ),
)
