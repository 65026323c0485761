"""A new secret's value passes through addPassword, the token proof and Key Vault, and appears in no
log line (every logger at DEBUG, azure-core's and httpx's included), no exception message and no
request the fakes recorded; nor can it be pickled into a job payload."""

from __future__ import annotations

import copy
import logging
import pickle
from datetime import UTC, datetime, timedelta

import pytest

from bot.credential_types import GraphWriteError, SecretValue, VaultError
from bot.fakegraph import FakeGraph, LocalTokenCredential, load_snapshot, sample_snapshot_path
from bot.fakegraph.entra import FakeEntra
from bot.fakegraph.keyvault import FakeKeyVault
from bot.graph import build_graph_client
from bot.graph.proof import SecretProver
from bot.graph.writes import GraphWrites
from bot.vault import KeyVaultSecrets
from tests.tenant_edits import PAYMENTS_APP

TENANT = "6f1c3a52-8d4e-4b7a-9c21-3e5f7a9b0c14"
PAYMENTS_OBJECT = "ec7ac8ad-1b2b-406b-aae1-2c972399d29d"


async def test_the_value_never_reaches_a_log_an_error_or_a_recorded_request(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    async with (
        FakeGraph(load_snapshot(sample_snapshot_path())) as graph,
        FakeEntra(graph, propagation=0.3) as entra,
        FakeKeyVault() as vault,
    ):
        writes = GraphWrites(build_graph_client(graph.base_url, LocalTokenCredential()))
        added = await writes.add_password(PAYMENTS_OBJECT, "secretbot-rot-1", datetime.now(UTC) + timedelta(days=30))
        value = added.value.reveal()

        prover = SecretProver(entra.authority, first_pause=0.1, deadline=5, connection_verify=entra.cert_path)
        await prover.prove(TENANT, PAYMENTS_APP, added.value)  # refused first (propagation), then proven
        await prover.prove(TENANT, "3f9a1c27-6b4e-4d8a-9e2f-71c05b8d4a63", added.value)  # a hard refusal

        secrets = KeyVaultSecrets(
            vault.url,
            LocalTokenCredential(),
            verify_challenge_resource=False,
            connection_verify=vault.cert_path,
            retry_total=0,  # the 503 below is final at once
        )
        store = {"content_type": "text/plain", "tags": {"secretbot-key-id": added.key_id}, "expires_on": added.end}
        await secrets.store("payments-api", added.value, **store)
        vault.refuse(status=403, times=1)
        vault.refuse(status=503)
        for _ in range(2):
            try:
                await secrets.store("payments-api", added.value, **store)
            except VaultError as error:
                errors.append(error)
        await secrets.close()

        graph.add_fault(r"/addPassword$", 503, applied=True, times=1)
        try:
            await writes.add_password(PAYMENTS_OBJECT, "secretbot-rot-2", datetime.now(UTC) + timedelta(days=30))
        except GraphWriteError as error:
            errors.append(error)

    assert len(errors) == 3
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    logged = "\n".join(formatter.format(record) for record in caplog.records)
    assert "vault stored secret=payments-api" in logged and "graph addPassword" in logged  # the flows did log
    assert value not in logged
    assert all(value not in str(error) and value not in repr(error) for error in errors)
    recorded = [str(r.headers) + r.path + r.query_string for r in graph.requests]
    recorded += [str(r) for r in entra.requests] + [str(r) for r in vault.requests]
    assert not any(value in line for line in recorded)


def test_a_secret_value_hides_itself_and_refuses_to_be_copied() -> None:
    secret = SecretValue("abc8Q~" + "z" * 34)
    assert "z" * 34 not in f"{secret} {secret!r} {secret:>60} {[secret]} { ({'v': secret}) }"
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    with pytest.raises(TypeError):
        copy.deepcopy(secret)
