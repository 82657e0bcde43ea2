"""Reads owned by the portal: tokens and the scope a token grants."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.postgres.aggregates import ArrayAgg
from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import OuterRef, Q, QuerySet, Value
from django.utils import timezone

from billing.models import Customer, Entitlement, SubscriptionItem
from core.models import Organization
from portal.models import PortalSettings, PortalToken
from portal.tokens import PortalTokenInvalid, token_unsign


@dataclass
class PortalScope:
    """What one portal credential may see: one organization, one customer (or one bare subject), the
    subjects whose usage is shown, and optionally a subset of meters."""

    organization: Organization
    token: PortalToken
    customer: Customer | None
    subjects: list[str] = field(default_factory=list)
    # The features of the customer's current subscription (plan and add-on items active now) and of its
    # live entitlements; None for a token without a customer (a bare subject), which has no subscription.
    feature_keys: frozenset[str] | None = None

    def feature_visible(self, key: str) -> bool:
        return self.feature_keys is None or key in self.feature_keys

    @property
    def allowed_meter_slugs(self) -> list[str]:
        return list(self.token.allowed_meter_slugs)

    def meter_allowed(self, slug: str) -> bool:
        return not self.token.allowed_meter_slugs or slug in self.token.allowed_meter_slugs

    @property
    def customer_id(self) -> str:
        return self.token.customer_id or ""

    @property
    def usage_customer_id(self) -> str:
        """The customer to group usage by: set for customer-wide tokens, empty for one-subject tokens."""
        return "" if self.token.subject else (self.token.customer_id or "")


def portal_token_list(
    *, organization: Organization, subject: str = "", include_inactive: bool = True, limit: int = 100
) -> QuerySet[PortalToken]:
    qs = PortalToken.objects.filter(organization=organization)
    if subject:
        qs = qs.filter(subject=subject)
    if not include_inactive:
        qs = qs.filter(invalidated_at__isnull=True, expires_at__gt=timezone.now())
    return qs.order_by("-created_at", "-id")[:limit]


def portal_token_verify(*, raw: str) -> PortalToken:
    """The live token row for a token string (one query). Raises PortalTokenInvalid."""
    claims = token_unsign(raw)
    return portal_token_check(organization_id=claims.organization_id, token_id=claims.token_id)


def _live(prefix: str, now) -> Q:
    return Q(**{f"{prefix}active_from__lte": now}) & (
        Q(**{f"{prefix}active_to__isnull": True}) | Q(**{f"{prefix}active_to__gt": now})
    )


def _customer_feature_subqueries() -> dict[str, ArraySubquery]:
    """The feature keys of the token's customer, as two array subqueries of the token's one query: the
    items (plan and add-ons) of the subscription active now, and the live entitlements (a grant-only or
    overridden entitlement has no item)."""
    now = timezone.now()
    items = (
        SubscriptionItem.objects.filter(
            organization_id=OuterRef("organization_id"), subscription__customer_id=OuterRef("customer_id")
        )
        .filter(_live("subscription__", now), _live("", now))
        .exclude(feature_key="")
        .values("feature_key")
    )
    entitlements = (
        Entitlement.objects.filter(
            organization_id=OuterRef("organization_id"),
            customer_id=OuterRef("customer_id"),
            deleted_at__isnull=True,
        )
        .filter(_live("", now))
        .values("feature_key")
    )
    return {"item_features": ArraySubquery(items), "entitlement_features": ArraySubquery(entitlements)}


def portal_token_check(*, organization_id: str, token_id: str) -> PortalToken:
    """The live token with its organization, customer, the customer's subject keys and the features of
    its current subscription and entitlements: one query."""
    row = (
        PortalToken.objects.select_related("organization", "customer")
        .annotate(
            subject_keys=ArrayAgg(
                "customer__subjects__subject_key", distinct=True, default=Value([]), ordering=()
            ),
            **_customer_feature_subqueries(),
        )
        .filter(id=token_id, organization_id=organization_id)
        .first()
    )
    if row is None:
        raise PortalTokenInvalid("This portal token is not known.")
    if row.invalidated_at is not None:
        raise PortalTokenInvalid("This portal token has been invalidated.")
    if row.expires_at <= timezone.now():
        raise PortalTokenInvalid("This portal token has expired.")
    return row


def portal_scope_for_token(*, token: PortalToken) -> PortalScope:
    """The scope of a token from `portal_token_check` (no further query). A customer from another
    organization or a deleted one ends the token's access."""
    customer = token.customer if token.customer_id else None
    if customer is not None and (customer.organization_id != token.organization_id or customer.deleted_at):
        raise PortalTokenInvalid("The customer of this portal token no longer exists.")
    if token.subject:
        subjects = [token.subject]
    elif customer is not None:
        subjects = sorted(k for k in getattr(token, "subject_keys", None) or [] if k)
    else:
        subjects = []
    feature_keys = None
    if customer is not None:
        feature_keys = frozenset(
            [
                *(getattr(token, "item_features", None) or []),
                *(getattr(token, "entitlement_features", None) or []),
            ]
        )
    return PortalScope(
        organization=token.organization,
        token=token,
        customer=customer,
        subjects=subjects,
        feature_keys=feature_keys,
    )


def portal_settings_get(*, organization: Organization) -> PortalSettings:
    """The organization's portal settings (self-service off, no plans, when never saved). One query."""
    found = PortalSettings.objects.filter(organization=organization).first()
    return found or PortalSettings(organization=organization)
