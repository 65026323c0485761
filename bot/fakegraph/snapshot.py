"""Reading a tenant snapshot: the JSON the fake Graph serves (see ARCHITECTURE.md, "Tenant snapshot").

A snapshot is a JSON object whose keys are all optional — `tenant`, `applications`,
`servicePrincipals`, `deletedApplications`, `owners`, `signIns`, `directoryAudits` — with values in
Graph's own camelCase shapes. A bare JSON array is read as `applications`, so the output of
`az ad app list --all` works as is.

Loading keeps only real Graph properties (see `schema.py`): anything else would reach msgraph-sdk's
`additional_data`, which Graph itself would never cause. An application's
`federatedIdentityCredentials` key is split off, because Graph serves that navigation property only
from its own endpoint. Every problem is a `SnapshotError` with a one-line message.

The bundled sample tenant (`sample_snapshot_path()`) is described app by app in README.md.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.domain import Coverage
from bot.fakegraph.schema import (
    APP_MANAGEMENT_POLICY,
    APPLICATION,
    DIRECTORY_AUDIT,
    FEDERATED_IDENTITY_CREDENTIAL,
    GROUP,
    OWNER_TYPES,
    SERVICE_PRINCIPAL,
    SIGN_IN_BETA,
    TENANT_APP_MANAGEMENT_POLICY,
    USER,
    EntityType,
)
from bot.fakegraph.values import JsonObject, describe, is_guid, parse_datetime, parse_duration

KNOWN_KEYS = frozenset(
    (
        *("tenant", "applications", "servicePrincipals", "deletedApplications", "owners", "signIns", "directoryAudits"),
        # For rotation: approvers (users, transitive group membership) and app management policies.
        *("users", "groups", "defaultAppManagementPolicy", "appManagementPolicies"),
    )
)
# Graph's tenant-wide default app management policy "always exists and is disabled by default".
DEFAULT_POLICY_ID = "00000000-0000-0000-0000-000000000000"
DISABLED_DEFAULT_POLICY: JsonObject = {
    "id": DEFAULT_POLICY_ID,
    "displayName": "Default app management tenant policy",
    "description": (
        "Default tenant policy that enforces app management restrictions on applications and service principals."
    ),
    "isEnabled": False,
    "applicationRestrictions": {"passwordCredentials": [], "keyCredentials": []},
    "servicePrincipalRestrictions": {"passwordCredentials": [], "keyCredentials": []},
}

# Used when a snapshot names no tenant and nothing in it hints at one (invented, stable).
FALLBACK_TENANT_ID = "0d5e7c3a-51b4-4f5e-9a6b-7c2d1e0f9a88"
FALLBACK_DOMAIN = "snapshot-tenant.onmicrosoft.com"
# Namespace for deriving a stable synthetic tenant id from a publisher domain.
_TENANT_NAMESPACE = uuid.UUID("3f6b9d2e-7a41-4c58-b0e3-95d1c7a2f468")


class SnapshotError(ValueError):
    """A snapshot that cannot be used. `str(error)` is always a single line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


@dataclass(frozen=True)
class Snapshot:
    """A tenant as Graph-shaped dicts, already validated and trimmed to Graph properties.

    The dicts are shared, not copied: treat them as read-only (the server copies before serving).
    """

    tenant: JsonObject  # {"id", "displayName", "defaultDomain", "domains": [str, ...]}
    applications: tuple[JsonObject, ...] = ()
    service_principals: tuple[JsonObject, ...] = ()
    deleted_applications: tuple[JsonObject, ...] = ()
    owners: Mapping[str, tuple[JsonObject, ...]] = field(default_factory=dict)  # app object id → owners
    federated_credentials: Mapping[str, tuple[JsonObject, ...]] = field(default_factory=dict)
    sign_ins: tuple[JsonObject, ...] = ()
    directory_audits: tuple[JsonObject, ...] = ()
    has_sign_ins: bool = False  # False: the export had no sign-in access (the fake answers 403)
    has_audits: bool = False
    tenant_synthetic: bool = False  # True: no `tenant` key, the tenant was derived or invented
    has_service_principals: bool = False  # False: the export has no `servicePrincipals` key
    has_deleted_applications: bool = False
    users: tuple[JsonObject, ...] = ()
    groups: tuple[JsonObject, ...] = ()
    group_members: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # group id → member object ids
    default_app_management_policy: JsonObject = field(default_factory=lambda: dict(DISABLED_DEFAULT_POLICY))
    app_management_policies: tuple[JsonObject, ...] = ()
    policy_assignments: Mapping[str, str] = field(default_factory=dict)  # app object id → policy id

    @property
    def coverage(self) -> Coverage:
        """What this export can tell: a missing key is unknown, not empty (see ARCHITECTURE.md)."""
        return Coverage(
            tenant=not self.tenant_synthetic,
            service_principals=self.has_service_principals,
            deleted_applications=self.has_deleted_applications,
            sign_ins=self.has_sign_ins,
            audits=self.has_audits,
        )

    def application(self, app_id: str) -> JsonObject | None:
        return self._index("applications", "appId").get(app_id.lower())

    def application_by_id(self, object_id: str) -> JsonObject | None:
        return self._index("applications", "id").get(object_id.lower())

    def service_principal(self, app_id: str) -> JsonObject | None:
        return self._index("service_principals", "appId").get(app_id.lower())

    def service_principal_by_id(self, object_id: str) -> JsonObject | None:
        return self._index("service_principals", "id").get(object_id.lower())

    def deleted_application(self, app_id: str) -> JsonObject | None:
        return self._index("deleted_applications", "appId").get(app_id.lower())

    def user_by_id(self, object_id: str) -> JsonObject | None:
        return self._index("users", "id").get(object_id.lower())

    def assigned_policy(self, app_object_id: str) -> JsonObject | None:
        """The appManagementPolicy assigned to an application (Graph allows one), if any."""
        policy_id = self.policy_assignments.get(app_object_id.lower())
        return None if policy_id is None else _first(self.app_management_policies, "id", policy_id)

    def member_of(self, member_id: str) -> set[str]:
        """Every group `member_id` belongs to, directly or through nested groups."""
        parents: dict[str, set[str]] = {}
        for group_id, members in self.group_members.items():
            for member in members:
                parents.setdefault(member, set()).add(group_id)
        found: set[str] = set()
        pending = [member_id.lower()]
        while pending:
            for group_id in parents.get(pending.pop(), ()):
                if group_id not in found:
                    found.add(group_id)
                    pending.append(group_id)
        return found

    def _index(self, collection: str, key: str) -> dict[str, JsonObject]:
        """Objects by `key`, built on first use: a scan of a 100,000-app tenant asks for thousands of
        owners by app object id, and a linear search each time made the fake the slowest part."""
        indexes = self.__dict__.setdefault("_indexes", {})  # a frozen dataclass's own cache
        if (collection, key) not in indexes:
            items: tuple[JsonObject, ...] = getattr(self, collection)
            indexes[(collection, key)] = {item[key]: item for item in reversed(items)}  # the first one wins
        index: dict[str, JsonObject] = indexes[(collection, key)]
        return index


def _first(items: tuple[JsonObject, ...], key: str, value: str) -> JsonObject | None:
    wanted = value.lower()
    return next((item for item in items if item[key] == wanted), None)


def sample_snapshot_path() -> Path:
    """The bundled sample tenant (Northwind Operations), a package data file beside this module (not
    looked up through importlib.resources, whose import is ~8 ms of `secretbot diagnose --snapshot`)."""
    return Path(__file__).with_name("sample_tenant.json")


def load_snapshot(path: str | Path) -> Snapshot:
    """Read and validate a snapshot file. Raises `SnapshotError` (one line) on any problem."""
    shown = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SnapshotError(f"snapshot {shown} is not UTF-8 text") from None
    except OSError as exc:
        raise SnapshotError(f"cannot read snapshot {shown}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SnapshotError(
            f"snapshot {shown} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    try:
        return parse_snapshot(data)
    except SnapshotError as exc:
        raise SnapshotError(f"snapshot {shown}: {exc}") from None


def parse_snapshot(data: object) -> Snapshot:
    """Validate decoded JSON (an object, or a bare array of applications) into a `Snapshot`."""
    if isinstance(data, list):
        data = {"applications": data}
    if not isinstance(data, dict):
        raise SnapshotError(f"a snapshot must be a JSON object or array, not {describe(data)}")
    _check_keys(data)
    applications = _entities(data, "applications", APPLICATION)
    deleted = _entities(data, "deletedApplications", APPLICATION)
    service_principals = _entities(data, "servicePrincipals", SERVICE_PRINCIPAL)
    _check_unique(applications + deleted, "appId", "applications and deletedApplications")
    _check_unique(applications + deleted, "id", "applications and deletedApplications")
    _check_unique(service_principals, "appId", "servicePrincipals")
    for index, (app, _) in enumerate(deleted):
        if parse_datetime(app.get("deletedDateTime")) is None:
            where = _label(f"deletedApplications[{index}]", app)
            raise SnapshotError(
                f"{where} deletedDateTime {describe(app.get('deletedDateTime'))} is not an ISO 8601 time"
            )
    tenant = _tenant(data.get("tenant"), applications, service_principals)
    users = _directory_objects(data, "users", USER)
    groups = _directory_objects(data, "groups", GROUP)
    policies, assignments = _policies(data, {app["id"] for app, _ in applications})
    return Snapshot(
        tenant=tenant,
        applications=tuple(app for app, _ in applications),
        service_principals=tuple(sp for sp, _ in service_principals),
        deleted_applications=tuple(app for app, _ in deleted),
        owners=_owners(data.get("owners", {}), {app["id"] for app, _ in applications + deleted}),
        federated_credentials={app["id"]: fics for app, fics in applications + deleted if fics},
        sign_ins=_records(data, "signIns", SIGN_IN_BETA, "createdDateTime"),
        directory_audits=_records(data, "directoryAudits", DIRECTORY_AUDIT, "activityDateTime"),
        has_sign_ins="signIns" in data,
        has_audits="directoryAudits" in data,
        tenant_synthetic="tenant" not in data,
        has_service_principals="servicePrincipals" in data,
        has_deleted_applications="deletedApplications" in data,
        users=tuple(users),
        groups=tuple(groups),
        group_members=_group_members(data),
        default_app_management_policy=_default_policy(data.get("defaultAppManagementPolicy")),
        app_management_policies=tuple(policies),
        policy_assignments=assignments,
    )


def _check_keys(data: dict[str, Any]) -> None:
    # Unknown keys are refused so a typo ("signins") cannot silently mean "no sign-in access".
    # Keys starting with "$" or "_" are left for comments and metadata.
    for key in data:
        if key not in KNOWN_KEYS and not key.startswith(("$", "_")):
            known = ", ".join(sorted(KNOWN_KEYS))
            raise SnapshotError(f"unknown snapshot key {key!r} (known keys: {known})")


def _array(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise SnapshotError(f"{key} must be an array, not {describe(value)}")
    return value


def _object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SnapshotError(f"{where} must be an object, not {describe(value)}")
    return value


def _label(where: str, obj: dict[str, Any]) -> str:
    name = obj.get("displayName")
    return f"{where} ({name!r})" if isinstance(name, str) and name else where


def _guid(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if value is None:
        raise SnapshotError(f"{_label(where, obj)} has no {key}")
    if not is_guid(value):
        raise SnapshotError(f"{_label(where, obj)} {key} {describe(value)} is not a GUID")
    return str(value).lower()  # Graph sends GUIDs in lower case


def _entities(data: dict[str, Any], key: str, entity: EntityType) -> list[tuple[JsonObject, tuple[JsonObject, ...]]]:
    """Applications or service principals, each with its federated credentials split off."""
    result = []
    for index, raw in enumerate(_array(data, key)):
        where = f"{key}[{index}]"
        obj = _object(raw, where)
        clean = entity.keep(obj)
        clean["appId"] = _guid(obj, "appId", where)
        clean["id"] = _guid(obj, "id", where)
        for name in ("passwordCredentials", "keyCredentials"):
            clean[name] = _credentials(obj.get(name), f"{_label(where, obj)} {name}")
        fics = _fics(obj.get("federatedIdentityCredentials"), f"{_label(where, obj)} federatedIdentityCredentials")
        result.append((clean, fics))
    return result


def _credentials(value: object, where: str) -> list[JsonObject]:
    # Graph documents both collections as not nullable: absent or null is served as [].
    if value is None:
        return []
    if not isinstance(value, list):
        raise SnapshotError(f"{where} must be an array, not {describe(value)}")
    result = []
    for index, raw in enumerate(value):
        item = dict(_object(raw, f"{where}[{index}]"))
        item["keyId"] = _guid(item, "keyId", f"{where}[{index}]")
        for stamp in ("startDateTime", "endDateTime"):
            if item.get(stamp) is not None and parse_datetime(item[stamp]) is None:
                raise SnapshotError(f"{where}[{index}] {stamp} {describe(item[stamp])} is not an ISO 8601 time")
        result.append(item)
    return result


def _fics(value: object, where: str) -> tuple[JsonObject, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise SnapshotError(f"{where} must be an array, not {describe(value)}")
    result = []
    for index, raw in enumerate(value):
        item = FEDERATED_IDENTITY_CREDENTIAL.keep(_object(raw, f"{where}[{index}]"))
        item["id"] = _guid(item, "id", f"{where}[{index}]")
        result.append(item)
    return tuple(result)


def _check_unique(items: list[tuple[JsonObject, Any]], key: str, where: str) -> None:
    seen: set[str] = set()
    for obj, _ in items:
        if obj[key] in seen:
            raise SnapshotError(f"{key} {obj[key]} appears twice in {where}")
        seen.add(obj[key])


def _owners(value: object, app_ids: set[str]) -> dict[str, tuple[JsonObject, ...]]:
    mapping = _object(value, "owners")
    result = {}
    for app_object_id, raw_list in mapping.items():
        key = str(app_object_id).lower()
        if key not in app_ids:
            raise SnapshotError(f"owners key {app_object_id!r} is not the object id of an application")
        if not isinstance(raw_list, list):
            raise SnapshotError(f"owners[{app_object_id!r}] must be an array, not {describe(raw_list)}")
        result[key] = tuple(_owner(raw, f"owners[{app_object_id!r}][{i}]") for i, raw in enumerate(raw_list))
    return result


def _owner(raw: object, where: str) -> JsonObject:
    obj = _object(raw, where)
    odata_type = obj.get("@odata.type", USER.odata_type)
    entity = OWNER_TYPES.get(odata_type)
    if entity is None:
        raise SnapshotError(f"{where} @odata.type {describe(odata_type)} is not a user or servicePrincipal")
    owner = {"@odata.type": odata_type, **entity.keep(obj)}
    owner["id"] = _guid(obj, "id", where)
    return owner


def _records(data: dict[str, Any], key: str, entity: EntityType, stamp: str) -> tuple[JsonObject, ...]:
    """Sign-ins or audit entries: each needs an id and a readable timestamp to filter and sort on."""
    result = []
    for index, raw in enumerate(_array(data, key)):
        where = f"{key}[{index}]"
        obj = entity.keep(_object(raw, where))
        if not isinstance(obj.get("id"), str) or not obj["id"]:
            raise SnapshotError(f"{where} has no id")
        if parse_datetime(obj.get(stamp)) is None:
            raise SnapshotError(f"{where} {stamp} {describe(obj.get(stamp))} is not an ISO 8601 time")
        result.append(obj)
    return tuple(result)


def _tenant(
    value: object,
    applications: list[tuple[JsonObject, Any]],
    service_principals: list[tuple[JsonObject, Any]],
) -> JsonObject:
    if value is None:
        return _synthetic_tenant([app for app, _ in applications], [sp for sp, _ in service_principals])
    obj = _object(value, "tenant")
    tenant_id = _guid(obj, "id", "tenant")
    domains = [_domain_name(item, f"tenant.domains[{i}]") for i, item in enumerate(_domain_list(obj))]
    default = obj.get("defaultDomain")
    if default is None:
        default = domains[0] if domains else FALLBACK_DOMAIN
    if not isinstance(default, str) or not default:
        raise SnapshotError(f"tenant.defaultDomain must be a domain name, not {describe(default)}")
    if default.lower() not in (name.lower() for name in domains):
        domains.insert(0, default)
    name = obj.get("displayName")
    return {
        "id": tenant_id,
        "displayName": name if isinstance(name, str) else default,
        "defaultDomain": default,
        "domains": domains,
    }


def _domain_list(obj: dict[str, Any]) -> list[Any]:
    value = obj.get("domains", [])
    if not isinstance(value, list):
        raise SnapshotError(f"tenant.domains must be an array, not {describe(value)}")
    return value


def _domain_name(item: object, where: str) -> str:
    # Domains may be plain names or Graph verifiedDomain objects ({"name": …}).
    name = item.get("name") if isinstance(item, dict) else item
    if not isinstance(name, str) or not name:
        raise SnapshotError(f"{where} must be a domain name, not {describe(item)}")
    return name


def _synthetic_tenant(applications: list[JsonObject], service_principals: list[JsonObject]) -> JsonObject:
    """A stable tenant for exports that carry none (e.g. `az ad app list --all`).

    The id is the owner organization of this tenant's own service principals when known, else a
    uuid5 of the most common publisherDomain, else a fixed invented GUID: the same export always
    gets the same tenant.
    """
    app_ids = {app["appId"] for app in applications}
    owner_orgs = Counter(
        str(sp["appOwnerOrganizationId"]).lower()
        for sp in service_principals
        if sp["appId"] in app_ids and is_guid(sp.get("appOwnerOrganizationId"))
    )
    publisher_domains = Counter(
        app["publisherDomain"] for app in applications if isinstance(app.get("publisherDomain"), str)
    )
    domain = publisher_domains.most_common(1)[0][0] if publisher_domains else FALLBACK_DOMAIN
    if owner_orgs:
        tenant_id = owner_orgs.most_common(1)[0][0]
    elif publisher_domains:
        tenant_id = str(uuid.uuid5(_TENANT_NAMESPACE, domain.lower()))
    else:
        tenant_id = FALLBACK_TENANT_ID
    return {"id": tenant_id, "displayName": domain, "defaultDomain": domain, "domains": [domain]}


def _directory_objects(data: dict[str, Any], key: str, entity: EntityType) -> list[JsonObject]:
    result = []
    for index, raw in enumerate(_array(data, key)):
        obj = _object(raw, f"{key}[{index}]")
        clean = entity.keep(obj)
        clean["id"] = _guid(obj, "id", f"{key}[{index}]")
        result.append(clean)
    _check_unique([(obj, None) for obj in result], "id", key)
    return result


def _group_members(data: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """Each group's `members` (Graph's navigation property, as `$expand=members` shows it), split off."""
    result = {}
    for index, raw in enumerate(_array(data, "groups")):
        group = _object(raw, f"groups[{index}]")
        members = group.get("members", [])
        if not isinstance(members, list):
            raise SnapshotError(
                f"{_label(f'groups[{index}]', group)} members must be an array, not {describe(members)}"
            )
        where = f"{_label(f'groups[{index}]', group)} members"
        ids = tuple(_guid(_object(member, f"{where}[{i}]"), "id", f"{where}[{i}]") for i, member in enumerate(members))
        result[str(group["id"]).lower()] = ids
    return result


def _default_policy(value: object) -> JsonObject:
    if value is None:
        return dict(DISABLED_DEFAULT_POLICY)
    policy = TENANT_APP_MANAGEMENT_POLICY.keep(_object(value, "defaultAppManagementPolicy"))
    policy["id"] = DEFAULT_POLICY_ID
    _check_restrictions(policy.get("applicationRestrictions"), "defaultAppManagementPolicy.applicationRestrictions")
    return {**DISABLED_DEFAULT_POLICY, **policy}


def _policies(data: dict[str, Any], app_ids: set[str]) -> tuple[list[JsonObject], dict[str, str]]:
    """appManagementPolicy objects, with `appliesTo` (as `$expand=appliesTo` shows it) split off into
    an application object id → policy id map. Graph assigns at most one policy to an application."""
    policies, assignments = [], {}
    for index, raw in enumerate(_array(data, "appManagementPolicies")):
        where = f"appManagementPolicies[{index}]"
        obj = _object(raw, where)
        policy = APP_MANAGEMENT_POLICY.keep(obj)
        policy["id"] = _guid(obj, "id", where)
        _check_restrictions(policy.get("restrictions"), f"{_label(where, obj)} restrictions")
        applies_to = obj.get("appliesTo", [])
        if not isinstance(applies_to, list):
            raise SnapshotError(f"{_label(where, obj)} appliesTo must be an array, not {describe(applies_to)}")
        for i, target in enumerate(applies_to):
            app_id = _guid(_object(target, f"{where}.appliesTo[{i}]"), "id", f"{where}.appliesTo[{i}]")
            if app_id not in app_ids:
                raise SnapshotError(f"{where}.appliesTo[{i}] {app_id} is not the object id of an application")
            if app_id in assignments:
                raise SnapshotError(f"application {app_id} has two app management policies (Graph allows one)")
            assignments[app_id] = policy["id"]
        policies.append(policy)
    return policies, assignments


def _check_restrictions(value: object, where: str) -> None:
    if value is None:
        return
    restrictions = _object(value, where)
    for name in ("passwordCredentials", "keyCredentials"):
        items = restrictions.get(name, [])
        if not isinstance(items, list):
            raise SnapshotError(f"{where}.{name} must be an array, not {describe(items)}")
        for i, item in enumerate(items):
            rule = _object(item, f"{where}.{name}[{i}]")
            lifetime = rule.get("maxLifetime")
            if lifetime is not None and parse_duration(lifetime) is None:
                raise SnapshotError(f"{where}.{name}[{i}] maxLifetime {describe(lifetime)} is not an ISO 8601 duration")
