"""Writes owned by the portal: portal tokens (mint, invalidate), the organization's portal settings, and
a customer's self-service plan change and cancelation (through billing's subscription services, only
where the organization turned self-service on)."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from billing.models import Subscription
from billing.subscriptions.cancel import subscription_cancel
from billing.subscriptions.change import subscription_change
from billing.subscriptions.schedule import NEXT_BILLING_CYCLE
from core.audit import Actor, audit_object, audit_record
from core.errors import Conflict, NotFound, ValidationFailed
from core.models import Organization
from core.querysets import filter_given
from portal import sources
from portal.models import PortalSettings, PortalToken
from portal.selectors import PortalScope, portal_settings_get
from portal.tokens import token_sign

DEFAULT_TTL = timedelta(hours=1)
MIN_TTL = timedelta(seconds=60)
MAX_TTL = timedelta(days=30)


def portal_token_create(
    *,
    organization: Organization,
    subject: str = "",
    customer: str = "",
    allowed_meter_slugs: list[str] | None = None,
    expires_in: timedelta | None = None,
    actor: Actor = None,
) -> tuple[PortalToken, str]:
    """Mint a portal token for a subject or a customer (id or key). Returns (row, token); the token
    string is shown once and never stored."""
    if not subject and not customer:
        raise ValidationFailed("Give a subject or a customer.", field="subject")
    ttl = DEFAULT_TTL if expires_in is None else expires_in
    if not MIN_TTL <= ttl <= MAX_TTL:
        raise ValidationFailed(
            f"expiresIn must be between {int(MIN_TTL.total_seconds())} s and {int(MAX_TTL.total_seconds())} s.",
            field="expiresIn",
        )
    customer_id = ""
    if customer:
        try:
            customer_id = sources.customer_get(organization=organization, id_or_key=customer).id
        except NotFound:
            raise ValidationFailed(f"No such customer: {customer!r}.", field="customer") from None
    if subject:
        owner = sources.customer_id_for_subject(organization=organization, subject_key=subject)
        if customer_id and owner != customer_id:
            raise ValidationFailed(
                f"Subject {subject!r} is not attributed to this customer.", field="subject"
            )
        customer_id = customer_id or (owner or "")
    slugs = sorted(set(allowed_meter_slugs or []))
    unknown = sources.unknown_meter_slugs(organization=organization, slugs=slugs)
    if unknown:
        raise ValidationFailed(f"Unknown meter(s): {', '.join(unknown)}.", field="allowedMeterSlugs")
    with transaction.atomic():
        row = PortalToken.objects.create(
            organization=organization,
            subject=subject,
            customer_id=customer_id or None,
            allowed_meter_slugs=slugs,
            expires_at=timezone.now() + ttl,
            created_by_label=_actor_label(actor),
        )
        audit_object(
            row,
            "portal_token.created",
            actor,
            after={"subject": subject, "customerId": customer_id, "allowedMeterSlugs": slugs},
        )
    token = token_sign(organization_id=organization.id, token_id=row.id, expires_at=row.expires_at)
    return row, token


def portal_token_invalidate(
    *,
    organization: Organization,
    token_id: str = "",
    subject: str = "",
    customer_id: str = "",
    actor: Actor = None,
) -> int:
    """Invalidate tokens by id, subject or customer (at least one). Returns how many were invalidated."""
    if not (token_id or subject or customer_id):
        raise ValidationFailed("Give an id, a subject or a customer.", field="id")
    qs = PortalToken.objects.filter(organization=organization, invalidated_at__isnull=True)
    qs = filter_given(qs, id=token_id or None, subject=subject or None, customer_id=customer_id or None)
    with transaction.atomic():
        ids = list(qs.values_list("id", flat=True))
        count = PortalToken.objects.filter(id__in=ids, invalidated_at__isnull=True).update(
            invalidated_at=timezone.now()
        )
        if count:
            audit_record(
                organization=organization,
                actor=actor,
                action="portal_token.invalidated",
                object_type="portal_token",
                object_id=token_id or subject or customer_id,
                after={"ids": ids},
            )
    return count


def _actor_label(actor: Actor) -> str:
    prefix = getattr(actor, "prefix", None)
    if prefix:
        return f"api_key:{prefix}"
    if isinstance(actor, str):
        return actor
    username = getattr(actor, "get_username", None)
    return f"user:{username()}" if username else ""


# --- settings and self-service --------------------------------------------------------------------------
def portal_settings_update(
    *, organization: Organization, self_service: bool, plan_keys: list[str], actor: Actor = None
) -> PortalSettings:
    """Turn customers' self-service on or off and choose the plans they may change to (audited)."""
    keys = sorted(set(plan_keys))
    with transaction.atomic():
        row, _ = PortalSettings.objects.select_for_update().get_or_create(organization=organization)
        before = {"selfService": row.self_service, "planKeys": list(row.plan_keys)}
        row.self_service, row.plan_keys = self_service, keys
        row.save(update_fields=["self_service", "plan_keys", "updated_at"])
        audit_object(
            row,
            "portal_settings.updated",
            actor,
            before=before,
            after={"selfService": self_service, "planKeys": keys},
        )
    return row


def _self_service_subscription(scope: PortalScope) -> tuple[PortalSettings, Subscription]:
    settings = portal_settings_get(organization=scope.organization)
    if not settings.self_service or scope.customer is None:
        raise Conflict(f"{scope.organization.name} does not offer plan changes in this portal.")
    subscription = sources.subscription_current(
        organization=scope.organization, customer=scope.customer, with_addons=False
    )
    if subscription is None:
        raise Conflict("You have no active subscription.")
    return settings, subscription


def _customer_actor(scope: PortalScope) -> str:
    customer = scope.customer
    assert customer is not None
    return f"portal:customer:{customer.key or customer.id}"


def portal_plan_change(*, scope: PortalScope, plan_key: str) -> tuple[Subscription, Subscription]:
    """The customer changes plan to one the organization allows: an upgrade now, a downgrade at the end
    of the billing period (billing decides, `change_default_timing`). Audited by billing, the customer as
    actor. Returns (old, new)."""
    settings, subscription = _self_service_subscription(scope)
    if plan_key not in settings.plan_keys or plan_key == subscription.plan_key:
        raise ValidationFailed("Pick one of the plans offered.", field="plan")
    return subscription_change(
        organization=scope.organization,
        subscription=subscription,
        plan_key=plan_key,
        timing=None,
        actor=_customer_actor(scope),
    )


def portal_subscription_cancel(*, scope: PortalScope) -> Subscription:
    """The customer cancels at the end of the current billing period (audited by billing)."""
    _settings, subscription = _self_service_subscription(scope)
    if subscription.active_to is not None:
        raise Conflict("Your subscription already ends on " + f"{subscription.active_to:%B %-d, %Y}.")
    return subscription_cancel(
        organization=scope.organization,
        subscription=subscription,
        timing=NEXT_BILLING_CYCLE,
        actor=_customer_actor(scope),
    )
