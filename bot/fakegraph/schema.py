"""The Graph property sets the fake serves, per entity type.

Written from Graph's published resource pages (v1.0 and, for sign-ins, beta), not derived from
msgraph-sdk's models: the honesty tests deserialize the fake's answers with msgraph-sdk, so the two
lists check each other. Navigation properties (owners, federatedIdentityCredentials, …) are left
out on purpose: Graph never returns them inline, only from their own endpoints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.fakegraph.values import JsonObject


@dataclass(frozen=True)
class EntityType:
    """A Graph entity type: its structural properties and its non-nullable collections."""

    name: str  # e.g. "application"; the OData type is "#microsoft.graph." + name
    properties: frozenset[str]
    # Collections Graph documents as "Not nullable": an absent one is served as [] (never null).
    collections: frozenset[str] = frozenset()
    # Complex properties whose own keys are trimmed too (see _LOCK_CONFIGURATION).
    nested: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @property
    def odata_type(self) -> str:
        return f"#microsoft.graph.{self.name}"

    def keep(self, obj: JsonObject) -> JsonObject:
        """A copy of `obj` holding only this type's properties (drops typos, beta-only and @odata keys)."""
        kept = {key: value for key, value in obj.items() if key in self.properties}
        for name, allowed in self.nested.items():
            if isinstance(kept.get(name), dict):
                kept[name] = {key: value for key, value in kept[name].items() if key in allowed}
        return kept


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Live v1.0 responses (and so `az ad app list`) carry an undocumented `identifierUris` flag here;
# it is neither in the v1.0 resource page nor in msgraph-sdk's model, so it is dropped on load.
_LOCK_CONFIGURATION = _names(
    "allProperties credentialsWithUsageSign credentialsWithUsageVerify isEnabled tokenEncryptionKeyId"
)

APPLICATION = EntityType(
    "application",
    _names(
        """
        addIns api appId applicationTemplateId appRoles authenticationBehaviors certification
        createdByAppId createdDateTime defaultRedirectUri deletedDateTime description
        disabledByMicrosoftStatus displayName groupMembershipClaims id identifierUris info
        isDeviceOnlyAuthSupported isDisabled isFallbackPublicClient keyCredentials
        nativeAuthenticationApisEnabled notes oauth2RequirePostResponse optionalClaims
        parentalControlSettings passwordCredentials publicClient publisherDomain
        requestSignatureVerification requiredResourceAccess samlMetadataUrl serviceManagementReference
        servicePrincipalLockConfiguration signInAudience spa tags tokenEncryptionKeyId uniqueName
        verifiedPublisher web
        """
    ),
    _names("addIns appRoles identifierUris keyCredentials passwordCredentials requiredResourceAccess tags"),
    {"servicePrincipalLockConfiguration": _LOCK_CONFIGURATION},
)

SERVICE_PRINCIPAL = EntityType(
    "servicePrincipal",
    _names(
        """
        accountEnabled addIns alternativeNames appDescription appDisplayName appId applicationTemplateId
        appOwnerOrganizationId appRoleAssignmentRequired appRoles createdByAppId customSecurityAttributes
        deletedDateTime description disabledByMicrosoftStatus displayName homepage id info isDisabled
        keyCredentials loginUrl logoutUrl notes notificationEmailAddresses oauth2PermissionScopes
        passwordCredentials preferredSingleSignOnMode preferredTokenSigningKeyThumbprint replyUrls
        resourceSpecificApplicationPermissions samlSingleSignOnSettings servicePrincipalNames
        servicePrincipalType signInAudience tags tokenEncryptionKeyId verifiedPublisher
        """
    ),
    _names(
        """
        addIns alternativeNames appRoles keyCredentials notificationEmailAddresses
        oauth2PermissionScopes passwordCredentials replyUrls servicePrincipalNames tags
        """
    ),
)

# The user properties an owner listing can carry (the default set plus common directory fields).
USER = EntityType(
    "user",
    _names(
        """
        accountEnabled businessPhones city companyName country createdDateTime deletedDateTime department
        displayName employeeId givenName id jobTitle mail mailNickname mobilePhone officeLocation
        onPremisesSyncEnabled preferredLanguage surname usageLocation userPrincipalName userType
        """
    ),
    _names("businessPhones"),
)

FEDERATED_IDENTITY_CREDENTIAL = EntityType(
    "federatedIdentityCredential",
    _names("audiences description id issuer name subject"),
    _names("audiences"),
)

# The v1.0 signIn: none of the service-principal fields (signInEventTypes, clientCredentialType,
# servicePrincipalCredentialKeyId, …) exist here, which is why the bot reads sign-ins from beta.
SIGN_IN_V1 = EntityType(
    "signIn",
    _names(
        """
        appDisplayName appId appliedConditionalAccessPolicies authenticationAppDeviceDetails
        clientAppUsed conditionalAccessStatus correlationId createdDateTime deviceDetail homeTenantId id
        ipAddress isInteractive location resourceDisplayName resourceId resourceTenantId riskDetail
        riskEventTypes riskEventTypes_v2 riskLevelAggregated riskLevelDuringSignIn riskState
        servicePrincipalId servicePrincipalName status userAgent userDisplayName userId userPrincipalName
        """
    ),
)

SIGN_IN_BETA = EntityType(
    "signIn",
    SIGN_IN_V1.properties
    | _names(
        """
        appliedEventListeners appOwnerTenantId appTokenProtectionStatus
        authenticationAppPolicyEvaluationDetails authenticationContextClassReferences
        authenticationDetails authenticationMethodsUsed authenticationProcessingDetails
        authenticationProtocol authenticationRequirement authenticationRequirementPolicies
        autonomousSystemNumber azureResourceId clientCredentialType conditionalAccessAudiences
        crossTenantAccessType federatedCredentialId flaggedForReview globalSecureAccessIpAddress
        homeTenantName incomingTokenType ipAddressFromResourceProvider isTenantRestricted
        isThroughGlobalSecureAccess managedServiceIdentity mfaDetail networkLocationDetails
        originalRequestId originalTransferMethod privateLinkDetails processingTimeInMilliseconds
        resourceOwnerTenantId resourceServicePrincipalId servicePrincipalCredentialKeyId
        servicePrincipalCredentialThumbprint sessionId sessionLifetimePolicies signInEventTypes
        signInIdentifier signInIdentifierType signInTokenProtectionStatus tokenIssuerName
        tokenIssuerType tokenProtectionStatusDetails uniqueTokenIdentifier userType
        """
    ),
)

DIRECTORY_AUDIT = EntityType(
    "directoryAudit",
    _names(
        """
        activityDateTime activityDisplayName additionalDetails category correlationId id initiatedBy
        loggedByService operationType result resultReason targetResources
        """
    ),
    _names("additionalDetails targetResources"),
)

ORGANIZATION = EntityType(
    "organization",
    _names("id displayName tenantType verifiedDomains"),
    _names("verifiedDomains"),
)

# Owners are directoryObjects: users or service principals, told apart by @odata.type.
OWNER_TYPES: dict[str, EntityType] = {USER.odata_type: USER, SERVICE_PRINCIPAL.odata_type: SERVICE_PRINCIPAL}
DIRECTORY_OBJECT = EntityType("directoryObject", USER.properties | SERVICE_PRINCIPAL.properties)

GROUP = EntityType(
    "group",
    _names(
        """
        classification createdDateTime deletedDateTime description displayName groupTypes id mail
        mailEnabled mailNickname membershipRule securityEnabled visibility
        """
    ),
    _names("groupTypes"),
)

# App management policies (v1.0 appManagementPolicy and tenantAppManagementPolicy). Their restriction
# lists (passwordCredentials, keyCredentials) are served as given; `appliesTo` is a navigation
# property, kept in the snapshot only to know which applications a policy is assigned to.
APP_MANAGEMENT_POLICY = EntityType(
    "appManagementPolicy",
    _names("description displayName id isEnabled restrictions"),
)
TENANT_APP_MANAGEMENT_POLICY = EntityType(
    "tenantAppManagementPolicy",
    _names("applicationRestrictions description displayName id isEnabled servicePrincipalRestrictions"),
)

# The beta report of each credential's last sign-in (reports/appCredentialSignInActivities).
APP_CREDENTIAL_SIGN_IN_ACTIVITY = EntityType(
    "appCredentialSignInActivity",
    _names(
        """
        appId appObjectId createdDateTime credentialOrigin expirationDateTime id keyId keyType keyUsage
        resourceId servicePrincipalObjectId signInActivity
        """
    ),
)
