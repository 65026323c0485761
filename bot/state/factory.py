"""Open the state store the settings ask for: Redis at `REDIS_URL`, else an embedded fakeredis."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

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

# The pool: redis-py's default asyncio ConnectionPool fails a command at once (MaxConnectionsError)
# when 100 are in flight, so a burst of Slack events lost de-duplication exactly when retries are
# likeliest. A blocking pool makes the burst queue for a connection instead. A claim holds its
# connection for one round trip (about a millisecond), so 50 connections serve thousands of claims a
# second, and every replica's pool counts against the Redis server's client limit (256 on the
# smallest Azure Cache for Redis tier).
MAX_CONNECTIONS = 50
# Waiting longer for a free connection than this means Redis is slow or hung, not busy: give up with
# StateUnavailable and degrade, keeping the wait well inside Slack's 3 s ack (the claim runs before
# the ack) on top of SOCKET_TIMEOUT.
POOL_TIMEOUT = 0.5


class BlockingPool(redis.BlockingConnectionPool):
    """redis-py's blocking pool with the bot's size and wait, for Redis and the embedded fakeredis alike."""

    def __init__(self, *, max_connections: int | None = None, timeout: float | None = POOL_TIMEOUT, **kwargs: Any):
        # fakeredis passes max_connections=None when it is not given; a URL's ?max_connections= wins.
        super().__init__(max_connections=max_connections or MAX_CONNECTIONS, timeout=timeout, **kwargs)


@dataclass(frozen=True)
class RedisConnections:
    """The two clients of one Redis: the state store's, with short timeouts for the chat path, and
    the job queue's, whose reads block on purpose (a worker waits for work) and so must not time out."""

    state: RedisStateStore
    queue: redis.Redis
    shared: bool  # False for the embedded fakeredis: only this process can see it


@asynccontextmanager
async def open_redis(redis_url: str | None) -> AsyncIterator[RedisConnections]:
    """Both clients for the app's lifetime, closed on exit.

    Raises ValueError (message without the password) when `redis_url` is not a Redis URL. A Redis
    that does not answer yet is only logged: the store raises StateUnavailable per call until it does.
    """
    if redis_url:
        client, queue = redis_client(redis_url), _queue_client(redis_url)
        log.info("state: Redis at %s", mask_url(redis_url))
    else:
        log.info("state: in memory (embedded fakeredis), not shared between replicas, lost on restart; set REDIS_URL")
        # Own server: no sharing by host/port. The same blocking pool as with Redis, so a burst behaves alike.
        server = fakeredis.FakeServer()
        client = fakeredis.FakeAsyncRedis(server=server, connection_pool_class=BlockingPool)
        queue = fakeredis.FakeAsyncRedis(server=server)
    store = RedisStateStore(client)
    try:
        if redis_url and not await store.ping():
            log.warning(
                "state: Redis at %s is not answering; de-duplication degrades until it does", mask_url(redis_url)
            )
        yield RedisConnections(store, queue, shared=bool(redis_url))
    finally:
        await queue.aclose()
        await client.aclose()


@asynccontextmanager
async def open_state(redis_url: str | None) -> AsyncIterator[RedisStateStore]:
    """The state store alone (see `open_redis`)."""
    async with open_redis(redis_url) as connections:
        yield connections.state


def _queue_client(url: str) -> redis.Redis:
    # No socket timeout: a worker's dequeue blocks for up to its own timeout, and the queue's pub/sub
    # listener waits for as long as nothing happens. TCP keepalive notices a dead peer instead.
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=SOCKET_CONNECT_TIMEOUT,
        socket_keepalive=True,
        retry=RETRY,
        health_check_interval=HEALTH_CHECK_INTERVAL,
    )


def redis_client(url: str) -> redis.Redis:
    """A client for `url` with the bot's blocking pool, short timeouts and single retry (not connected yet)."""
    try:
        pool = BlockingPool.from_url(
            url,
            socket_connect_timeout=SOCKET_CONNECT_TIMEOUT,
            socket_timeout=SOCKET_TIMEOUT,
            retry=RETRY,
            health_check_interval=HEALTH_CHECK_INTERVAL,
        )
    except ValueError as exc:  # bad scheme, port or db; the message must not echo the password
        raise ValueError(f"REDIS_URL {mask_url(url)} is not usable: {redact(exc)}") from None
    return redis.Redis.from_pool(pool)  # the client owns the pool: aclose() closes its connections
