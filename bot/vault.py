"""Where a rotated secret's value goes: Azure Key Vault through azure-keyvault-secrets' `SecretClient`
(`KeyVaultSecrets`), or the embedded stand-in for demo and snapshot mode (`MemoryVault`). Both are
`bot.ports.SecretVault`.

The value is handed over once, from a `SecretValue`, and never appears in a log line or an
exception: SDK errors become `VaultRefused` / `VaultUnavailable` with a message of our own (the
vault, the secret's name, the HTTP status and Key Vault's error code) and no chained cause.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError
from azure.keyvault.secrets.aio import SecretClient

from bot.credential_types import SecretValue, StoredSecret, VaultError, VaultRefused, VaultUnavailable

# Key Vault secret names: 1-127 letters, digits and dashes.
SECRET_NAME = re.compile(r"[0-9a-zA-Z-]{1,127}")
SET_PERMISSION = "the Key Vault Secrets Officer role (or an access policy with Set on secrets)"
FAKE_LOCATION = "the embedded fake Key Vault (in memory, not a real vault)"

log = logging.getLogger(__name__)


class KeyVaultSecrets:
    """`SecretVault` on one Azure Key Vault, with the bot's azure-identity credential.

    `client_options` go to `SecretClient`: for the local fake, `verify_challenge_resource=False` and
    `connection_verify=<its certificate>`; nothing is needed for a real vault.
    """

    is_fake = False

    def __init__(self, vault_url: str, credential: Any, **client_options: Any) -> None:
        self._url = vault_url.rstrip("/")
        self._client = SecretClient(self._url, credential, **client_options)

    @property
    def location(self) -> str:
        return self._url

    async def store(
        self, name: str, value: SecretValue, *, content_type: str, tags: dict[str, str], expires_on: datetime
    ) -> StoredSecret:
        _check_name(name)
        try:
            secret = await self._client.set_secret(
                name, value.reveal(), content_type=content_type, tags=tags, expires_on=expires_on
            )
        except ClientAuthenticationError as error:  # a 401 the challenge did not cure, or no token at all
            raise VaultUnavailable(f"no token for Key Vault {self._url} ({type(error).__name__})") from None
        except HttpResponseError as error:
            raise _refusal(self._url, name, error) from None
        except AzureError as error:
            raise VaultUnavailable(f"Key Vault {self._url} could not be reached ({type(error).__name__})") from None
        version = secret.properties.version or ""
        log.info("vault stored secret=%s version=%s vault=%s", name, version, self._url)
        return StoredSecret(name, version, self._url)

    async def read(self, name: str, version: str) -> SecretValue:
        _check_name(name)
        try:
            secret = await self._client.get_secret(name, version)
        except ClientAuthenticationError as error:
            raise VaultUnavailable(f"no token for Key Vault {self._url} ({type(error).__name__})") from None
        except HttpResponseError as error:
            raise _refusal(self._url, name, error) from None
        except AzureError as error:
            raise VaultUnavailable(f"Key Vault {self._url} could not be reached ({type(error).__name__})") from None
        if not secret.value:
            raise VaultRefused(f"Key Vault {self._url} has no value for secret {name} version {version}")
        return SecretValue(secret.value)

    async def close(self) -> None:
        await self._client.close()


@dataclass(frozen=True)
class MemoryVersion:
    version: str
    value: SecretValue
    content_type: str
    tags: dict[str, str]
    expires_on: datetime


class MemoryVault:
    """The embedded stand-in for Key Vault in demo and snapshot mode: this process's memory only.

    It says it is a fake (`is_fake`, `location`) so the console and /readyz can tell people.
    """

    is_fake = True
    location = FAKE_LOCATION

    def __init__(self) -> None:
        self._secrets: dict[str, list[MemoryVersion]] = {}

    async def store(
        self, name: str, value: SecretValue, *, content_type: str, tags: dict[str, str], expires_on: datetime
    ) -> StoredSecret:
        _check_name(name)
        stored = MemoryVersion(uuid.uuid4().hex, value, content_type, dict(tags), expires_on)
        self._secrets.setdefault(name.lower(), []).append(stored)
        log.info("vault stored secret=%s version=%s vault=embedded-fake", name, stored.version)
        return StoredSecret(name, stored.version, FAKE_LOCATION)

    async def read(self, name: str, version: str) -> SecretValue:
        for stored in self._secrets.get(name.lower(), ()):
            if stored.version == version:
                return stored.value
        raise VaultRefused(f"the embedded fake Key Vault has no secret {name} version {version}", 404)

    def versions(self, name: str) -> list[MemoryVersion]:
        """Every stored version of a secret, oldest first (for the demo and tests)."""
        return list(self._secrets.get(name.lower(), ()))

    async def close(self) -> None:
        """Nothing to release."""


def _check_name(name: str) -> None:
    if SECRET_NAME.fullmatch(name) is None:
        raise VaultRefused(f"{name!r} is not a Key Vault secret name (1-127 letters, digits and dashes)")


def _refusal(url: str, name: str, error: HttpResponseError) -> VaultError:
    status = error.status_code
    code = error.error.code if error.error is not None else None
    where = f"Key Vault {url} refused to store secret {name}: HTTP {status}" + (f" {code}" if code else "")
    if status == 403:
        return VaultRefused(f"{where}; the bot's identity needs {SET_PERMISSION}", status, code)
    if status is not None and 400 <= status < 500 and status not in (408, 429):
        return VaultRefused(where, status, code)
    return VaultUnavailable(
        f"Key Vault {url} failed to store secret {name}: HTTP {status}" + (f" {code}" if code else "")
    )
