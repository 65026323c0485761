"""The Graph calls a rotation makes, through msgraph-sdk: addPassword and removePassword, the app
management policies that cap a new secret's lifetime, and the approver checks (a chat user's email
to an Entra user, transitive group membership).

msgraph-sdk because these are single requests whose request builders and models pay for themselves
(docs/decisions.md). Its retry handler would resend a POST on 429/503/504 and could add a second
secret, so the writes go out with retries off; what went wrong comes back as a `GraphWriteError`
(bot.credential_types) and the caller decides, reading the app's credentials before adding again.
The reads keep the SDK's retries (they change nothing).

A new secret's value goes from the SDK's answer straight into a `SecretValue`; it is never logged.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

import httpx
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.generated.applications.item.add_password.add_password_post_request_body import (
    AddPasswordPostRequestBody,
)
from msgraph.generated.applications.item.remove_password.remove_password_post_request_body import (
    RemovePasswordPostRequestBody,
)
from msgraph.generated.models.app_credential_restriction_type import AppCredentialRestrictionType
from msgraph.generated.models.app_management_restriction_state import AppManagementRestrictionState
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_credential import PasswordCredential
from msgraph.generated.models.password_credential_configuration import PasswordCredentialConfiguration
from msgraph.generated.users.item.check_member_groups.check_member_groups_post_request_body import (
    CheckMemberGroupsPostRequestBody,
)
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph.graph_service_client import GraphServiceClient

from bot.credential_types import (
    DirectoryUser,
    GraphWriteError,
    NewPassword,
    PasswordPolicy,
    SecretValue,
    WriteOutcomeUnknown,
    WriteRefused,
    WriteThrottled,
)
from bot.domain import DirectoryError, DirectoryUnavailable, PermissionDenied, Throttled

WRITE_PERMISSION = "Application.ReadWrite.OwnedBy (with the bot as an owner of the app)"
POLICY_PERMISSION = "Policy.Read.All"
MEMBERSHIP_PERMISSION = "User.Read.All and GroupMember.Read.All"
USER_PERMISSION = "User.Read.All"
DEFAULT_POLICY_ID = "00000000-0000-0000-0000-000000000000"
MAX_CHECKED_GROUPS = 20  # checkMemberGroups takes at most 20 group ids per request
_NO_RETRY: RequestConfiguration[Any] = RequestConfiguration(
    options=[RetryHandlerOption(max_retries=0, should_retry=False)]
)
_EMAIL = re.compile(r"[^@\s']+@[^@\s']+\.[^@\s']+")  # no quote: it would end the $filter literal

log = logging.getLogger(__name__)
T = TypeVar("T")


class ObjectNotFound(DirectoryError):
    """Graph has no such object (404): the app or user was deleted, or the id is wrong."""


class GraphWrites:
    """Rotation's Graph calls over one msgraph-sdk client (`bot.graph.build_graph_client`)."""

    def __init__(self, client: GraphServiceClient, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self._client = client
        self._clock = clock

    # --- writes -----------------------------------------------------------------------------------

    async def add_password(self, object_id: str, display_name: str, end: datetime) -> NewPassword:
        """addPassword on the application with this object id, sent exactly once.

        Raises `WriteThrottled` (429: nothing added), `WriteOutcomeUnknown` (5xx or no answer: it may
        have been added; look for `display_name` among the app's secrets before adding again) or
        `WriteRefused` (a policy, a missing permission, no such app).
        """
        body = AddPasswordPostRequestBody(
            password_credential=PasswordCredential(display_name=display_name, end_date_time=end)
        )
        builder = self._client.applications.by_application_id(object_id).add_password
        answer = await _write("addPassword", builder.post(body, _NO_RETRY))
        if answer is None or answer.secret_text is None or answer.key_id is None:
            raise GraphWriteError("Microsoft Graph answered addPassword without the new secret")
        added = NewPassword(
            object_id=object_id,
            key_id=str(answer.key_id).lower(),
            display_name=answer.display_name or display_name,
            hint=answer.hint or "",
            start=_utc(answer.start_date_time) or self._clock(),
            end=_utc(answer.end_date_time) or end,
            value=SecretValue(answer.secret_text),
        )
        answer.secret_text = None  # the SDK model's repr would show it
        log.info("graph addPassword app=%s key_id=%s ends=%s", object_id, added.key_id, added.end.isoformat())
        return added

    async def remove_password(self, object_id: str, key_id: str) -> None:
        """removePassword, sent once. A key the app no longer has counts as removed (a repeat after a
        lost answer), which is checked by reading the app's secrets when Graph refuses."""
        body = RemovePasswordPostRequestBody(key_id=UUID(key_id))
        builder = self._client.applications.by_application_id(object_id).remove_password
        try:
            await _write("removePassword", builder.post(body, _NO_RETRY))
        except WriteRefused as refused:
            if refused.status != 400 or key_id.lower() in await self.password_key_ids(object_id):
                raise
            log.info("graph removePassword app=%s key_id=%s: already gone", object_id, key_id)
            return
        log.info("graph removePassword app=%s key_id=%s", object_id, key_id)

    async def password_key_ids(self, object_id: str) -> dict[str, str | None]:
        """The app's client secrets right now: keyId → displayName (how a lost addPassword is found)."""
        app = await _read(
            "the application's secrets",
            self._client.applications.by_application_id(object_id).get(_select("id", "passwordCredentials")),
        )
        secrets = (app.password_credentials if app else None) or []
        return {str(c.key_id).lower(): c.display_name for c in secrets if c.key_id is not None}

    async def application_tags(self, object_id: str) -> tuple[str, ...]:
        """The app's Entra tags: which apps may be rotated, and where their secret is kept."""
        app = await _read(
            "the application", self._client.applications.by_application_id(object_id).get(_select("id", "tags"))
        )
        return tuple((app.tags if app else None) or ())

    # --- app management policies ----------------------------------------------------------------

    async def password_policy(self, object_id: str) -> PasswordPolicy:
        """The restrictions on new client secrets for this app: its assigned policy if it has one
        (which replaces the tenant default), else the tenant default when that is enabled.

        Without Policy.Read.All the answer is "no known limit" with `missing_permission` set: Graph
        still enforces the policy on addPassword, and its refusal says why.
        """
        app_builder = self._client.applications.by_application_id(object_id)
        try:
            app, assigned, default = await asyncio.gather(
                _read("the application", app_builder.get(_select("id", "createdDateTime"))),
                _read("the app's management policy", app_builder.app_management_policies.get()),
                _read(
                    "the tenant's default app management policy",
                    self._client.policies.default_app_management_policy.get(),
                ),
            )
        except PermissionDenied:
            log.warning("graph: cannot read app management policies (needs %s)", POLICY_PERMISSION)
            return PasswordPolicy(missing_permission=POLICY_PERMISSION)
        created = _utc(app.created_date_time) if app else None
        policies = (assigned.value if assigned else None) or []
        if policies:
            policy = policies[0]  # Graph assigns at most one
            restrictions = policy.restrictions.password_credentials if policy.restrictions else None
            rules = (restrictions or []) if policy.is_enabled is not False else []
            return _policy_from(rules, policy.id, created)
        if default is None or not default.is_enabled or default.application_restrictions is None:
            return PasswordPolicy()
        return _policy_from(default.application_restrictions.password_credentials or [], DEFAULT_POLICY_ID, created)

    # --- approvers --------------------------------------------------------------------------------

    async def user_by_email(self, email: str) -> DirectoryUser | None:
        """The Entra user whose mail (else userPrincipalName) is `email`, or None (none, or not one)."""
        if _EMAIL.fullmatch(email) is None:
            return None
        for field in ("mail", "userPrincipalName"):
            query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
                filter=f"{field} eq '{email}'", select=["id", "displayName", "mail", "userPrincipalName"], top=2
            )
            page = await _read("users", self._client.users.get(RequestConfiguration(query_parameters=query)))
            users = (page.value if page else None) or []
            if len(users) == 1 and users[0].id:
                user = users[0]
                return DirectoryUser(str(user.id).lower(), user.display_name, user.mail, user.user_principal_name)
            if len(users) > 1:
                log.warning("graph: %d users share the %s of one chat user; matching none", len(users), field)
                return None
        return None

    async def member_groups(self, user_id: str, group_ids: list[str]) -> set[str]:
        """Which of `group_ids` the user belongs to, directly or through nested groups (checkMemberGroups)."""
        found: set[str] = set()
        for start in range(0, len(group_ids), MAX_CHECKED_GROUPS):
            chunk = group_ids[start : start + MAX_CHECKED_GROUPS]
            body = CheckMemberGroupsPostRequestBody(group_ids=chunk)
            builder = self._client.users.by_user_id(user_id).check_member_groups
            try:
                answer = await _read("group membership", builder.post(body))
            except ObjectNotFound:
                return set()  # not a user of this tenant: a member of nothing
            found |= {group.lower() for group in (answer.value if answer else None) or []}
        return found

    async def is_member_transitively(self, user_id: str, group_id: str) -> bool:
        return group_id.lower() in await self.member_groups(user_id, [group_id])


# --- helpers ----------------------------------------------------------------------------------------


def _select(*fields: str) -> RequestConfiguration[Any]:
    from msgraph.generated.applications.item.application_item_request_builder import ApplicationItemRequestBuilder

    query = ApplicationItemRequestBuilder.ApplicationItemRequestBuilderGetQueryParameters(select=list(fields))
    return RequestConfiguration(query_parameters=query)


async def _write(operation: str, call: Awaitable[T]) -> T:
    try:
        return await call
    except ODataError as error:
        raise _write_error(operation, error) from None
    except httpx.TimeoutException:
        raise WriteOutcomeUnknown(operation, "no answer in time") from None
    except httpx.HTTPError as error:
        raise WriteOutcomeUnknown(operation, f"connection failed: {type(error).__name__}") from None


def _write_error(operation: str, error: ODataError) -> GraphWriteError:
    status = error.response_status_code or 0
    code = (error.error.code if error.error else None) or "unknown"
    message = (error.error.message if error.error else None) or ""
    if status == 429:
        return WriteThrottled(operation, _retry_after(error.response_headers))
    if status >= 500:
        return WriteOutcomeUnknown(operation, f"HTTP {status} {code}", status)
    permission = WRITE_PERMISSION if status == 403 else None
    return WriteRefused(operation, status, code, message, permission)


async def _read(what: str, call: Awaitable[T]) -> T:
    try:
        return await call
    except ODataError as error:
        status = error.response_status_code or 0
        if status == 403:
            permission = {
                "group membership": MEMBERSHIP_PERMISSION,
                "users": USER_PERMISSION,
            }.get(what, POLICY_PERMISSION if "policy" in what else "Application.Read.All")
            raise PermissionDenied(permission, what) from None
        if status == 404:
            raise ObjectNotFound(f"{what}: not found") from None
        if status == 429:
            raise Throttled(_retry_after(error.response_headers) or 1.0) from None
        code = error.error.code if error.error else None
        raise DirectoryUnavailable(f"Microsoft Graph could not read {what} (HTTP {status} {code})") from None
    except httpx.HTTPError as error:
        raise DirectoryUnavailable(
            f"Microsoft Graph could not be reached for {what} ({type(error).__name__})"
        ) from None


def _policy_from(
    rules: list[PasswordCredentialConfiguration], policy_id: str | None, created: datetime | None
) -> PasswordPolicy:
    allowed, lifetime = True, None
    for rule in rules:
        if rule.state is not None and rule.state != AppManagementRestrictionState.Enabled:
            continue
        after = _utc(rule.restrict_for_apps_created_after_date_time)
        if after is not None and created is not None and created <= after:
            continue  # the restriction spares apps created before its date
        if rule.restriction_type == AppCredentialRestrictionType.PasswordAddition:
            allowed = False
        elif rule.restriction_type == AppCredentialRestrictionType.PasswordLifetime and rule.max_lifetime is not None:
            lifetime = rule.max_lifetime if lifetime is None else min(lifetime, rule.max_lifetime)
    if allowed and lifetime is None:
        return PasswordPolicy()
    return PasswordPolicy(passwords_allowed=allowed, max_lifetime=lifetime, policy_id=policy_id)


def _retry_after(headers: dict[str, str] | None) -> float | None:
    value = next((v for k, v in (headers or {}).items() if k.lower() == "retry-after"), None)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
