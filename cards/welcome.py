"""The welcome: what secretbot says when someone says "hi" or "help", in our own words.

Channel-neutral sections; every renderer lays them out natively (Teams, Slack, the terminal).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Section:
    """A headed block of our own fixed wording (the welcome, "nothing recognised"); `examples` are
    pastes, each shown as typed in a monospace font."""

    heading: str
    lines: tuple[str, ...]
    examples: bool = False


EXAMPLE_PASTE = (
    "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client "
    "secret value, not the client secret ID, for a secret added to app '<application id>'. "
    "Trace ID: … Correlation ID: … Timestamp: 2026-11-20 09:00:00Z"
)
HELP_TITLE = "secretbot finds out why an app cannot sign in to Entra ID"
HELP_SUBJECT = "Paste an error, a log or an app id; I check the app's secrets and tell you the fix"
HELP_SECTIONS = (
    Section(
        "What I do",
        (
            "I read Entra ID (Azure AD) sign-in errors such as AADSTS7000215 or AADSTS7000222, look the app up "
            "in your tenant with Microsoft Graph, and answer with the cause, the evidence and the steps to fix "
            "it: an expired secret still in use, a secret ID sent as the secret, a deleted app, the wrong "
            "tenant, and more.",
        ),
    ),
    Section(
        "What to paste",
        (
            "• The error message, as your tool printed it: Azure CLI, PowerShell, MSAL, Terraform, a token "
            "endpoint's JSON answer.",
            "• A log or stack trace around it: I pick out the code, the app id, the tenant and the time.",
            "• Or just an application (client) id, to have that app's secrets checked.",
        ),
    ),
    Section(
        "For example",
        (
            EXAMPLE_PASTE,
            "AADSTS7000222: The provided client secret keys for app '<application id>' are expired.",
            "<application id>",
        ),
        examples=True,
    ),
    Section(
        "Your secrets",
        (
            "Never paste a secret's value: I do not need it. If a paste holds one, I say so and tell you to "
            "replace it; I never repeat, store or log it. From Graph I read only a secret's name, its first "
            "three characters and its dates.",
        ),
    ),
    Section(
        "Where to find me",
        (
            "Slack: /secretbot followed by the paste, a direct message, or @secretbot in a channel.",
            "Teams: a chat with secretbot, or @secretbot in a channel.",
            "A terminal: secretbot diagnose, with the paste as an argument or on stdin.",
        ),
    ),
)
HELP_FOOTER = "Say help at any time to see this again."
