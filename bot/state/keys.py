"""Every Redis key and TTL of secretbot, in one place, each with why it exists and why that TTL.

Everything lives under `secretbot:` so the bot can share a Redis with other applications.
A key is `secretbot:<area>:<name part>:<free-form id>`; the name parts (claim kinds, platforms) are
checked to hold no `:` and the free-form id always comes last, so two different inputs never build
the same key.
"""

from __future__ import annotations

import re
from datetime import timedelta

PREFIX = "secretbot:"

# --- claims (de-duplication) -------------------------------------------------------------------

# `claim(kind, key)` takes `SET <key> 1 NX EX <ttl>`: the first replica to set it answers, others skip.
CLAIM_PREFIX = f"{PREFIX}claim:"

# Slack redelivers an event it saw no 200 for up to 3 times (about 1 min and 5 min apart); a day
# covers those retries and late redeliveries after an outage with wide margin, and keys then expire.
EVENT_CLAIM_TTL = timedelta(hours=24)

# A signed Slack request without an event id (a slash command, a button click), claimed by its
# timestamp and signature so that a captured copy sent again is refused. Slack's signature is
# accepted while its timestamp is within 5 minutes of our clock, either side: a request first seen
# at the early edge of that window stays acceptable for up to 10 minutes, so the claim must last as
# long; after that the signature check itself refuses the copy.
REPLAY_CLAIM_TTL = timedelta(minutes=10)

# Per-kind TTLs; a kind not listed here uses EVENT_CLAIM_TTL. Add a kind with its own why-comment.
CLAIM_TTLS: dict[str, timedelta] = {"slack-request": REPLAY_CLAIM_TTL}

# --- conversation references (proactive posts) ---------------------------------------------------

# One JSON Activity-Protocol conversation reference per conversation. No TTL: the bot needs it to
# post warnings later until it is uninstalled, however long the conversation stays quiet.
CONVERSATION_PREFIX = f"{PREFIX}conv:"

# A set of conversation ids per platform, so listing never needs SCAN/KEYS over a shared Redis.
# No TTL, like the references it indexes.
CONVERSATION_INDEX_PREFIX = f"{PREFIX}convs:"

# --- questions (Check again) ---------------------------------------------------------------------

# One JSON question per answer that has a Check again button, under the button's random id: the
# pasted error's facts (never a secret value) and what the first answer saw. Buttons carry only the id.
QUESTION_PREFIX = f"{PREFIX}question:"

# 7 days: an outage is usually worked on within hours and re-checked the same week, and a card
# scrolled out of sight after a week is better answered by pasting the error again. It bounds what
# a busy workspace keeps in Redis (a few kB per answer).
QUESTION_TTL = timedelta(days=7)

_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")


def _name(what: str, value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(f"{what} must be lower-case letters, digits, '_', '.' or '-', got {value!r}")
    return value


def claim_key(kind: str, key: str) -> str:
    """`secretbot:claim:<kind>:<key>`, e.g. `secretbot:claim:slack_event:Ev0123`."""
    return f"{CLAIM_PREFIX}{_name('claim kind', kind)}:{key}"


def claim_ttl(kind: str) -> timedelta:
    return CLAIM_TTLS.get(kind, EVENT_CLAIM_TTL)


def conversation_key(platform: str, conversation_id: str) -> str:
    """`secretbot:conv:<platform>:<conversation id>` (Teams ids contain `:` and `;`, which is fine last)."""
    return f"{CONVERSATION_PREFIX}{_name('platform', platform)}:{conversation_id}"


def conversation_index_key(platform: str) -> str:
    """`secretbot:convs:<platform>`: the set of conversation ids saved for that platform."""
    return f"{CONVERSATION_INDEX_PREFIX}{_name('platform', platform)}"


def question_key(question_id: str) -> str:
    """`secretbot:question:<id>`: the id is the button's value, random and opaque."""
    return f"{QUESTION_PREFIX}{question_id}"


# --- the credential inventory (tenant-wide scan) -------------------------------------------------

# Per tenant and collection ("applications", "servicePrincipals"), one hash: object id → compact
# JSON of what warnings need (app id, name, tags, each credential's kind, key id, name, hint, dates,
# usage). A hash, so a delta round changes only the objects Graph reports, and the report reads it
# back with HSCAN in chunks instead of holding the tenant in memory.
INVENTORY_PREFIX = f"{PREFIX}inv:"

# 8 days, refreshed by every sync: one day longer than the delta link it belongs to, so a stored
# delta link never outlives the inventory it updates (a link without its inventory means a full sync).
INVENTORY_TTL = timedelta(days=8)

# Graph keeps an identity delta link usable for 7 days and then refuses it (400 syncStateNotFound);
# keeping it longer would only cost one refused round trip before the full sync.
DELTA_LINK_TTL = timedelta(days=7)

# A full sync writes into a staging hash and renames it over the live one at the end, so a scan that
# dies midway leaves the previous inventory intact; an abandoned staging hash is gone after an hour.
INVENTORY_STAGING_TTL = timedelta(hours=1)

# Owners per application object id, with when they were read. Owners are a navigation property that
# an application delta round does not carry, so an entry is read again once it is OWNERS_MAX_AGE old
# (and at once when the app itself changed): 3 days bounds how long a departed owner is still
# mentioned, while a daily scan of a large tenant reads a third of its owners, not all, each day.
# The hash goes with the inventory's TTL.
OWNERS_MAX_AGE = timedelta(days=3)


def inventory_key(tenant: str, collection: str) -> str:
    """`secretbot:inv:<collection>:<tenant id>`: the inventory of one collection of one tenant."""
    return f"{INVENTORY_PREFIX}{_name('collection', collection.lower())}:{tenant}"


def inventory_staging_key(tenant: str, collection: str) -> str:
    return f"{INVENTORY_PREFIX}{_name('collection', collection.lower())}.staging:{tenant}"


def delta_link_key(tenant: str, collection: str) -> str:
    """`secretbot:inv:<collection>.delta:<tenant id>`: the link the next delta round starts from."""
    return f"{INVENTORY_PREFIX}{_name('collection', collection.lower())}.delta:{tenant}"


def owners_key(tenant: str) -> str:
    """`secretbot:inv:owners:<tenant id>`: application object id → its owners and when they were read."""
    return f"{INVENTORY_PREFIX}owners:{tenant}"
