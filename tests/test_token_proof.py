"""Proving a new secret: azure-identity's ClientSecretCredential against the fake token endpoint,
which accepts a secret added through the fake Graph only after its propagation delay and otherwise
answers with Entra's own error JSON."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from bot.credential_types import NewPassword, ProofOutcome, SecretValue
from bot.fakegraph import FakeGraph, LocalTokenCredential, load_snapshot, sample_snapshot_path
from bot.fakegraph.entra import FakeEntra
from bot.graph import build_graph_client
from bot.graph.proof import SecretProver, prove_secret
from bot.graph.writes import GraphWrites
from tests.tenant_edits import PAYMENTS_APP, REPORTING_BOT

TENANT = "6f1c3a52-8d4e-4b7a-9c21-3e5f7a9b0c14"
PAYMENTS_OBJECT = "ec7ac8ad-1b2b-406b-aae1-2c972399d29d"
REPORTING_OBJECT = "fe2fbd72-0bdc-45d3-860b-ed79214119cf"


@dataclass
class Login:
    graph: FakeGraph
    entra: FakeEntra
    writes: GraphWrites

    def prover(self, *, deadline: float = 10.0) -> SecretProver:
        return SecretProver(
            self.entra.authority,
            deadline=deadline,
            first_pause=0.1,
            max_pause=0.3,
            connection_verify=self.entra.cert_path,
        )

    async def add(self, object_id: str = PAYMENTS_OBJECT) -> NewPassword:
        return await self.writes.add_password(object_id, "secretbot-proof", datetime.now(UTC) + timedelta(days=30))


@pytest.fixture
async def login() -> AsyncIterator[Login]:
    async with FakeGraph(load_snapshot(sample_snapshot_path())) as graph, FakeEntra(graph) as entra:
        yield Login(graph, entra, GraphWrites(build_graph_client(graph.base_url, LocalTokenCredential())))


async def test_a_new_secret_is_proven_once_it_has_propagated(login: Login) -> None:
    login.entra.propagation = 0.5
    added = await login.add()
    proof = await login.prover().prove(TENANT, PAYMENTS_APP, added.value)

    assert proof.outcome is ProofOutcome.PROVEN
    assert proof.attempts > 1 and proof.elapsed >= 0.5
    seen = [(r.status, r.code) for r in login.entra.requests]
    assert seen[0] == (401, 7000215) and seen[-1] == (200, None)
    assert login.entra.requests[-1].key_id == added.key_id


async def test_a_secret_that_never_propagates_is_not_yet_after_the_deadline(login: Login) -> None:
    login.entra.propagation = 3600
    added = await login.add()
    proof = await login.prover(deadline=1.0).prove(TENANT, PAYMENTS_APP, added.value)
    assert proof.outcome is ProofOutcome.NOT_YET
    assert proof.code == 7000215 and proof.attempts >= 3
    assert proof.elapsed <= 1.5


@pytest.mark.parametrize(
    ("tenant", "client_id", "code"),
    [
        (TENANT, "3f9a1c27-6b4e-4d8a-9e2f-71c05b8d4a63", 700016),  # no such app in the tenant
        ("c0ffee00-1234-4abc-9def-0123456789ab", PAYMENTS_APP, 90002),  # another tenant
        ("northwind-ops.onmicrosoft.com", REPORTING_BOT, 7000112),  # service principal disabled
    ],
)
async def test_a_hard_refusal_ends_the_proof_at_once(login: Login, tenant: str, client_id: str, code: int) -> None:
    added = await login.add(REPORTING_OBJECT if client_id == REPORTING_BOT else PAYMENTS_OBJECT)
    proof = await login.prover().prove(tenant, client_id, added.value)
    assert (proof.outcome, proof.code, proof.attempts) == (ProofOutcome.REFUSED, code, 1)


async def test_a_removed_secret_no_longer_gets_a_token(login: Login) -> None:
    added = await login.add()
    assert (await login.prover().prove(TENANT, PAYMENTS_APP, added.value)).outcome is ProofOutcome.PROVEN
    await login.writes.remove_password(PAYMENTS_OBJECT, added.key_id)
    proof = await login.prover(deadline=0.3).prove(TENANT, PAYMENTS_APP, added.value)
    assert (proof.outcome, proof.code) == (ProofOutcome.NOT_YET, 7000215)


async def test_an_unreachable_token_endpoint_is_reported_as_such(login: Login) -> None:
    secret = SecretValue("abc8Q~" + "x" * 34)
    proof = await prove_secret("https://127.0.0.1:9", TENANT, PAYMENTS_APP, secret, deadline=0.5)
    assert proof.outcome is ProofOutcome.UNREACHABLE


async def test_the_token_endpoint_answers_with_entras_error_json(login: Login) -> None:
    context = ssl.create_default_context(cafile=login.entra.cert_path)
    form = {
        "grant_type": "client_credentials",
        "client_id": PAYMENTS_APP,
        "scope": "https://graph.microsoft.com/.default",
    }
    async with aiohttp.ClientSession() as session:
        url = f"{login.entra.authority}/{TENANT}/oauth2/v2.0/token"
        async with session.post(url, data=form, ssl=context) as response:
            status, body = response.status, json.loads(await response.read())
        async with session.post(url, data={**form, "scope": "User.Read"}, ssl=context) as response:
            scope_status, scope_body = response.status, json.loads(await response.read())
    assert status == 401 and body["error"] == "invalid_client" and body["error_codes"] == [7000218]
    assert body["error_description"].startswith("AADSTS7000218: ")
    assert "\r\nTrace ID: " in body["error_description"]
    assert set(body) == {
        "error",
        "error_description",
        "error_codes",
        "timestamp",
        "trace_id",
        "correlation_id",
        "error_uri",
    }
    assert body["error_uri"] == "https://login.microsoftonline.com/error?code=7000218"
    assert scope_status == 400 and scope_body["error"] == "invalid_scope"


async def test_snapshot_rotation_parts_work_together_and_say_which_are_fakes() -> None:
    from bot.rotation_wiring import authority_for, open_snapshot_rotation

    async with (
        FakeGraph(load_snapshot(sample_snapshot_path())) as graph,
        open_snapshot_rotation(graph, propagation=0.2) as parts,
    ):
        added = await parts.writer.add_password(
            PAYMENTS_OBJECT, "secretbot-demo", datetime.now(UTC) + timedelta(days=30)
        )
        stored = await parts.vault.store(
            "payments-api", added.value, content_type="text/plain", tags={"key-id": added.key_id}, expires_on=added.end
        )
        proof = await parts.prover.prove(TENANT, PAYMENTS_APP, added.value)
        approvers = await parts.people.member_groups(
            "3b7e2c91-4f6a-4d8b-9e15-72c0a8f4d3e6", ["5e8c1a47-2b9d-4f36-a0e7-c4d2f9b6e813"]
        )
    assert proof.outcome is ProofOutcome.PROVEN
    assert (
        parts.fakes == ("token endpoint", "Key Vault") and parts.vault.is_fake and stored.vault == parts.vault.location
    )
    assert approvers == {"5e8c1a47-2b9d-4f36-a0e7-c4d2f9b6e813"}
    assert authority_for("https://graph.microsoft.us") == "https://login.microsoftonline.us"
    assert authority_for("https://graph.microsoft.com/") == "https://login.microsoftonline.com"


async def test_adding_and_proving_leave_the_audit_and_sign_in_entries_entra_would(login: Login) -> None:
    from bot.domain import ActivityQuery, GraphMode
    from bot.graph import GraphDirectory, GraphHttp

    added = await login.add()
    await login.prover().prove(TENANT, PAYMENTS_APP, added.value)
    async with GraphHttp(login.graph.base_url, LocalTokenCredential()) as http:
        directory = GraphDirectory(http, GraphMode.SNAPSHOT)
        lookup = await directory.lookup(
            PAYMENTS_APP, ActivityQuery(correlation_id=None, since=datetime.now(UTC) - timedelta(hours=1))
        )
        activity = lookup.activity or await directory.activity(
            PAYMENTS_APP, PAYMENTS_OBJECT, correlation_id=None, since=datetime.now(UTC) - timedelta(hours=1)
        )
    assert any(s.credential_key_id == added.key_id and not s.error_code for s in activity.sign_ins)
    assert any(added.key_id in {k.key_id for k in a.added} and a.actor == "secretbot" for a in activity.audits)


async def test_a_tenant_azure_identity_will_not_send_is_refused_without_a_request(login: Login) -> None:
    proof = await login.prover().prove("not a tenant!", PAYMENTS_APP, SecretValue("abc8Q~" + "x" * 34))
    assert (proof.outcome, proof.attempts) == (ProofOutcome.REFUSED, 0)
    assert login.entra.requests == []
