"""The seams between use cases and infrastructure, as Protocols.

`handlers` depend on these; `bot.graph` and `bot.fakegraph` (and later state and vault modules)
implement them; only the composition root wires the two together.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from bot.domain import Activity, AppLookup, GraphMode


class Directory(Protocol):
    """What the diagnosis needs to know about a tenant's applications."""

    @property
    def mode(self) -> GraphMode: ...

    async def lookup(self, app_id: str) -> AppLookup:
        """Application, service principal, deleted application, owners and tenant for one appId.

        Raises `PermissionDenied`, `Throttled` or `DirectoryUnavailable` (bot.domain) when Graph
        cannot answer at all; a refused part of the lookup is reported in `missing_permissions`.
        """
        ...

    async def activity(
        self, app_id: str, object_id: str | None, *, correlation_id: str | None, since: datetime
    ) -> Activity:
        """Recent sign-ins of the app's service principal and audit entries about its credentials."""
        ...
