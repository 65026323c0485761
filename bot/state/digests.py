"""Warning digests and subscriptions as JSON: a versioned, explicit format (no pickle), so a record
written by another release is read or skipped, never misread. Only credential metadata: names, key
ids, Graph's three-character hint, dates; never a secret value.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from bot.domain import CredentialKind, ExpiryState, InventoryCredential, ObjectType, Owner, ScannedCredential
from bot.expiry import (
    Destination,
    Digest,
    MessageRef,
    Outcome,
    Platform,
    Problem,
    RotationPointer,
    Snooze,
    Stamp,
    WarningRow,
)

VERSION = 1
_NO_ROWS = '"rows":[]'


def encode_digest(digest: Digest) -> str:
    data = {
        "v": VERSION,
        "id": digest.id,
        "destination": _destination(digest.destination),
        "scanned_at": digest.scanned_at.isoformat(),
        "rows": [_row(row) for row in digest.rows],
        "slack_users": [list(pair) for pair in digest.slack_users],
        "acknowledged": encode_stamp(digest.acknowledged),
        "rechecked": encode_stamp(digest.rechecked),
        "snoozed": (
            {"until": digest.snoozed.until.isoformat(), "stamp": encode_stamp(digest.snoozed.stamp)}
            if digest.snoozed
            else None
        ),
        "rotatable": list(digest.rotatable) if digest.rotatable is not None else None,
        "rotation_note": digest.rotation_note,
    }
    return json.dumps(data, separators=(",", ":"))


def encode_digest_parts(digest: Digest) -> tuple[str, list[str], str]:
    """`encode_digest` in pieces: `head + ",".join(some of rows) + tail` is the digest with those rows,
    in their order, so Redis can save whichever rows a claim won in the same step as the claim."""
    empty = encode_digest(replace(digest, rows=()))
    head, tail = empty.split(_NO_ROWS, 1)
    rows = [json.dumps(_row(row), separators=(",", ":")) for row in digest.rows]
    return head + '"rows":[', rows, "]" + tail


def decode_digest(raw: bytes | str) -> Digest:
    """Raises ValueError for anything this release did not write."""
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("v") != VERSION:
            raise ValueError("not a version 1 digest")
        snoozed = data["snoozed"]
        return Digest(
            id=str(data["id"]),
            destination=_read_destination(data["destination"]),
            scanned_at=datetime.fromisoformat(data["scanned_at"]),
            rows=tuple(_read_row(row) for row in data["rows"]),
            slack_users=tuple((str(a), str(b)) for a, b in data["slack_users"]),
            acknowledged=decode_stamp(data["acknowledged"]),
            rechecked=decode_stamp(data.get("rechecked")),
            snoozed=Snooze(datetime.fromisoformat(snoozed["until"]), _stamp(snoozed["stamp"])) if snoozed else None,
            rotatable=tuple(map(str, rotatable)) if (rotatable := data.get("rotatable")) is not None else None,
            rotation_note=str(data["rotation_note"]) if data.get("rotation_note") else None,
        )
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"unreadable digest ({type(error).__name__})") from None


def encode_stamp(stamp: Stamp | None) -> dict[str, str] | None:
    return {"by": stamp.by, "at": stamp.at.isoformat()} if stamp else None


def decode_stamp(data: Any) -> Stamp | None:
    return _stamp(data) if data else None


def encode_pointer(pointer: RotationPointer) -> str:
    """A rotation requested from a warning, as the value of its request id in `digest-rotations:<id>`."""
    return json.dumps({"app": pointer.app, "by": pointer.by, "at": pointer.at.isoformat()}, separators=(",", ":"))


def decode_pointers(table: dict[bytes, bytes] | dict[str, str]) -> tuple[RotationPointer, ...]:
    """The hash of a digest's rotation requests, oldest first; an entry this release cannot read is skipped."""
    found = []
    for request_id, raw in table.items():
        try:
            data = json.loads(raw)
            found.append(
                RotationPointer(
                    request_id.decode() if isinstance(request_id, bytes) else str(request_id),
                    str(data["app"]),
                    str(data["by"]),
                    datetime.fromisoformat(data["at"]),
                )
            )
        except (ValueError, KeyError, TypeError):
            continue
    return tuple(sorted(found, key=lambda pointer: (pointer.at, pointer.request_id)))


def encode_message(message: MessageRef) -> str:
    return json.dumps({"platform": message.platform.value, "channel": message.channel, "id": message.message_id})


def decode_message(raw: bytes | str) -> MessageRef:
    try:
        data = json.loads(raw)
        return MessageRef(Platform(data["platform"]), str(data["channel"]), str(data["id"]))
    except (KeyError, TypeError) as error:
        raise ValueError(f"unreadable message reference ({type(error).__name__})") from None


def _stamp(data: Any) -> Stamp:
    return Stamp(str(data["by"]), datetime.fromisoformat(data["at"]))


def _destination(destination: Destination) -> dict[str, str]:
    return {"platform": destination.platform.value, "channel": destination.channel}


def _read_destination(data: Any) -> Destination:
    return Destination(Platform(data["platform"]), str(data["channel"]))


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _read_time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _row(row: WarningRow) -> dict[str, Any]:
    scanned, credential = row.scanned, row.scanned.credential
    return {
        "object_type": credential.object_type.value,
        "app_id": credential.app_id,
        "object_id": credential.object_id,
        "display_name": credential.display_name,
        "kind": credential.kind.value,
        "key_id": credential.key_id,
        "name": credential.name,
        "hint": credential.hint,
        "start": _time(credential.start),
        "end": _time(credential.end),
        "usage": credential.usage,
        "owners": [
            {"name": o.display_name, "upn": o.user_principal_name, "mail": o.mail, "id": o.object_id}
            for o in credential.owners
        ],
        "tags": list(credential.tags),
        "days_left": scanned.days_left,
        "state": scanned.state.value,
        "scan_threshold": scanned.threshold,
        "replaced_by": scanned.replaced_by,
        "last_used": _time(scanned.last_used),
        "threshold": row.threshold,
        "problem": row.problem.value,
        "unused_days": row.unused_days,
        "replaced_by_name": row.replaced_by_name,
        "outcome": row.outcome.value if row.outcome else None,
    }


def _read_row(data: Any) -> WarningRow:
    credential = InventoryCredential(
        object_type=ObjectType(data["object_type"]),
        app_id=str(data["app_id"]),
        object_id=str(data["object_id"]),
        display_name=str(data["display_name"]),
        kind=CredentialKind(data["kind"]),
        key_id=str(data["key_id"]),
        name=data["name"],
        hint=data["hint"],
        start=_read_time(data["start"]),
        end=_read_time(data["end"]),
        usage=data["usage"],
        owners=tuple(Owner(o["name"], o["upn"], o["mail"], o["id"]) for o in data["owners"]),
        tags=tuple(data["tags"]),
    )
    scanned = ScannedCredential(
        credential=credential,
        days_left=data["days_left"],
        state=ExpiryState(data["state"]),
        threshold=data["scan_threshold"],
        replaced_by=data["replaced_by"],
        last_used=_read_time(data["last_used"]),
    )
    return WarningRow(
        scanned=scanned,
        threshold=int(data["threshold"]),
        problem=Problem(data["problem"]),
        unused_days=data["unused_days"],
        replaced_by_name=data["replaced_by_name"],
        outcome=Outcome(data["outcome"]) if data["outcome"] else None,
    )
