"""A rotation use case over the real SDKs against the fakes: msgraph-sdk to the fake Graph,
azure-identity to the fake token endpoint, azure-keyvault-secrets to the fake Key Vault, and the
rotation store on fakeredis or a real redis-server. Shared by the rotation tests and the worker
process the crash tests start (`python -m tests.rotation_setup`)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import fakeredis
import redis.asyncio as redis

from bot.domain import GraphMode
from bot.fakegraph import FakeEntra, FakeGraph, FakeKeyVault, LocalTokenCredential, load_snapshot, sample_snapshot_path
from bot.fakegraph.credential import app_token
from bot.graph import GraphDirectory, GraphHttp, build_graph_client
from bot.graph.identity import TokenIdentity
from bot.graph.proof import SecretProver
from bot.graph.writes import GraphWrites
from bot.state.rotations import RedisRotationStore
from bot.vault import KeyVaultSecrets
from handlers.inbound import Actor
from handlers.rotation import RotationPolicy, Rotations

TENANT = "6f1c3a52-8d4e-4b7a-9c21-3e5f7a9b0c14"
PAYMENTS_APP = "dc36fc90-2248-4d70-aca4-a1a9f5b19f71"  # payments-api: ci-2025 and ci-2026
PAYMENTS_OBJECT = "ec7ac8ad-1b2b-406b-aae1-2c972399d29d"
NIGHTLY_APP = "0db317d9-4c8e-4fa3-969a-73bf4c83cf3b"  # nightly-export: a 90-day lifetime policy
NIGHTLY_OBJECT = "8c0a70a7-a845-47f9-953a-5154281fa6f5"
BUILD_AGENT_APP = "8c3f846c-c6a9-42d3-83f8-4c485e5c4176"  # not listed, not tagged
APPROVERS_GROUP = "5e8c1a47-2b9d-4f36-a0e7-c4d2f9b6e813"  # contains security-team (Lena) and Priya
LENA = "3b7e2c91-4f6a-4d8b-9e15-72c0a8f4d3e6"  # in APPROVERS_GROUP through security-team
JONAS = "a15f09c8-58b8-413f-8ef5-b163cef350e7"  # payments team lead, not an approver

REQUESTER = Actor("slack", "U0JONAS", "Jonas Berg", email="jonas.berg@northwind-ops.example")
APPROVER_TEAMS = Actor("teams", "29:lena", "Lena Fischer", aad_object_id=LENA)
APPROVER_SLACK = Actor("slack", "U0PRIYA", "Priya Raman", email="priya.raman@northwind-ops.example")
STRANGER = Actor("slack", "U0SOMEONE", "Someone Else", email="nobody@northwind-ops.example")
POLICY = RotationPolicy(approvers=(f"group:{APPROVERS_GROUP}",), apps=(PAYMENTS_APP, NIGHTLY_APP))


@dataclass
class Rig:
    graph: FakeGraph
    entra: FakeEntra
    vault: FakeKeyVault
    rotations: Rotations
    client: redis.Redis
    queued: list[tuple[str, str]] = field(default_factory=list)
    clock: list[datetime] = field(default_factory=lambda: [datetime.now(UTC)])

    def posts(self, operation: str = "addPassword") -> int:
        return sum(1 for r in self.graph.requests if r.method == "POST" and r.path.endswith(operation))

    async def keys_marked(self, rotation_id: str) -> list[str]:
        present = await self.rotations.writer.password_key_ids(self.rotations_object(rotation_id))
        return [k for k, name in present.items() if name == f"secretbot-rotation-{rotation_id}"]

    def rotations_object(self, _rotation_id: str) -> str:
        return PAYMENTS_OBJECT

    def later(self, delta: timedelta) -> None:
        self.clock[0] = self.clock[0] + delta


async def _no_wait(_seconds: float) -> None:
    await asyncio.sleep(0)


def vault_secrets(vault: FakeKeyVault) -> KeyVaultSecrets:
    return KeyVaultSecrets(
        vault.url, LocalTokenCredential(), verify_challenge_resource=False, connection_verify=vault.cert_path
    )


@asynccontextmanager
async def rig(
    *,
    redis_url: str | None = None,
    policy: RotationPolicy = POLICY,
    prover_deadline: float = 20.0,
    graph_timeout: float = 30.0,
    enqueue: Callable[[str, str], Awaitable[bool]] | None = None,
    graph: FakeGraph | None = None,
    entra: FakeEntra | None = None,
    vault: FakeKeyVault | None = None,
    bot_token: str | None = None,
) -> AsyncIterator[Rig]:
    """`bot_token` is the bot's own access token (default: the sample tenant's bot, an owner of
    payments-api and nightly-export, with Application.ReadWrite.OwnedBy)."""
    async with AsyncExitStack() as stack:
        if graph is None:
            graph = await stack.enter_async_context(FakeGraph(load_snapshot(sample_snapshot_path())))
        if entra is None:
            entra = await stack.enter_async_context(FakeEntra(graph, propagation=0.0))
        if vault is None:
            vault = await stack.enter_async_context(FakeKeyVault())
        http = await stack.enter_async_context(GraphHttp(graph.base_url, LocalTokenCredential()))
        secrets = vault_secrets(vault)
        stack.push_async_callback(secrets.close)
        client: redis.Redis = redis.Redis.from_url(redis_url) if redis_url else fakeredis.FakeAsyncRedis()
        stack.push_async_callback(client.aclose)
        bot_credential = LocalTokenCredential(bot_token or app_token())
        writes = GraphWrites(build_graph_client(graph.base_url, bot_credential, timeout=graph_timeout))
        prover = SecretProver(
            entra.authority,
            connection_verify=entra.cert_path,
            deadline=prover_deadline,
            first_pause=0.1,
            max_pause=0.5,
        )
        queued: list[tuple[str, str]] = []
        clock = [datetime.now(UTC)]

        async def remember(rotation_id: str, phase: str) -> bool:
            queued.append((rotation_id, phase))
            return True

        rotations = Rotations(
            RedisRotationStore(client),
            writes,
            writes,
            prover,
            secrets,
            GraphDirectory(http, GraphMode.SNAPSHOT),
            enqueue or remember,
            lambda: clock[0],
            policy,
            sleep=_no_wait,
            identity=TokenIdentity(bot_credential, "https://graph.microsoft.com/.default"),
        )
        yield Rig(graph, entra, vault, rotations, client, queued, clock)


# --- a worker process for the crash tests ------------------------------------------------------------


async def _work() -> None:
    """Run rotation jobs against the fakes the test process serves (their addresses in the environment)."""
    from bot.jobs.queue import JobQueue
    from bot.jobs.worker import JobWorker, RunningJob
    from bot.state import open_redis

    env = os.environ
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(GraphHttp(env["ROT_GRAPH"], LocalTokenCredential()))
        secrets = KeyVaultSecrets(
            env["ROT_VAULT"],
            LocalTokenCredential(),
            verify_challenge_resource=False,
            connection_verify=env["ROT_VAULT_CERT"],
        )
        stack.push_async_callback(secrets.close)
        writes = GraphWrites(build_graph_client(env["ROT_GRAPH"], LocalTokenCredential()))
        prover = SecretProver(env["ROT_AUTHORITY"], connection_verify=env["ROT_AUTHORITY_CERT"], first_pause=0.1)
        connections = await stack.enter_async_context(open_redis(env["REDIS_URL"]))
        queue = JobQueue.on(connections)

        async def enqueue(rotation_id: str, phase: str) -> bool:
            from bot.state import keys

            key = keys.rotation_job_key(rotation_id, phase)
            return await queue.enqueue("rotation.advance", key=key, rotation_id=rotation_id)

        rotations = Rotations(
            connections.state.rotations,
            writes,
            writes,
            prover,
            secrets,
            GraphDirectory(http, GraphMode.SNAPSHOT),
            enqueue,
            lambda: datetime.now(UTC),
            POLICY,
        )

        async def advance(_job: RunningJob, *, rotation_id: str) -> None:
            await rotations.advance(rotation_id)

        worker = JobWorker(queue, {"rotation.advance": advance}, concurrency=2, in_process=False)
        print("rotation worker ready", flush=True)
        await worker.run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    asyncio.run(_work())
