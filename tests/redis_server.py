"""A throwaway `redis-server` on a free loopback port, for the state contract tests.

Skips when the binary is missing, unless SECRETBOT_REQUIRE_TOOLS=1 (CI), where that is a failure.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis.asyncio as redis

from bot.state import RedisStateStore
from tests.tools import missing_tool

START_TIMEOUT = 10.0


def require_redis_server() -> str:
    """Path of `redis-server`, or skip (fail under SECRETBOT_REQUIRE_TOOLS=1) when it is not installed."""
    path = shutil.which("redis-server")
    if path:
        return path
    missing_tool("redis-server is not on PATH (apt-get install redis-server): real-Redis tests cannot run")


def free_port() -> int:
    """A loopback port nobody listens on right now (also a reliable 'Redis is down' address)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RedisServer:
    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    """Start redis-server without persistence in a temp dir; stop it on exit (or earlier via `stop()`)."""
    binary = require_redis_server()
    with tempfile.TemporaryDirectory(prefix="secretbot-redis-") as tmp:
        port = free_port()
        log = Path(tmp, "redis.log")
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--dir", tmp, "--logfile", str(log)]
        server = RedisServer(f"redis://127.0.0.1:{port}/0", subprocess.Popen(args, stdout=subprocess.DEVNULL))
        try:
            _wait_until_ready(server.process, port, log)
            yield server
        finally:
            server.stop()


def _wait_until_ready(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            pytest.fail(f"redis-server exited with {process.returncode}:\n{output}")
        if _answers_ping(port):
            return
        time.sleep(0.05)
    pytest.fail(f"redis-server did not answer PING on 127.0.0.1:{port} within {START_TIMEOUT:g} s")


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class Backend:
    """One Redis (fake or real) that hands out independent clients, as separate replicas would have."""

    name: str
    new_client: Callable[[], redis.Redis]
    clients: list[redis.Redis] = field(default_factory=list)

    def client(self) -> redis.Redis:
        client = self.new_client()
        self.clients.append(client)
        return client

    def store(self) -> RedisStateStore:
        return RedisStateStore(self.client())

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()
