"""Does a new client secret get a token? Asked of Entra with azure-identity's ClientSecretCredential,
again and again with growing pauses, for as long as a new secret may take to spread.

Entra answers a secret it does not know yet exactly as it answers a wrong one (AADSTS7000215), and
users have seen 4-18 s pass before a new secret works (reference/graph.md §1.5), so 7000215 means
"not yet" until the time allowed runs out. Any other AADSTS code (app not found, disabled, tenant,
expired) is final at once. Entra's message is not kept: only its code.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

from azure.core.exceptions import AzureError, ClientAuthenticationError
from azure.identity.aio import ClientSecretCredential

from bot.credential_types import Proof, ProofOutcome, SecretValue

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_SCOPE = "https://graph.microsoft.com/.default"  # any resource will do: only the sign-in matters
NOT_YET = frozenset({7000215})  # "invalid client secret": what a secret still spreading gets
DEADLINE = 180.0  # seconds: far beyond the delays seen, short enough to tell someone it did not work
FIRST_PAUSE = 2.0
MAX_PAUSE = 20.0
ATTEMPT_TIMEOUT = 20.0  # seconds one token request may take; a silent endpoint counts as "unreachable"
_AADSTS = re.compile(r"AADSTS(\d{5,7})")

log = logging.getLogger(__name__)


class SecretProver:
    """`prove(tenant, client_id, secret)` against one authority (the public cloud, a national cloud,
    or the local fake token endpoint, whose certificate `connection_verify` names)."""

    def __init__(
        self,
        authority: str = DEFAULT_AUTHORITY,
        *,
        scope: str = DEFAULT_SCOPE,
        deadline: float = DEADLINE,
        first_pause: float = FIRST_PAUSE,
        max_pause: float = MAX_PAUSE,
        connection_verify: str | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.authority = authority
        self._scope = scope
        self._deadline = deadline
        self._first_pause = first_pause
        self._max_pause = max_pause
        self._verify = connection_verify
        self._sleep = sleep

    def pause_after(self, attempts: int) -> float | None:
        """Seconds to wait after `attempts` failed tries before the next one, or None when the next try
        would start past the deadline (counted as the sum of the pauses, so a proof split into one job
        per try, bot/app.py, keeps the same bound as one that waits in place)."""
        pauses = [min(self._first_pause * 2**n, self._max_pause) for n in range(attempts)]
        return pauses[-1] if sum(pauses) <= self._deadline else None

    async def attempt(self, tenant: str, client_id: str, secret: SecretValue) -> Proof:
        """One try: PROVEN, REFUSED (final), NOT_YET (still spreading) or UNREACHABLE."""
        started = time.monotonic()
        extra = {} if self._verify is None else {"connection_verify": self._verify}
        try:
            credential = ClientSecretCredential(tenant, client_id, secret.reveal(), authority=self.authority, **extra)
        except ValueError:  # a tenant or client id azure-identity will not even send
            return Proof(ProofOutcome.REFUSED, 0, 0.0, None, f"{tenant!r} / {client_id!r} cannot be asked for a token")
        async with credential:
            try:
                async with asyncio.timeout(ATTEMPT_TIMEOUT):
                    outcome, code = await _attempt(credential, self._scope)
            except TimeoutError:
                outcome, code = ProofOutcome.UNREACHABLE, None
        elapsed = time.monotonic() - started
        if outcome is ProofOutcome.REFUSED:
            return Proof(outcome, 1, elapsed, code, f"Entra refused the new secret (AADSTS{code})")
        if outcome is ProofOutcome.NOT_YET:
            return Proof(outcome, 1, elapsed, code, f"Entra still calls the secret unknown (AADSTS{code})")
        if outcome is ProofOutcome.UNREACHABLE:
            return Proof(outcome, 1, elapsed, code, "the token endpoint did not answer")
        return Proof(outcome, 1, elapsed)

    async def prove(self, tenant: str, client_id: str, secret: SecretValue) -> Proof:
        """Try until proven, refused, or the pauses would pass the deadline, waiting in place."""
        started = time.monotonic()
        attempts = 0
        while True:
            proof = await self.attempt(tenant, client_id, secret)
            attempts += proof.attempts  # 0: nothing could be sent
            elapsed = time.monotonic() - started
            if proof.outcome is ProofOutcome.PROVEN:
                log.info("token proof app=%s proven after %d attempt(s), %.1f s", client_id, attempts, elapsed)
                return replace(proof, attempts=attempts, elapsed=elapsed)
            if proof.outcome is ProofOutcome.REFUSED:
                log.warning("token proof app=%s refused: %s", client_id, proof.detail)
                return replace(proof, attempts=attempts, elapsed=elapsed)
            pause = self.pause_after(attempts)
            if pause is None:
                detail = f"no token after {elapsed:.0f} s and {attempts} attempts: {proof.detail}"
                log.warning("token proof app=%s gave up: %s", client_id, detail)
                return replace(proof, attempts=attempts, elapsed=elapsed, detail=detail)
            await self._sleep(pause)


async def prove_secret(authority: str, tenant: str, client_id: str, secret: SecretValue, **options: object) -> Proof:
    """One-off `SecretProver(authority, **options).prove(...)`."""
    return await SecretProver(authority, **options).prove(tenant, client_id, secret)  # type: ignore[arg-type]


async def _attempt(credential: ClientSecretCredential, scope: str) -> tuple[ProofOutcome, int | None]:
    try:
        await credential.get_token(scope)
    except ClientAuthenticationError as error:
        # Entra answered: keep only its code (its text is not ours to show, and need not be kept).
        match = _AADSTS.search(str(error.message or ""))
        code = int(match.group(1)) if match else None
        if code is None:
            return ProofOutcome.UNREACHABLE, None  # an answer without a code: a proxy, a 5xx page
        return (ProofOutcome.NOT_YET if code in NOT_YET else ProofOutcome.REFUSED), code
    except AzureError:
        return ProofOutcome.UNREACHABLE, None
    return ProofOutcome.PROVEN, None
