"""Judging credentials for expiry (handlers.expiry): days left, state, threshold, replacement, order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain import CredentialKind, ExpiryState, InventoryCredential, ObjectType
from handlers.expiry import any_ends_within, check_thresholds, judge, within

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
_keys = iter(f"00000000-0000-4000-8000-{n:012d}" for n in range(1, 1000))


def cred(
    end: datetime | None,
    *,
    start: datetime | None = None,
    kind: CredentialKind = CredentialKind.SECRET,
    object_id: str = "obj-1",
    name: str = "app",
    usage: str | None = None,
    object_type: ObjectType = ObjectType.APPLICATION,
) -> InventoryCredential:
    return InventoryCredential(
        object_type=object_type,
        app_id="app-id",
        object_id=object_id,
        display_name=name,
        kind=kind,
        key_id=next(_keys),
        name=None,
        hint=None,
        start=start if start is not None else NOW - timedelta(days=300),
        end=end,
        usage=usage,
    )


@pytest.mark.parametrize(
    ("end", "days_left", "state", "threshold"),
    [
        (NOW + timedelta(days=45), 45, ExpiryState.VALID, None),
        (NOW + timedelta(days=30, hours=1), 30, ExpiryState.EXPIRING, 30),
        (NOW + timedelta(days=20), 20, ExpiryState.EXPIRING, 30),
        (NOW + timedelta(days=14), 14, ExpiryState.EXPIRING, 14),
        (NOW + timedelta(days=9, hours=15), 9, ExpiryState.EXPIRING, 14),
        (NOW + timedelta(days=7), 7, ExpiryState.EXPIRING, 7),
        (NOW + timedelta(days=1, hours=23), 1, ExpiryState.EXPIRING, 1),
        (NOW + timedelta(hours=3), 0, ExpiryState.EXPIRING, 1),  # still valid for three hours
        (NOW, -0, ExpiryState.EXPIRED, 0),  # the end moment itself: expired, as diagnose says
        (NOW - timedelta(hours=1), -1, ExpiryState.EXPIRED, 0),
        (NOW - timedelta(days=50), -50, ExpiryState.EXPIRED, 0),
        (None, None, ExpiryState.NO_END, None),
    ],
)
def test_days_left_state_and_threshold(
    end: datetime | None, days_left: int | None, state: ExpiryState, threshold: int | None
) -> None:
    [row] = judge([cred(end)], NOW)
    assert (row.days_left, row.state, row.threshold) == (days_left, state, threshold)


def test_configured_thresholds_decide_which_one_applies_and_what_is_expiring() -> None:
    rows = judge([cred(NOW + timedelta(days=50)), cred(NOW + timedelta(days=5))], NOW, thresholds=[60, 3, 10])
    assert [(r.days_left, r.threshold, r.state) for r in rows] == [
        (5, 10, ExpiryState.EXPIRING),
        (50, 60, ExpiryState.EXPIRING),
    ]


@pytest.mark.parametrize("bad", [[], [0], [7, -1], [1.5]])
def test_thresholds_must_be_whole_days(bad: list[int]) -> None:
    with pytest.raises(ValueError, match="thresholds"):
        check_thresholds(bad)


def test_a_newer_credential_of_the_same_kind_that_ends_later_replaces_an_old_one() -> None:
    old = cred(NOW + timedelta(days=5), start=NOW - timedelta(days=360))
    new = cred(NOW + timedelta(days=365), start=NOW - timedelta(days=2))
    newest_short = cred(NOW + timedelta(days=30), start=NOW - timedelta(days=1))
    certificate = cred(NOW + timedelta(days=900), start=NOW, kind=CredentialKind.CERTIFICATE)
    other_app = cred(NOW + timedelta(days=900), start=NOW, object_id="obj-2")
    rows = {row.credential.key_id: row for row in judge([old, new, newest_short, certificate, other_app], NOW)}
    assert rows[old.key_id].replaced_by == new.key_id  # the one that lasts longest, not just any
    assert rows[newest_short.key_id].replaced_by is None  # `new` ends later but is older
    assert rows[new.key_id].replaced_by is None
    assert rows[certificate.key_id].replaced_by is None  # a certificate does not replace a secret


def test_an_older_credential_that_ends_later_is_not_a_replacement() -> None:
    long_lived = cred(NOW + timedelta(days=700), start=NOW - timedelta(days=400))
    recent_short = cred(NOW + timedelta(days=3), start=NOW - timedelta(days=10))
    rows = {row.credential.key_id: row for row in judge([long_lived, recent_short], NOW)}
    assert rows[recent_short.key_id].replaced_by is None


def test_a_verify_key_does_not_replace_a_signing_key() -> None:
    sign = cred(NOW + timedelta(days=3), kind=CredentialKind.CERTIFICATE, usage="Sign")
    verify = cred(NOW + timedelta(days=700), start=NOW, kind=CredentialKind.CERTIFICATE, usage="Verify")
    new_sign = cred(NOW + timedelta(days=700), start=NOW, kind=CredentialKind.CERTIFICATE, usage="Sign")
    rows = {row.credential.key_id: row for row in judge([sign, verify], NOW)}
    assert rows[sign.key_id].replaced_by is None
    rows = {row.credential.key_id: row for row in judge([sign, verify, new_sign], NOW)}
    assert rows[sign.key_id].replaced_by == new_sign.key_id


def test_a_credential_without_end_replaces_but_is_never_replaced() -> None:
    old = cred(NOW + timedelta(days=3))
    forever = cred(None, start=NOW)
    rows = {row.credential.key_id: row for row in judge([old, forever], NOW)}
    assert rows[old.key_id].replaced_by == forever.key_id
    assert rows[forever.key_id].replaced_by is None


def test_rows_are_sorted_by_end_with_no_end_last_and_carry_last_use() -> None:
    late, never, early, expired = (
        cred(NOW + timedelta(days=90), name="b"),
        cred(None, name="a"),
        cred(NOW + timedelta(days=1), name="c"),
        cred(NOW - timedelta(days=3), name="d"),
    )
    used = NOW - timedelta(hours=5)
    rows = judge([late, never, early, expired], NOW, last_used={early.key_id: used})
    assert [row.credential.key_id for row in rows] == [expired.key_id, early.key_id, late.key_id, never.key_id]
    assert [row.last_used for row in rows] == [None, used, None, None]


def test_within_keeps_expired_rows_and_those_ending_in_the_window() -> None:
    rows = judge([cred(NOW - timedelta(days=400)), cred(NOW + timedelta(days=10)), cred(NOW + timedelta(days=40))], NOW)
    assert [row.days_left for row in within(rows, 30)] == [-400, 10]
    assert [row.days_left for row in within(rows, 0)] == [-400]
    assert any_ends_within(rows, 10) and not any_ends_within(rows[2:], 30)
    assert not any_ends_within(judge([cred(None)], NOW), 10_000)
