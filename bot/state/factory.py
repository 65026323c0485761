"""Open the state store the settings ask for: Redis at `REDIS_URL`, else an embedded fakeredis."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import fakeredis
import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.state.redact import mask_url, redact
from bot.state.redis_store import RedisStateStore

log = logging.getLogger(__name__)

# A dead or hung Redis must not hold up a chat reply (Slack wants an ack within 3 s): give up on
# connecting or on an answer after about a second, and let callers degrade on StateUnavailable.
SOCKET_CONNECT_TIMEOUT = 1.0
SOCKET_TIMEOUT = 1.0

# Retry once, at once, only for a dropped connection (a pooled socket the server or a load balancer
# closed while idle). Timeouts are not retried: that would double the wait on a dead Redis.
# (redis-py's default is 10 retries with back-off, far too slow for a chat reply.)
RETRY = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))

# Check a connection idle for longer than this before reuse, so an idle drop costs a PING, not an error.
HEALTH_CHECK_INTERVAL = 30


@asynccontextmanager
async def open_state(redis_url: str | None) -> AsyncIterator[RedisStateStore]:
    """A `StateStore` for the app's lifetime; the client is closed on exit.

    Raises ValueError (message without the password) when `redis_url` is not a Redis URL. A Redis
    that does not answer yet is only logged: the store raises StateUnavailable per call until it does.
    """
    if redis_url:
        client = redis_client(redis_url)
        log.info("state: Redis at %s", mask_url(redis_url))
    else:
        client = _embedded()
    store = RedisStateStore(client)
    try:
        if redis_url and not await store.ping():
            log.warning(
                "state: Redis at %s is not answering; de-duplication degrades until it does", mask_url(redis_url)
            )
        yield store
    finally:
        await client.aclose()


def _embedded() -> redis.Redis:
    log.info("state: in memory (embedded fakeredis), not shared between replicas and lost on restart; set REDIS_URL")
    return fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())  # own server: no sharing by host/port


def redis_client(url: str) -> redis.Redis:
    """A client for `url` with the bot's short timeouts and single retry (not connected yet)."""
    try:
        client = redis.from_url(
            url,
            socket_connect_timeout=SOCKET_CONNECT_TIMEOUT,
            socket_timeout=SOCKET_TIMEOUT,
            retry=RETRY,
            health_check_interval=HEALTH_CHECK_INTERVAL,
        )
    except ValueError as exc:  # bad scheme, port or db; the message must not echo the password
        raise ValueError(f"REDIS_URL {mask_url(url)} is not usable: {redact(exc)}") from None
    return client
