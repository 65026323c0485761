"""Which Graph host a replica talks to, the token scope that host accepts, and how many requests it
may have open there. Kept apart from the msgraph-sdk client so the aiohttp path never imports the SDK."""

from __future__ import annotations

from bot.settings import DEFAULT_GRAPH_BASE_URL, DEFAULT_GRAPH_MAX_IN_FLIGHT

__all__ = ["DEFAULT_GRAPH_BASE_URL", "MAX_IN_FLIGHT", "scope_origin"]

# A small pool that keeps every connection it opens. httpx's defaults (100 connections, 20 kept
# alive) closed each connection that fell idle while more than 20 were open, so in a burst nearly
# every $batch opened a new one: a TLS handshake each against graph.microsoft.com (the fake Graph
# saw ~400 connections for ~400 requests). Keeping 100 alive instead made it worse: httpcore's pool
# bookkeeping is quadratic in its connections and in its queue and runs on every request, and a
# burst of 200 Slack pastes cost ~40-55 instead of ~20 ms of CPU each. GraphDirectory queues the
# batches beyond MAX_IN_FLIGHT in front of the pool, where waiting is cheap. The cap trades CPU
# against throughput when Graph is slow: in the benchmark's burst (docs/benchmarks.md) 20 was best
# at 0.1 s per request but took 13 s at 0.6 s; 50 was best at 0.3-0.6 s but cost 33 ms of CPU per
# paste at 0.1 s; 32 is never far from the best.
MAX_IN_FLIGHT = DEFAULT_GRAPH_MAX_IN_FLIGHT  # SECRETBOT_GRAPH_MAX_IN_FLIGHT changes it per deployment


def scope_origin(root: str) -> str:
    """The origin whose `/.default` scope a token must carry: a national cloud issues tokens only for
    its own Graph (`https://graph.microsoft.us/.default` for US Gov)."""
    from yarl import URL  # here: the snapshot's in-process diagnosis names no host, and yarl is ~10 ms

    url = URL(root)
    if url.host in ("127.0.0.1", "localhost", "::1"):
        return DEFAULT_GRAPH_BASE_URL  # the local fake accepts any token; ask for a normal-looking one
    return f"{url.scheme}://{url.host}"
