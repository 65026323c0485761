"""Every Redis key and TTL of secretbot, in one place, each with why it exists and why that TTL.

Everything lives under `secretbot:` so the bot can share a Redis with other applications.
A key is `secretbot:<area>:<name part>:<free-form id>`; the name parts (claim kinds, platforms) are
checked to hold no `:` and the free-form id always comes last, so two different inputs never build
the same key.
"""

from __future__ import annotations

import hashlib
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
# a busy workspace keeps in Redis (about half a kB per answer, compressed: bot.state.questions).
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


# --- the job queue (bot/jobs) ---------------------------------------------------------------------

# SAQ keeps its own keys under `saq:<queue name>:` and `saq:job:<queue name>:` (the library's layout,
# which its Lua scripts and pub/sub channels depend on): the queue name carries our prefix instead.
QUEUE_NAME = "secretbot"

# A finished job's record (status, error type, timings) is kept this long for /metrics and for
# someone looking at the queue after an incident; its payload holds no secret value (redacted facts,
# ids and Slack response URLs, which Slack itself expires after 30 minutes).
JOB_RECORD_TTL = timedelta(hours=1)

# A running job touches its record this often; the sweep gives a job up as abandoned (its worker was
# killed) after JOB_HEARTBEAT without a touch, and runs it again. Three missed beats, not one: a
# worker busy with CPU work for a moment must not lose its jobs.
JOB_HEARTBEAT_EVERY = timedelta(seconds=3)
JOB_HEARTBEAT = timedelta(seconds=10)

# How often each worker looks for abandoned jobs (the sweep runs on one worker at a time under a
# lock). With JOB_HEARTBEAT this bounds how late a killed worker's answer is: about 20 s (heartbeat,
# up to one sweep period, and the sweep's 5 s wait for the dead worker to confirm the abort).
JOB_SWEEP_EVERY = timedelta(seconds=5)

# Attempts per job: the first run, a run after a crash or a failure, and one more. A paste that fails
# three times is not going to be answered by a fourth attempt; the person gets the apology instead.
JOB_ATTEMPTS = 3

# The longest an answer may take (Graph's own timeouts and retries are shorter); beyond it the job is
# cancelled and retried.
JOB_TIMEOUT = timedelta(minutes=2)

# The expiry scan's own limit: a first full sync of a large tenant through a slow Graph (100,000 apps
# at 100 ms a request) takes minutes, not seconds; a run still going after this is cancelled and
# tried again, and its claimed warnings are posted by that next attempt (bot.warnings_post).
SCAN_TIMEOUT = timedelta(minutes=30)


def _job_key(*parts: str) -> str:
    return ":".join(parts)


def answer_job_key(platform: str, message_id: str) -> str:
    """`answer:<platform>:<message id>`: one answer per chat message, however often it is enqueued
    (Slack retries, two replicas receiving the same delivery)."""
    return _job_key("answer", _name("platform", platform), message_id)


def action_job_key(platform: str, message_id: str, verb: str, item: str) -> str:
    """`action:<platform>:<verb>:<digest>`: a double click or a retried delivery of the same button on
    the same message is one job while the first is queued or running. Two free-form ids (the button's
    value and the message's id) are hashed together, so no pair can build another pair's key."""
    digest = hashlib.sha256(f"{item}\0{message_id}".encode()).hexdigest()[:32]
    return _job_key("action", _name("platform", platform), _name("verb", verb), digest)


# --- expiry warnings -------------------------------------------------------------------------------
# Credential keys are `<object id>.<key id>` (lower-case GUIDs: checked to hold no `:`); channel ids
# come last because Teams conversation ids hold `:` and `;`.

# `warned:<platform>:<threshold>:<credential>:<channel>` = 1, taken with SET NX: the one replica (or
# scan) that sets it posts that threshold's warning to that channel; everyone else skips it. 400 days:
# longer than any credential stays at one threshold except 0 (expired), where it means an expired
# credential nobody removes is warned again about once a year, a reminder rather than a duplicate.
WARNED_PREFIX = f"{PREFIX}warned:"
WARNED_TTL = timedelta(days=400)

# `ack:<platform>:<threshold>:<credential>:<channel>` = JSON {by, at}: Acknowledge on a card. A
# warning claim that was lost (flushed Redis) must still not warn again, so it lives as long as one.
ACK_PREFIX = f"{PREFIX}ack:"
ACK_TTL = WARNED_TTL

# `snooze:<platform>:<credential>:<channel>` = JSON {until, by, at}: no warning before `until`, then
# one reminder, which deletes it. It outlives `until` by SNOOZE_GRACE so a scan that runs a few days
# late (an outage, a paused cron) still sees that a reminder is due.
SNOOZE_PREFIX = f"{PREFIX}snooze:"
SNOOZE_GRACE = timedelta(days=30)

# `digest:<id>` = JSON digest (rows, owners' chat ids, who acknowledged or snoozed): what the buttons
# of a posted warning act on and what its card is drawn again from. 45 days: past the longest gap
# between two default thresholds (16 days) with room for a holiday; a card older than that gets a
# "too old" answer and the next scan's digest carries its credentials anyway.
DIGEST_PREFIX = f"{PREFIX}digest:"
DIGEST_TTL = timedelta(days=45)

# `digest-msg:<id>` = JSON {platform, channel, message_id}: where that digest was posted, so a later
# scan can update the card in place. Lives as long as the digest it points at.
DIGEST_MESSAGE_PREFIX = f"{PREFIX}digest-msg:"

# `digest-rotations:<id>` = hash {request id: JSON {app, by, at}}: rotations requested from that
# warning, which its card points at. Apart from `digest:<id>` so that saving the digest again (a scan,
# a button) never loses one; its TTL follows the digest's.
DIGEST_ROTATIONS_PREFIX = f"{PREFIX}digest-rotations:"

# `warnings-of:<credential>` = set of digest ids that show that credential: the cards to update when
# a scan sees it removed, renewed or replaced. Refreshed to DIGEST_TTL on every new digest.
WARNINGS_OF_PREFIX = f"{PREFIX}warnings-of:"

# `watch:<platform>:<channel>` = hash {matcher: JSON {thresholds, by, at}}: the channel's `watch`
# subscriptions. No TTL: a subscription lasts until `unwatch`.
WATCH_PREFIX = f"{PREFIX}watch:"
# `watchers` = set of `<platform>:<channel>` with subscriptions, so a scan reads them all without
# SCAN/KEYS over a shared Redis. No TTL, like the subscriptions.
WATCHERS_KEY = f"{PREFIX}watchers"

# `open-digests` = set of digest ids whose cards may still need an update in place: each scan reads
# their rows as "what was warned" and updates the cards whose credentials were removed, renewed or
# replaced since. A member leaves when its card is all resolved or its digest expired (DIGEST_TTL);
# no TTL on the set itself, which every scan prunes.
OPEN_DIGESTS_KEY = f"{PREFIX}open-digests"

# `pending-digests` = sorted set of digest ids claimed and saved but not yet posted, scored by when
# (Unix time): a run that dies between the claim and the post leaves its digests here. The queue's
# next attempt posts its own at once (their ids are in the job's notes); a digest left longer than
# PENDING_DIGEST_LEASE (a `secretbot scan --post` killed mid-run, a run out of attempts) is taken
# over by the next scan, whoever runs it. The lease is well beyond a run's SCAN_TIMEOUT, so a live
# run's digests are never taken from under it. No TTL: posting or giving a digest up removes it.
PENDING_DIGESTS_KEY = f"{PREFIX}pending-digests"
PENDING_DIGEST_LEASE = timedelta(hours=2)

# `scan-summary` = JSON {finished_at, seconds, credentials: [[state, threshold, count], ...]} of the last
# successful scan: every process's /metrics reports it (a worker runs the scan, the web tier is
# scraped). No TTL: "the last scan was long ago" is exactly what an alert on it wants to see.
SCAN_SUMMARY_KEY = f"{PREFIX}scan-summary"

# `unreachable:<platform>:<channel>` = JSON {error, since}: the platform refused a digest for this
# channel (Slack: not_in_channel, channel_not_found, is_archived). Set with NX, so the defaults are told
# once per channel; it expires so that a channel still broken a week later is mentioned again, and
# `watching` and the scan report name it meanwhile. Deleted when a post there succeeds.
UNREACHABLE_PREFIX = f"{PREFIX}unreachable:"
UNREACHABLE_TTL = timedelta(days=7)

# `slack-user:<mail or UPN>` = the Slack user id users.lookupByEmail gave, or "" for nobody: owners are
# mentioned in every digest, and one lookup per owner per day keeps far inside Slack's rate limit
# while a new Slack account is picked up by the next day's scan.
SLACK_USER_PREFIX = f"{PREFIX}slack-user:"
SLACK_USER_TTL = timedelta(days=1)


def _credential(key: str) -> str:
    return _name("credential key", key)


def warned_key(platform: str, threshold: int, credential: str, channel: str) -> str:
    return f"{WARNED_PREFIX}{_name('platform', platform)}:{int(threshold)}:{_credential(credential)}:{channel}"


def ack_key(platform: str, threshold: int, credential: str, channel: str) -> str:
    return f"{ACK_PREFIX}{_name('platform', platform)}:{int(threshold)}:{_credential(credential)}:{channel}"


def snooze_key(platform: str, credential: str, channel: str) -> str:
    return f"{SNOOZE_PREFIX}{_name('platform', platform)}:{_credential(credential)}:{channel}"


def digest_key(digest_id: str) -> str:
    return f"{DIGEST_PREFIX}{digest_id}"


def digest_rotations_key(digest_id: str) -> str:
    return f"{DIGEST_ROTATIONS_PREFIX}{digest_id}"


def digest_message_key(digest_id: str) -> str:
    return f"{DIGEST_MESSAGE_PREFIX}{digest_id}"


def warnings_of_key(credential: str) -> str:
    return f"{WARNINGS_OF_PREFIX}{_credential(credential)}"


def unreachable_key(platform: str, channel: str) -> str:
    return f"{UNREACHABLE_PREFIX}{_name('platform', platform)}:{channel}"


def watch_key(platform: str, channel: str) -> str:
    return f"{WATCH_PREFIX}{_name('platform', platform)}:{channel}"


def slack_user_key(address: str) -> str:
    return f"{SLACK_USER_PREFIX}{address.lower()}"


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
# named in `secretbot scan`'s report, while a daily report of a large tenant reads a third of its
# owners, not all, each day. Warnings use WARNING_OWNERS_MAX_AGE below.
# The hash goes with the inventory's TTL.
OWNERS_MAX_AGE = timedelta(days=3)

# The scheduled scan reads owners only for the apps it warns about (a few a day, thanks to the due
# index), so it can afford to read them again once a day old: an owner who left or joined is named
# correctly on the next warning, though the app itself did not change. (`secretbot scan` keeps the
# 3 days above: it names the owners of every app in its report.)
WARNING_OWNERS_MAX_AGE = timedelta(days=1)


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


# Application object id by app id (a hash), kept with the applications' inventory: a service
# principal's owners are its app registration's, and the scheduled scan must find that registration
# for a few service principals without reading every application. App ids never change; a deleted
# app's field stays until the next full sync, and every lookup checks the inventory still has it.
def app_ids_key(tenant: str) -> str:
    """`secretbot:inv:app-ids:<tenant id>`: app id → application object id."""
    return f"{INVENTORY_PREFIX}app-ids:{tenant}"


def app_ids_staging_key(tenant: str) -> str:
    return f"{INVENTORY_PREFIX}app-ids.staging:{tenant}"


# The due index: a sorted set per tenant, member `<collection>:<object id>`, score the moment (Unix
# seconds) at which one of the object's credentials next crosses a threshold or expires, so the
# scheduled scan judges only the objects whose moment has passed instead of the whole tenant. A delta
# round marks every object it changed with a negative score (minus the sync's time: always due, and
# told apart from one mark to the next), so the next scan judges it even if the run that synced it
# died before judging. No TTL of its own: a full sync deletes it with the inventory it indexes.
def due_key(tenant: str) -> str:
    """`secretbot:inv:due:<tenant id>`: object → when it must be judged again."""
    return f"{INVENTORY_PREFIX}due:{tenant}"


# What the due index was computed for (the thresholds and destinations of the routes file and the
# `watch` subscriptions): when they change, a new threshold or channel may already be due for
# objects the index would not show until their next moment, so the scan judges everything once and
# computes the index again. Deleted with the index by a full sync; the inventory's TTL otherwise.
def due_plan_key(tenant: str) -> str:
    """`secretbot:inv:due-plan:<tenant id>`: a digest of the plan the due index was built for."""
    return f"{INVENTORY_PREFIX}due-plan:{tenant}"


# Objects a scan must judge again although none of their credentials crossed anything: a snoozed
# credential's object at the end of the snooze (member `<object id>@<until>`, score `until`: one
# member per moment, so two channels' snoozes give two reminders), and one whose warning could not be
# posted and was given back (member `<object id>`, score minus the moment it was given back: always
# due). Kept by the warning ledger, which knows credentials but not tenants; no TTL: every scan
# removes what it judged.
RECHECK_KEY = f"{PREFIX}expiry:recheck"


# --- rotations (handlers/rotation.py) ----------------------------------------------------------------

# `rotation:<request id>` = JSON rotation record (bot.rotation_types): its state, who asked and who
# approved, the new secret's key id, hint and Key Vault version (never its value), and the audit
# trail of every transition. Changed only by compare-and-set (WATCH/MULTI), so 20 approve clicks on
# any number of replicas make one approval. 400 days: longer than the longest secret lifetime we add
# (180 days by default, at most what the tenant's policy allows) plus the retire grace, so the audit
# trail of a secret outlives the secret itself.
ROTATION_PREFIX = f"{PREFIX}rotation:"
ROTATION_TTL = timedelta(days=400)

# `rotations` = sorted set of request ids by request time, so `secretbot rotations` lists them without
# SCAN/KEYS over a shared Redis. Ids whose record expired are dropped when listed. No TTL.
ROTATIONS_INDEX_KEY = f"{PREFIX}rotations"


# `rotation-deadlines` = sorted set of request ids by the moment their approval window closes
# (`expires_at`), so the expiry sweep (handlers/rotation.py `expire_overdue`, every minute:
# bot.app.ROTATION_EXPIRY_CRON) reads only the requests that are due and never SCANs the records. An
# id leaves the set once the sweep has looked at it (expired it, or found it decided in time). No TTL:
# a member lives at most the approval TTL plus one sweep period.
ROTATION_DEADLINES_KEY = f"{PREFIX}rotation-deadlines"
# How many due requests one sweep expires; the rest wait a minute for the next tick.
ROTATION_EXPIRY_BATCH = 200


def rotation_key(rotation_id: str) -> str:
    """`secretbot:rotation:<id>`: the id is ours (random hex), checked anyway."""
    return f"{ROTATION_PREFIX}{_name('rotation id', rotation_id)}"


def rotation_job_key(rotation_id: str, phase: str) -> str:
    """`rotation:<phase>:<id>`: one job per rotation and phase ("run": add, store, prove; "prove-<n>":
    the token request after n that were not accepted yet; "retire"),
    however often an approval is clicked. A phase of its own for retire because a finished job's
    record keeps its key for JOB_RECORD_TTL."""
    return _job_key("rotation", _name("phase", phase), _name("rotation id", rotation_id))


# A rotation job's run limit, instead of JOB_TIMEOUT: one run adds, stores and makes the first token
# request, and the worst case of that is longer than an answer's. addPassword at most 4 tries of up to
# 30 s (the Graph client's timeout) with up to 3 Retry-After waits of at most 30 s (handlers/rotation.py
# ADD_ATTEMPTS, MAX_THROTTLE_WAIT): 210 s; the policy and leftover reads before it, up to 30 s each;
# Key Vault's write; one token request of at most 20 s (bot/graph/proof.py ATTEMPT_TIMEOUT). About
# 5.5 minutes in the worst case, so 6. The proof does not count against it: when the new secret is not
# accepted yet, the run ends and the job is queued again after the prover's next pause (2, 4, 8, 16,
# then 20 s; given up once the pauses would pass proof.DEADLINE, 180 s, i.e. after 12 requests). So no
# worker slot waits out the propagation, and a run cut off by this limit resumes from where the
# record stands.
ROTATION_JOB_TIMEOUT = timedelta(minutes=6)


# `rotation-lease:<request id>` = the token of the worker advancing that rotation. Two runs of one
# rotation's job at once (a sweep that gave up a slow but living worker, a duplicate delivery) would
# each add a secret; the lease makes them take turns. The holder renews it every ROTATION_LEASE_RENEW;
# a killed worker's lease lapses after ROTATION_LEASE, and the run that replaces it waits that long at
# most (well inside JOB_TIMEOUT). Three renewals per lease, like the job heartbeat, so a busy moment
# does not lose it.
ROTATION_LEASE_PREFIX = f"{PREFIX}rotation-lease:"
ROTATION_LEASE = timedelta(seconds=15)
ROTATION_LEASE_RENEW = timedelta(seconds=5)


def rotation_lease_key(rotation_id: str) -> str:
    return f"{ROTATION_LEASE_PREFIX}{_name('rotation id', rotation_id)}"


def rotation_card_job_key(platform: str, rotation_id: str, step: int, message_id: str) -> str:
    """`rotation-card:<platform>:<id>:<step>:<message id>`: one update per step of a rotation (the
    history's length) and message showing its card, however often the step's transition is retried."""
    return _job_key(
        "rotation-card", _name("platform", platform), _name("rotation id", rotation_id), str(int(step)), message_id
    )


def rotation_copy_job_key(platform: str, rotation_id: str) -> str:
    """`rotation-copy:<platform>:<id>`: a request's copy in the approvers' channel is posted once."""
    return _job_key("rotation-copy", _name("platform", platform), _name("rotation id", rotation_id))
