"""`WarningStore` on Redis: the once-per-threshold ledger, Acknowledge and Snooze, digests and where
they were posted, `watch` subscriptions and the Slack user cache.

Every decision that several replicas (or scans) could take at once is one atomic Redis command: a
warning is claimed with SET NX, and a snooze's single reminder goes to whoever deletes it first.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import cast

import redis.asyncio as redis
from redis.exceptions import RedisError

from bot.domain import StateUnavailable
from bot.expiry import (
    AppMatcher,
    Destination,
    Digest,
    MatchBy,
    MessageRef,
    Platform,
    RotationPointer,
    ScanSummary,
    Stamp,
    Subscription,
)
from bot.state import digests, keys
from bot.state.redact import error_types, redact

log = logging.getLogger(__name__)


_REMIND = """
if redis.call('DEL', KEYS[1]) == 1 then
  redis.call('SET', KEYS[2], 1, 'EX', ARGV[1])
  return 1
end
return 0
"""

# Forget rechecked objects, each only if its score is still the one the scan read (a snooze or a
# given-back warning since then asks again). ARGV: pairs of object id and score.
_RECHECKED = """
for i = 1, #ARGV, 2 do
  local now = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if now and tonumber(now) == tonumber(ARGV[i + 1]) then redis.call('ZREM', KEYS[1], ARGV[i]) end
end
return 0
"""


# Claim a digest's rows and save the digest of the rows won, in one step, noting it as pending (not
# posted yet). KEYS: the digest, the pending set, then per row its warned key, snooze key and
# warnings-of index. ARGV: the warned TTL, the digest TTL, the digest id, the encoded digest's head
# and tail, the time (pending score), then per row "plain" (claim unless warned) or "over" (a snooze
# that ended: one reminder, for whoever ends it) and the encoded row.
_CLAIM_DIGEST = """
local won, rows = {}, {}
for i = 1, (#KEYS - 2) / 3 do
  local warned, snooze, index = KEYS[3 * i], KEYS[3 * i + 1], KEYS[3 * i + 2]
  local claimed
  if ARGV[5 + 2 * i] == 'plain' then
    claimed = redis.call('SET', warned, 1, 'NX', 'EX', ARGV[1])
  elseif redis.call('DEL', snooze) == 1 then
    claimed = redis.call('SET', warned, 1, 'EX', ARGV[1])
  end
  if claimed then
    table.insert(won, i)
    table.insert(rows, ARGV[6 + 2 * i])
    redis.call('SADD', index, ARGV[3])
    redis.call('EXPIRE', index, ARGV[2])
  end
end
if #won > 0 then
  redis.call('SET', KEYS[1], ARGV[4] .. table.concat(rows, ',') .. ARGV[5], 'EX', ARGV[2])
  redis.call('ZADD', KEYS[2], ARGV[6], ARGV[3])
end
return won
"""

# Take over the pending digests older than the lease: scored afresh, so exactly one caller gets each
# and, should it die too, the next one after another lease. KEYS: the pending set. ARGV: the oldest
# score still leased, the new score.
_TAKE_ABANDONED = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], ARGV[2], id)
end
return ids
"""


class RedisWarningStore:
    """Implements `bot.ports.WarningStore` on a client owned by the caller."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        # Ending a snooze and marking its threshold warned must be one step: a scan that reads between
        # the two sees neither the snooze nor the mark and would warn a second time.
        self._remind = client.register_script(_REMIND)
        self._claim_digest = client.register_script(_CLAIM_DIGEST)
        self._take_abandoned = client.register_script(_TAKE_ABANDONED)
        self._rechecked = client.register_script(_RECHECKED)

    # --- the ledger ------------------------------------------------------------------------------

    async def should_warn(self, destination: Destination, key: str, threshold: int, now: datetime) -> bool:
        [warn] = await self.claim_warnings(destination, [(key, threshold)], now)
        return warn

    async def claim_warnings(self, destination: Destination, items: list[tuple[str, int]], now: datetime) -> list[bool]:
        """`should_warn` for many credentials of one destination in three round trips, not three each."""
        platform, channel = destination.platform.value, destination.channel
        warned = [keys.warned_key(platform, threshold, key, channel) for key, threshold in items]
        acks = [keys.ack_key(platform, threshold, key, channel) for key, threshold in items]
        snoozes = [keys.snooze_key(platform, key, channel) for key, _ in items]
        with unavailable("should_warn"):
            found = await self._client.mget(acks + snoozes) if items else []
            acked, until = found[: len(items)], [_until(raw) for raw in found[len(items) :]]
            # Acknowledged, or snoozed until later: not claimed, so the threshold still warns afterwards.
            plain = [i for i in range(len(items)) if acked[i] is None and until[i] is None]
            over = [i for i in range(len(items)) if acked[i] is None and (u := until[i]) is not None and now >= u]
            async with self._client.pipeline(transaction=False) as pipe:
                for i in plain:
                    pipe.set(warned[i], 1, nx=True, ex=keys.WARNED_TTL)
                for i in over:  # a snooze that is over: one reminder, for whoever ends the snooze
                    await self._remind(
                        keys=[snoozes[i], warned[i]], args=[int(keys.WARNED_TTL.total_seconds())], client=pipe
                    )
                answers = await pipe.execute()
            won = [i for i, answer in zip(plain + over, answers, strict=True) if answer]
        winners = set(won)
        return [i in winners for i in range(len(items))]

    async def claim_digest(self, candidate: Digest, now: datetime) -> Digest | None:
        platform, channel = candidate.destination.platform.value, candidate.destination.channel
        rows = candidate.rows
        acks = [keys.ack_key(platform, row.threshold, row.key, channel) for row in rows]
        snoozes = [keys.snooze_key(platform, row.key, channel) for row in rows]
        head, encoded, tail = digests.encode_digest_parts(candidate)
        with unavailable("claim_digest"):
            found = await self._client.mget(acks + snoozes) if rows else []
            acked, until = found[: len(rows)], [_until(raw) for raw in found[len(rows) :]]
            # Acknowledged, or snoozed until later: not claimed, so the threshold still warns afterwards.
            modes = {
                i: "plain" if u is None else "over"
                for i, u in enumerate(until)
                if acked[i] is None and (u is None or now >= u)
            }
            if not modes:
                return None
            names = [keys.digest_key(candidate.id), keys.PENDING_DIGESTS_KEY]
            args: list[str | int | float] = [
                int(keys.WARNED_TTL.total_seconds()),
                int(keys.DIGEST_TTL.total_seconds()),
                candidate.id,
                head,
                tail,
                now.timestamp(),
            ]
            for i, mode in modes.items():
                row = rows[i]
                names += [keys.warned_key(platform, row.threshold, row.key, channel), snoozes[i]]
                names.append(keys.warnings_of_key(row.key))
                args += [mode, encoded[i]]
            won = await self._claim_digest(keys=names, args=args)
        chosen = list(modes)
        claimed = tuple(rows[chosen[int(n) - 1]] for n in won)
        return replace(candidate, rows=claimed) if claimed else None

    async def release(self, destination: Destination, key: str, threshold: int) -> None:
        platform, channel = destination.platform.value, destination.channel
        with unavailable("release"):
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.delete(keys.warned_key(platform, threshold, key, channel))
                # Judged again by the next scan, though nothing of it crosses anything then.
                pipe.zadd(keys.RECHECK_KEY, {_object_id(key): -time.time()}, lt=True)
                await pipe.execute()

    async def release_digest(self, digest: Digest) -> None:
        platform, channel = digest.destination.platform.value, digest.destination.channel
        names = [keys.warned_key(platform, row.threshold, row.key, channel) for row in digest.rows]
        with unavailable("release_digest"):
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.delete(keys.digest_key(digest.id), *names)
                pipe.zrem(keys.PENDING_DIGESTS_KEY, digest.id)
                if digest.rows:  # judged again by the next scan, though nothing of them crosses anything then
                    again = -time.time()
                    pipe.zadd(keys.RECHECK_KEY, {_object_id(row.key): again for row in digest.rows}, lt=True)
                await pipe.execute()

    async def acknowledge(self, destination: Destination, items: list[tuple[str, int]], stamp: Stamp) -> None:
        platform, channel = destination.platform.value, destination.channel
        value = json.dumps(digests.encode_stamp(stamp))
        with unavailable("acknowledge"):
            async with self._client.pipeline(transaction=True) as pipe:
                for key, threshold in items:
                    pipe.set(keys.ack_key(platform, threshold, key, channel), value, ex=keys.ACK_TTL)
                    pipe.delete(keys.snooze_key(platform, key, channel))  # acknowledged: no reminder either
                await pipe.execute()

    async def acknowledged(self, destination: Destination, key: str, threshold: int) -> Stamp | None:
        name = keys.ack_key(destination.platform.value, threshold, key, destination.channel)
        with unavailable("acknowledged"):
            raw = await self._client.get(name)
        try:
            return digests.decode_stamp(json.loads(raw)) if raw else None
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring %s: unreadable", name)
            return None

    async def snooze(self, destination: Destination, keys_: list[str], until: datetime, stamp: Stamp) -> None:
        platform, channel = destination.platform.value, destination.channel
        value = json.dumps({"until": until.isoformat(), "stamp": digests.encode_stamp(stamp)})
        ttl = max(until - stamp.at, timedelta(0)) + keys.SNOOZE_GRACE
        with unavailable("snooze"):
            async with self._client.pipeline(transaction=True) as pipe:
                for key in keys_:
                    pipe.set(keys.snooze_key(platform, key, channel), value, ex=ttl)
                if keys_:  # the reminder is due at `until`, whether or not anything crosses then
                    at = math.ceil(until.timestamp())  # one member per moment: two snoozes, two reminders
                    pipe.zadd(keys.RECHECK_KEY, {f"{_object_id(key)}@{at}": at for key in keys_})
                await pipe.execute()

    async def rechecks(self, now: datetime) -> list[tuple[str, float]]:
        """Members are object ids, or `<object id>@<moment>` for a snooze's reminder (see keys.RECHECK_KEY)."""
        with unavailable("rechecks"):
            found = await self._client.zrangebyscore(keys.RECHECK_KEY, "-inf", now.timestamp(), withscores=True)
        return [(_text(member), float(score)) for member, score in cast(list[tuple[bytes, float]], found)]

    async def rechecked(self, items: list[tuple[str, float]]) -> None:
        for start in range(0, len(items), 1000):
            args = [part for object_id, score in items[start : start + 1000] for part in (object_id, repr(score))]
            with unavailable("rechecked"):
                await self._rechecked(keys=[keys.RECHECK_KEY], args=args)

    # --- digests ---------------------------------------------------------------------------------

    async def save_digest(self, digest: Digest) -> None:
        value = digests.encode_digest(digest)
        with unavailable("save_digest"):
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.set(keys.digest_key(digest.id), value, ex=keys.DIGEST_TTL)
                pipe.expire(keys.digest_rotations_key(digest.id), keys.DIGEST_TTL)  # they live as long
                for key in {row.key for row in digest.rows}:
                    pipe.sadd(keys.warnings_of_key(key), digest.id)
                    pipe.expire(keys.warnings_of_key(key), keys.DIGEST_TTL)
                await pipe.execute()

    async def digest(self, digest_id: str) -> Digest | None:
        name = keys.digest_key(digest_id)
        with unavailable("digest"):
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.get(name)
                pipe.hgetall(keys.digest_rotations_key(digest_id))
                raw, pointers = await pipe.execute()
        if raw is None:
            return None
        try:
            digest = digests.decode_digest(raw)
        except ValueError as error:
            log.warning("ignoring %s: %s", name, error)  # another release's format: never crash
            return None
        return replace(digest, rotations=digests.decode_pointers(pointers)) if pointers else digest

    async def point_at_rotation(self, digest_id: str, pointer: RotationPointer) -> None:
        name = keys.digest_rotations_key(digest_id)
        with unavailable("point_at_rotation"):
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.hsetnx(name, pointer.request_id, digests.encode_pointer(pointer))  # a repeat: the first stays
                pipe.expire(name, keys.DIGEST_TTL)
                await pipe.execute()

    async def record_message(self, digest_id: str, message: MessageRef) -> None:
        with unavailable("record_message"):
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.set(keys.digest_message_key(digest_id), digests.encode_message(message), ex=keys.DIGEST_TTL)
                pipe.zrem(keys.PENDING_DIGESTS_KEY, digest_id)
                await pipe.execute()

    async def abandoned_digests(self, now: datetime) -> list[str]:
        leased = (now - keys.PENDING_DIGEST_LEASE).timestamp()
        with unavailable("abandoned_digests"):
            taken = await self._take_abandoned(keys=[keys.PENDING_DIGESTS_KEY], args=[leased, now.timestamp()])
        return [_text(each) for each in taken]

    async def forget_pending(self, digest_id: str) -> None:
        with unavailable("forget_pending"):
            await self._client.zrem(keys.PENDING_DIGESTS_KEY, digest_id)

    async def message(self, digest_id: str) -> MessageRef | None:
        name = keys.digest_message_key(digest_id)
        with unavailable("message"):
            raw = await self._client.get(name)
        try:
            return digests.decode_message(raw) if raw else None
        except ValueError as error:
            log.warning("ignoring %s: %s", name, error)
            return None

    async def digests_showing(self, key: str) -> list[str]:
        with unavailable("digests_showing"):
            members = await self._client.smembers(keys.warnings_of_key(key))
        return sorted(_text(member) for member in members)

    async def open_digests(self) -> list[str]:
        with unavailable("open_digests"):
            members = await self._client.smembers(keys.OPEN_DIGESTS_KEY)
        return sorted(_text(member) for member in members)

    async def mark_open(self, digest_id: str) -> None:
        with unavailable("mark_open"):
            await self._client.sadd(keys.OPEN_DIGESTS_KEY, digest_id)

    async def mark_closed(self, digest_id: str) -> None:
        with unavailable("mark_closed"):
            await self._client.srem(keys.OPEN_DIGESTS_KEY, digest_id)

    # --- subscriptions ---------------------------------------------------------------------------

    async def subscribe(self, subscription: Subscription) -> bool:
        destination = subscription.destination
        value = json.dumps(
            {"thresholds": list(subscription.thresholds), "added": digests.encode_stamp(subscription.added)}
        )
        with unavailable("subscribe"):
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.hset(_watch(destination), _field(subscription.matcher), value)
                pipe.sadd(keys.WATCHERS_KEY, _watcher(destination))
                added, _ = await pipe.execute()
        return bool(added)

    async def unsubscribe(self, destination: Destination, matcher: AppMatcher) -> bool:
        with unavailable("unsubscribe"):
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.hdel(_watch(destination), _field(matcher))
                pipe.hlen(_watch(destination))
                removed, left = await pipe.execute()
            if not left:
                await self._client.srem(keys.WATCHERS_KEY, _watcher(destination))
        return bool(removed)

    async def subscriptions(self, destination: Destination | None = None) -> list[Subscription]:
        with unavailable("subscriptions"):
            if destination is not None:
                destinations = [destination]
            else:
                members = await self._client.smembers(keys.WATCHERS_KEY)
                destinations = sorted(d for d in (_read_watcher(_text(m)) for m in members) if d is not None)
            async with self._client.pipeline(transaction=False) as pipe:
                for each in destinations:
                    pipe.hgetall(_watch(each))
                tables = await pipe.execute()
        found = []
        for each, table in zip(destinations, tables, strict=True):
            for field, raw in sorted(table.items()):
                subscription = _read_subscription(each, _text(field), raw)
                if subscription is not None:
                    found.append(subscription)
        return found

    # --- the last scan, channels that refused posts ----------------------------------------------

    async def save_scan_summary(self, summary: ScanSummary) -> None:
        value = {"finished_at": summary.finished_at, "seconds": summary.seconds, "credentials": summary.credentials}
        with unavailable("save_scan_summary"):
            await self._client.set(keys.SCAN_SUMMARY_KEY, json.dumps(value))

    async def scan_summary(self) -> ScanSummary | None:
        with unavailable("scan_summary"):
            raw = await self._client.get(keys.SCAN_SUMMARY_KEY)
        try:
            data = json.loads(raw) if raw else None
            return None if data is None else _summary(data)
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring %s: unreadable", keys.SCAN_SUMMARY_KEY)
            return None

    async def mark_unreachable(self, destination: Destination, error: str, now: datetime) -> bool:
        value = json.dumps({"error": error, "since": now.isoformat()})
        name = keys.unreachable_key(destination.platform.value, destination.channel)
        with unavailable("mark_unreachable"):
            return bool(await self._client.set(name, value, nx=True, ex=keys.UNREACHABLE_TTL))

    async def unreachable(self, destination: Destination) -> str | None:
        name = keys.unreachable_key(destination.platform.value, destination.channel)
        with unavailable("unreachable"):
            raw = await self._client.get(name)
        try:
            return str(json.loads(raw)["error"]) if raw else None
        except (ValueError, KeyError, TypeError):
            return None

    async def mark_reachable(self, destination: Destination) -> None:
        with unavailable("mark_reachable"):
            await self._client.delete(keys.unreachable_key(destination.platform.value, destination.channel))

    # --- Slack user cache ------------------------------------------------------------------------

    async def slack_user(self, address: str) -> str | None:
        with unavailable("slack_user"):
            raw = await self._client.get(keys.slack_user_key(address))
        return None if raw is None else _text(raw)

    async def save_slack_user(self, address: str, user_id: str) -> None:
        with unavailable("save_slack_user"):
            await self._client.set(keys.slack_user_key(address), user_id, ex=keys.SLACK_USER_TTL)


@contextmanager
def unavailable(operation: str) -> Iterator[None]:
    """Redis unreachable (redis-py's errors, or socket errors escaping it) becomes StateUnavailable,
    as in RedisStateStore, with any credential in the message masked."""
    try:
        yield
    except (RedisError, OSError) as exc:
        raise StateUnavailable(f"state store unavailable ({operation}): {redact(exc)}", error_types(exc)) from exc


def _object_id(key: str) -> str:
    """The object of a credential key (`bot.expiry.credential_key`: `<object id>.<key id>`)."""
    return key.partition(".")[0]


def _watch(destination: Destination) -> str:
    return keys.watch_key(destination.platform.value, destination.channel)


def _watcher(destination: Destination) -> str:
    return f"{destination.platform.value}:{destination.channel}"


def _read_watcher(member: str) -> Destination | None:
    platform, _, channel = member.partition(":")
    try:
        return Destination(Platform(platform), channel) if channel else None
    except ValueError:
        return None


def _field(matcher: AppMatcher) -> str:
    return f"{matcher.by.value}:{matcher.pattern}"


def _read_subscription(destination: Destination, field: str, raw: bytes | str) -> Subscription | None:
    by, _, pattern = field.partition(":")
    try:
        data = json.loads(raw)
        return Subscription(
            destination,
            AppMatcher(MatchBy(by), pattern),
            tuple(int(t) for t in data["thresholds"]),
            digests.decode_stamp(data["added"]),
        )
    except (ValueError, KeyError, TypeError):
        log.warning("ignoring an unreadable subscription in %s", _watch(destination))
        return None


def _until(raw: bytes | str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        return datetime.fromisoformat(json.loads(raw)["until"])
    except (ValueError, KeyError, TypeError):
        return None  # not ours: as if not snoozed, so nothing is left unwarned


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _summary(data: dict[str, object]) -> ScanSummary:
    rows = data["credentials"]
    assert isinstance(rows, list)
    return ScanSummary(
        float(data["finished_at"]),  # type: ignore[arg-type]
        float(data["seconds"]),  # type: ignore[arg-type]
        tuple((str(state), str(threshold), int(count)) for state, threshold, count in rows),
    )
