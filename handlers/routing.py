"""Who is warned about a credential, and at which thresholds: the routes file and `watch` combined.

- Every route that matches the app sends it to its channels, at its thresholds.
- An app that no route matches goes to the routes file's defaults. Subscriptions do not take an app
  away from the defaults: anyone can `watch` anything in any channel, and that must not silence the
  channel an administrator chose for everything nobody else claimed.
- Every channel's `watch` subscriptions that match the app add that channel, at their thresholds.
- One channel reached several ways gets one digest, at the union of the thresholds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bot.domain import InventoryCredential, ScannedCredential
from bot.expiry import Destination, Routes, Subscription, threshold_for


def destinations_for(
    credential: InventoryCredential, routes: Routes, subscriptions: Sequence[Subscription]
) -> dict[Destination, tuple[int, ...]]:
    """Every destination that receives this credential's warnings, with its thresholds (largest first)."""
    found: dict[Destination, set[int]] = {}
    matched = [route for route in routes.routes if any(m.matches(credential) for m in route.matchers)]
    for route in matched:
        _add(found, route.destinations, route.thresholds)
    if not matched:
        _add(found, routes.defaults, routes.thresholds)
    for subscription in subscriptions:
        if subscription.matcher.matches(credential):
            _add(found, (subscription.destination,), subscription.thresholds)
    return {destination: tuple(sorted(found[destination], reverse=True)) for destination in sorted(found)}


def due(
    rows: Iterable[ScannedCredential], routes: Routes, subscriptions: Sequence[Subscription]
) -> dict[Destination, list[tuple[ScannedCredential, int]]]:
    """Per destination, each credential that has crossed one of that destination's thresholds, with
    the threshold (0 once expired). Whether it was already warned there is the ledger's business."""
    plan: dict[Destination, list[tuple[ScannedCredential, int]]] = {}
    for row in rows:
        if row.days_left is None:
            continue
        for destination, thresholds in destinations_for(row.credential, routes, subscriptions).items():
            threshold = threshold_for(row.days_left, thresholds)
            if threshold is not None:
                plan.setdefault(destination, []).append((row, threshold))
    return plan


def _add(found: dict[Destination, set[int]], destinations: Iterable[Destination], thresholds: Iterable[int]) -> None:
    for destination in destinations:
        found.setdefault(destination, set()).update(thresholds)
