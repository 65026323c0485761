"""What Graph writes, the vault and the token check hand back to a rotation, and how they fail.

Stdlib only, like `bot.domain`: the rotation use case catches these without knowing msgraph-sdk,
azure-keyvault-secrets or azure-identity. A secret's value travels only inside `SecretValue`, whose
repr and str never show it and which refuses to be pickled (so it cannot slip into a job payload).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NoReturn

CLOCK_MARGIN = timedelta(hours=1)


class SecretValue:
    """A client secret's value. Shown as `SecretValue(hidden)`; `reveal()` is the only way to read it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not value:
            raise ValueError("a secret value must not be empty")
        self._value = value

    def reveal(self) -> str:
        """The value itself: only for the one call that must send it (Key Vault, the token endpoint)."""
        return self._value

    def __repr__(self) -> str:
        return "SecretValue(hidden)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretValue) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> NoReturn:
        # pickle, copy and job queues would otherwise carry the value somewhere it must never be.
        raise TypeError("a SecretValue cannot be pickled or copied")


@dataclass(frozen=True)
class NewPassword:
    """A client secret just added with addPassword. `value` exists only in this answer."""

    object_id: str  # the application's object id
    key_id: str  # lower-case GUID, the portal's "Secret ID"
    display_name: str
    hint: str  # Graph's first three characters of the value
    start: datetime
    end: datetime
    value: SecretValue


@dataclass(frozen=True)
class PasswordPolicy:
    """What the app management policies in force say about adding a client secret to one app."""

    passwords_allowed: bool = True  # False: a `passwordAddition` restriction applies (certificates only)
    max_lifetime: timedelta | None = None  # the shortest `passwordLifetime` in force, None: no limit
    policy_id: str | None = None  # the policy that sets the limit or the ban (the tenant default's id is all zeros)
    missing_permission: str | None = None  # set when the policies could not be read (then nothing is known)

    def cap(self, start: datetime, wanted_end: datetime) -> datetime:
        """`wanted_end`, shortened to what the policy allows for a secret starting at `start`.

        An hour is kept in hand: Graph starts the secret by its own clock, which may run ahead of ours.
        """
        if self.max_lifetime is None:
            return wanted_end
        return min(wanted_end, start + self.max_lifetime - CLOCK_MARGIN)


@dataclass(frozen=True)
class DirectoryUser:
    """An Entra user, as found for a chat user's email address."""

    id: str
    display_name: str | None
    mail: str | None
    user_principal_name: str | None


@dataclass(frozen=True)
class StoredSecret:
    """Where a vault put a secret: enough to find it again, never the value."""

    name: str
    version: str
    vault: str  # the vault's URL, or a label for the embedded fake


class ProofOutcome(StrEnum):
    PROVEN = "proven"  # a token was issued for the app with the new secret
    NOT_YET = "not_yet"  # refused as an unknown secret (propagation) until the time allowed ran out
    REFUSED = "refused"  # refused for a reason waiting cannot fix (app not found, tenant, disabled, ...)
    UNREACHABLE = "unreachable"  # the token endpoint never answered in the time allowed


@dataclass(frozen=True)
class Proof:
    """The answer to "does the new secret get a token?"."""

    outcome: ProofOutcome
    attempts: int
    elapsed: float  # seconds
    code: int | None = None  # the last AADSTS code, when Entra refused
    detail: str = ""  # a short reason in our words (never the secret, never Entra's full message)


# --- failures ---------------------------------------------------------------------------------------


class GraphWriteError(Exception):
    """A Graph write (addPassword, removePassword) failed. The message is safe to show and log."""

    status: int | None = None
    code: str | None = None


class WriteThrottled(GraphWriteError):
    """429: Graph asked to wait. Nothing was written."""

    def __init__(self, operation: str, retry_after: float | None) -> None:
        wait = f"; retry after {retry_after:g} s" if retry_after is not None else ""
        super().__init__(f"Microsoft Graph throttled {operation}{wait}")
        self.status = 429
        self.retry_after = retry_after


class WriteOutcomeUnknown(GraphWriteError):
    """A 5xx or no answer: the write may or may not have happened. Read before writing again."""

    def __init__(self, operation: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"Microsoft Graph did not confirm {operation} ({reason}); it may have been applied")
        self.status = status


class WriteRefused(GraphWriteError):
    """Graph refused the write for a reason retrying cannot fix: a policy, a bad request, a missing object."""

    def __init__(self, operation: str, status: int, code: str, message: str, permission: str | None = None) -> None:
        super().__init__(f"Microsoft Graph refused {operation}: {code}: {message}")
        self.status = status
        self.code = code
        self.graph_message = message
        self.permission = permission  # for a 403: the permission that would allow it


class VaultError(Exception):
    """Storing a secret failed. The message names the vault and the secret's name, never its value."""


class VaultRefused(VaultError):
    """The vault refused the write (403, a bad name, ...): retrying the same write will not help."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class VaultUnavailable(VaultError):
    """The vault could not be reached or failed (5xx, timeout, no token)."""
