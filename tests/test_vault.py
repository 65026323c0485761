"""The SecretVault port: azure-keyvault-secrets' real SecretClient against the fake Key Vault
(bearer challenge, store, read back, tags, expiry, refusal), and the embedded in-memory stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from azure.keyvault.secrets.aio import SecretClient

from bot.credential_types import SecretValue, VaultRefused, VaultUnavailable
from bot.fakegraph import LocalTokenCredential
from bot.fakegraph.keyvault import FakeKeyVault
from bot.vault import FAKE_LOCATION, KeyVaultSecrets, MemoryVault

VALUE = "Jd48Q~k2VxR.bN7tQw-5yZ0aC3dE6fG9hJ1kL4mN"
TAGS = {
    "secretbot-app-id": "dc36fc90-2248-4d70-aca4-a1a9f5b19f71",
    "secretbot-key-id": "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9",
}
ENDS = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def vault() -> AsyncIterator[FakeKeyVault]:
    async with FakeKeyVault() as fake:
        yield fake


def _secrets(vault: FakeKeyVault, credential: LocalTokenCredential | None = None) -> KeyVaultSecrets:
    return KeyVaultSecrets(
        vault.url,
        credential or LocalTokenCredential(),
        verify_challenge_resource=False,  # the challenge names vault.azure.net; the fake is 127.0.0.1
        connection_verify=vault.cert_path,
    )


async def test_a_stored_secret_reads_back_with_its_tags_content_type_and_expiry(vault: FakeKeyVault) -> None:
    credential = LocalTokenCredential()
    secrets = _secrets(vault, credential)
    stored = await secrets.store(
        "payments-api-client-secret", SecretValue(VALUE), content_type="text/plain", tags=TAGS, expires_on=ENDS
    )
    await secrets.close()

    assert stored.name == "payments-api-client-secret" and stored.vault == vault.url and len(stored.version) == 32
    async with SecretClient(
        vault.url, LocalTokenCredential(), verify_challenge_resource=False, connection_verify=vault.cert_path
    ) as client:
        latest = await client.get_secret("payments-api-client-secret")
        pinned = await client.get_secret("payments-api-client-secret", stored.version)
    assert latest.value == pinned.value == VALUE
    assert latest.properties.version == stored.version
    assert latest.properties.content_type == "text/plain"
    assert latest.properties.tags == TAGS
    assert latest.properties.expires_on == ENDS
    # The bearer challenge: the first request went without a token (and without the value), then again with one.
    assert (vault.requests[0].status, vault.requests[0].authorized) == (401, False)
    assert vault.requests[1].authorized and vault.requests[1].method == "PUT"
    assert credential.token_requests == 1


async def test_each_store_is_a_new_version(vault: FakeKeyVault) -> None:
    secrets = _secrets(vault)
    first = await secrets.store("rotated", SecretValue("a" * 40), content_type="text/plain", tags={}, expires_on=ENDS)
    second = await secrets.store("rotated", SecretValue("b" * 40), content_type="text/plain", tags={}, expires_on=ENDS)
    await secrets.close()
    assert first.version != second.version
    assert [v.value for v in vault.versions("rotated")] == ["a" * 40, "b" * 40]


async def test_a_refused_write_says_what_is_missing_and_never_shows_the_value(vault: FakeKeyVault) -> None:
    vault.refuse(status=403)
    secrets = _secrets(vault)
    with pytest.raises(VaultRefused) as refused:
        await secrets.store(
            "payments-api-client-secret", SecretValue(VALUE), content_type="text/plain", tags=TAGS, expires_on=ENDS
        )
    await secrets.close()
    assert refused.value.status == 403 and refused.value.code == "Forbidden"
    assert "Key Vault Secrets Officer" in str(refused.value)
    assert VALUE not in str(refused.value) and VALUE not in repr(refused.value)
    assert refused.value.__cause__ is None and refused.value.__suppress_context__  # the SDK's error is not chained
    assert vault.versions("payments-api-client-secret") == []


async def test_a_bad_name_is_refused_before_anything_is_sent(vault: FakeKeyVault) -> None:
    secrets = _secrets(vault)
    with pytest.raises(VaultRefused, match="not a Key Vault secret name"):
        await secrets.store(
            "payments_api/secret", SecretValue(VALUE), content_type="text/plain", tags={}, expires_on=ENDS
        )
    await secrets.close()
    assert vault.requests == []


async def test_a_vault_that_cannot_be_reached_is_unavailable() -> None:
    secrets = KeyVaultSecrets(
        "https://127.0.0.1:9", LocalTokenCredential(), verify_challenge_resource=False, retry_total=0
    )
    with pytest.raises(VaultUnavailable):
        await secrets.store("name", SecretValue(VALUE), content_type="text/plain", tags={}, expires_on=ENDS)
    await secrets.close()


async def test_the_embedded_vault_keeps_versions_and_says_it_is_a_fake() -> None:
    vault = MemoryVault()
    stored = await vault.store(
        "payments-api", SecretValue(VALUE), content_type="text/plain", tags=TAGS, expires_on=ENDS
    )
    assert vault.is_fake and vault.location == FAKE_LOCATION == stored.vault
    [kept] = vault.versions("payments-api")
    assert (kept.version, kept.value.reveal(), kept.tags, kept.expires_on) == (stored.version, VALUE, TAGS, ENDS)
    assert not KeyVaultSecrets.is_fake
    with pytest.raises(VaultRefused):
        await vault.store("bad name", SecretValue(VALUE), content_type="text/plain", tags={}, expires_on=ENDS)


async def test_the_fake_follows_key_vaults_soft_delete_as_secret_client_sees_it(vault: FakeKeyVault) -> None:
    from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

    options = {"verify_challenge_resource": False, "connection_verify": vault.cert_path}
    async with SecretClient(vault.url, LocalTokenCredential(), **options) as client:
        await client.set_secret("short-lived", VALUE)
        deleted = await client.delete_secret("short-lived")
        assert deleted.recovery_id is not None and deleted.scheduled_purge_date is not None
        with pytest.raises(ResourceNotFoundError):
            await client.get_secret("short-lived")
        with pytest.raises(ResourceExistsError):  # a soft-deleted name cannot be reused until purged
            await client.set_secret("short-lived", VALUE)
