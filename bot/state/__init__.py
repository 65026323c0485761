"""Shared state on Redis (infra layer): the `StateStore` port's implementation and its factory.

Key names and TTLs live in `bot.state.keys`, nowhere else.
"""

from bot.state.factory import RedisConnections, open_redis, open_state, redis_client
from bot.state.redact import mask_url
from bot.state.redis_store import RedisStateStore

__all__ = ["RedisConnections", "RedisStateStore", "mask_url", "open_redis", "open_state", "redis_client"]
