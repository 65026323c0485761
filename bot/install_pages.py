"""The pages an app store links to: `GET /about`, `/privacy` and `/terms`.

The Teams manifest's developer URLs (`websiteUrl`, `privacyUrl`, `termsOfUseUrl`) must open a page,
and the server that answers the bot is the one host every installation is sure to have, so it
serves them itself: short, static, in plain HTML.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from html import escape

from aiohttp import web

_ABOUT = (
    "About secretbot",
    [
        "secretbot explains why an Entra ID (Azure AD) application could not sign in with its client "
        "secret or certificate. Paste an AADSTS error or an application (client) id in Slack or "
        "Microsoft Teams, and it answers with the cause, the evidence it found and what to do next.",
        "It is open-source software run by your own organisation: whoever operates this server is responsible for it.",
    ],
)
_PRIVACY = (
    "secretbot privacy",
    [
        "What it reads: the messages you send it or mention it in, and, with the permissions your "
        "administrator granted, the app registrations, service principals, sign-in logs and audit "
        "logs of your tenant in Microsoft Graph.",
        "What it keeps: the pasted text is read in memory to answer and is not stored. Secret values "
        "found in a paste are never repeated, logged or stored. To update its answers and post in a "
        "conversation later, it stores a reference to the conversation (conversation, team, user and "
        "bot ids) in its Redis until it is removed from that conversation, and for a day the ids of the "
        "events it answered, so that each is answered once.",
        "Logs hold request ids, platform and timings, never pasted text. Nothing is sent to anyone "
        "other than Slack, Microsoft Teams and Microsoft Graph.",
        "Questions go to the team that operates this server.",
    ],
)
_TERMS = (
    "secretbot terms of use",
    [
        "secretbot is provided as is, without warranty of any kind. Its answers are a diagnosis from "
        "the error text and your tenant's data; check them before you change an app's credentials.",
        "Use it only with the tenants and workspaces you are allowed to administer or inspect. The "
        "organisation that operates this server sets any further rules.",
    ],
)
PAGES = {"/about": _ABOUT, "/privacy": _PRIVACY, "/terms": _TERMS}


def register(app: web.Application) -> None:
    for path, (title, paragraphs) in PAGES.items():
        app.router.add_get(path, _page(title, paragraphs))


def _page(title: str, paragraphs: list[str]) -> Callable[[web.Request], Awaitable[web.Response]]:
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title></head>"
        f'<body style="font-family: sans-serif; max-width: 40em; margin: 2em auto; padding: 0 1em">'
        f"<h1>{escape(title)}</h1>{body}</body></html>"
    )

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    return handler
