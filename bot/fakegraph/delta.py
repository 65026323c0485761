"""Delta queries (`/applications/delta`, `/servicePrincipals/delta`) over the tenant's history.

The fake keeps every version of the tenant it has served (`FakeGraph.use_snapshot` adds one), so a
delta link can name the version it was issued at and a later call answers only what differs from it:
new objects with every selected property, changed ones with `id` and the selected properties that
changed (Graph promises "at least the updated properties"), removed ones as
`{"id", "@removed": {"reason"}}`.
Paging state (`$skiptoken`) and the delta link's state (`$deltatoken`) are opaque tokens that carry
the query options, as Graph's do, so later requests need no other option.

A token for a version the fake no longer keeps, one issued before `expire()`, or one it cannot read
is refused the way Microsoft documents for directory objects once their 7 days have passed: 400,
code `syncStateNotFound`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass

from bot.fakegraph.errors import GraphError
from bot.fakegraph.snapshot import Snapshot
from bot.fakegraph.values import JsonObject

# Versions kept: enough for any test's edits; a token older than this is refused as expired.
KEEP_VERSIONS = 32
TOKEN_OPTIONS = ("$deltatoken", "$skiptoken")


def sync_state_not_found() -> GraphError:
    # Microsoft's wording for an expired identity delta link (7-day lifetime, devblogs, July 2020).
    return GraphError(
        400,
        "syncStateNotFound",
        "The sync state generation is not found. The delta token is expired and data must be synchronized again.",
    )


class DeltaHistory:
    """The versions of the tenant served so far, numbered from 1; the newest is the current one."""

    def __init__(self, snapshot: Snapshot, *, keep: int = KEEP_VERSIONS) -> None:
        self._versions: dict[int, Snapshot] = {1: snapshot}
        self._current = 1
        self.epoch = 1  # tokens carry it; `expire()` moves it on, and older tokens are refused
        self._keep = keep
        self._changes: dict[tuple[str, int, int], list[Change]] = {}

    @property
    def current(self) -> int:
        return self._current

    def advance(self, snapshot: Snapshot) -> None:
        self._current += 1
        self._versions[self._current] = snapshot
        for old in [v for v in self._versions if v <= self._current - self._keep]:
            del self._versions[old]
        self._changes.clear()

    def expire(self) -> None:
        """Refuse every token issued so far, as Graph does once a delta link is older than 7 days."""
        self.epoch += 1

    def version(self, number: int) -> Snapshot:
        snapshot = self._versions.get(number)
        if snapshot is None:
            raise sync_state_not_found()
        return snapshot

    def check(self, state: DeltaState) -> None:
        """Refuse a token issued before `expire()` or naming a version no longer kept."""
        if state.epoch != self.epoch or state.target not in self._versions:
            raise sync_state_not_found()
        if state.base is not None and state.base not in self._versions:
            raise sync_state_not_found()

    def changes(self, collection: str, base: int, target: int) -> list[Change]:
        """Objects of `collection` that differ between two versions, in the target's order, removals last."""
        key = (collection, base, target)
        if key not in self._changes:
            self._changes[key] = _diff(collection, self.version(base), self.version(target))
        return self._changes[key]


def _objects(snapshot: Snapshot, collection: str) -> tuple[JsonObject, ...]:
    return snapshot.applications if collection == "applications" else snapshot.service_principals


@dataclass(frozen=True)
class Change:
    obj: JsonObject  # the object as it is now, or `{"id", "@removed"}`
    changed: frozenset[str] | None = None  # properties that changed; None: a new (or removed) object


def _diff(collection: str, base: Snapshot, target: Snapshot) -> list[Change]:
    if base is target:
        return []
    before = {obj["id"]: obj for obj in _objects(base, collection)}
    now = _objects(target, collection)
    changes = []
    for obj in now:
        old = before.get(obj["id"])
        if old is None:
            changes.append(Change(obj))
        elif old != obj:
            changes.append(
                Change(obj, frozenset(name for name in obj.keys() | old.keys() if obj.get(name) != old.get(name)))
            )
    present = {obj["id"] for obj in now}
    # "changed": the object went to deleted items and can be restored; "deleted": it is gone for good.
    restorable = {obj["id"] for obj in target.deleted_applications} if collection == "applications" else set()
    for object_id in before:
        if object_id not in present:
            reason = "changed" if object_id in restorable else "deleted"
            changes.append(Change({"id": object_id, "@removed": {"reason": reason}}))
    return changes


@dataclass(frozen=True)
class DeltaState:
    """What a delta token stands for: the round's versions, its options and where the next page starts."""

    target: int  # the version this round reports up to
    base: int | None  # None: a full round (every object); else changes since this version
    select: tuple[str, ...] | None
    top: int
    epoch: int
    offset: int = 0

    def encode(self) -> str:
        fields = {"t": self.target, "b": self.base, "s": self.select, "n": self.top, "e": self.epoch, "o": self.offset}
        raw = json.dumps(fields)
        return base64.urlsafe_b64encode(b"fakegraph-delta:" + raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> DeltaState:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            if not raw.startswith(b"fakegraph-delta:"):
                raise ValueError
            data = json.loads(raw.removeprefix(b"fakegraph-delta:"))
            select = tuple(str(name) for name in data["s"]) if data["s"] is not None else None
            base = None if data["b"] is None else int(data["b"])
            return cls(int(data["t"]), base, select, int(data["n"]), int(data["e"]), int(data["o"]))
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise sync_state_not_found() from None


def state_from_params(params: Mapping[str, str], history: DeltaHistory) -> DeltaState | None:
    """The state a token in `params` carries (None: the first request of a full round).

    A `$deltatoken` starts a new round: changes from its version up to the current one.
    """
    if "$skiptoken" in params:
        state = DeltaState.decode(params["$skiptoken"])
    elif "$deltatoken" in params:
        issued = DeltaState.decode(params["$deltatoken"])
        history.check(issued)
        state = DeltaState(history.current, issued.target, issued.select, issued.top, issued.epoch)
    else:
        return None
    history.check(state)
    return state
