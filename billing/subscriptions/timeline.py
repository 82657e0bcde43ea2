"""The rows of a subscription's timeline: phases, items (one per rate card, same span), add-on items and
the entitlements of item templates, created from an instant on or clipped at one.

Timeline model: a subscription has phases ([starts_at, ends_at)), each phase has items (one per rate
card, same span), add-ons add items with a quantity, and items with an entitlement template have an
entitlement over the same span. Every change only *clips* (sets an end) or *adds* rows from an instant
on, so the past is never rewritten and invoicing can bill exact spans.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from billing import sources
from billing.models import (
    Customer,
    Entitlement,
    EntitlementType,
    Subscription,
    SubscriptionAddon,
    SubscriptionItem,
    SubscriptionPhase,
)
from billing.subscriptions.schedule import ScheduledPhase, SubscriptionNotActive, phase_schedule
from core.errors import Conflict
from core.models import Organization


def _entitlement_from_template(
    *, organization: Organization, sub: Subscription, item: SubscriptionItem
) -> None:
    tpl = item.entitlement_template
    if not tpl or not item.feature_key:
        return
    etype = tpl.get("type", EntitlementType.METERED)
    feature = sources.feature_spec_get(organization=organization, key_or_id=item.feature_key)
    ent = Entitlement(
        organization=organization,
        customer_id=sub.customer_id,
        subscription=sub,
        feature_id=feature.id,
        feature_key=feature.key,
        type=etype,
        active_from=item.active_from,
        active_to=item.active_to,
        timezone=sub.timezone,
        metadata=dict(tpl.get("metadata") or {}),
    )
    if etype == EntitlementType.STATIC:
        config = tpl.get("config", "{}")
        ent.config = config if isinstance(config, str) else json.dumps(config)
    elif etype == EntitlementType.METERED:
        ent.meter_slug = feature.meter_slug
        ent.meter_group_by_filters = feature.meter_group_by_filters
        ent.is_soft_limit = bool(tpl.get("isSoftLimit", False))
        iar = tpl.get("issueAfterReset")
        ent.issue_after_reset = Decimal(str(iar)) if iar not in (None, "") else None
        ent.issue_after_reset_priority = int(tpl.get("issueAfterResetPriority", 1))
        ent.preserve_overage_at_reset = bool(tpl.get("preserveOverageAtReset", False))
        ent.usage_period_interval = tpl.get("usagePeriod") or item.billing_cadence or sub.billing_cadence
        ent.usage_period_anchor = sub.billing_anchor
        ent.measure_usage_from = item.active_from
    # A live, open-ended entitlement for the feature that is not the subscription's (e.g. created by API)
    # blocks the template: one live entitlement per customer and feature.
    if (
        ent.active_to is None
        and Entitlement.objects.filter(
            organization=organization,
            customer_id=sub.customer_id,
            feature_key=feature.key,
            deleted_at__isnull=True,
            active_to__isnull=True,
        ).exists()
    ):
        raise Conflict(
            f"The customer already has a live entitlement for feature {feature.key!r}.", field="featureKey"
        )
    ent.save()


# What an item copies from its rate card as it is (its key, quantity and entitlement template depend on
# whether a phase or an add-on brings it).
ITEM_FIELDS_FROM_RATE_CARD = (
    "name",
    "feature_key",
    "price",
    "payment_term",
    "billing_cadence",
    "discounts",
    "commitments",
)


def _item_create(
    organization: Organization,
    sub: Subscription,
    rc: sources.RateCardSpec,
    *,
    phase: SubscriptionPhase | None,
    key: str,
    quantity: Decimal,
    addon_key: str,
    template: dict[str, Any] | None,
    start: datetime,
    end: datetime | None,
) -> SubscriptionItem:
    return SubscriptionItem.objects.create(
        organization=organization,
        subscription=sub,
        phase=phase,
        key=key,
        quantity=quantity,
        addon_key=addon_key,
        entitlement_template=template,
        active_from=start,
        active_to=end,
        **{name: getattr(rc, name) for name in ITEM_FIELDS_FROM_RATE_CARD},
    )


def phase_create(
    *, organization: Organization, sub: Subscription, scheduled: ScheduledPhase, start: datetime
) -> SubscriptionPhase:
    """The scheduled phase from `start` to its scheduled end: its row, one item per rate card and the
    entitlements of the items' templates."""
    phase = SubscriptionPhase.objects.create(
        organization=organization,
        subscription=sub,
        index=scheduled.index,
        key=scheduled.spec.key,
        name=scheduled.spec.name,
        starts_at=start,
        ends_at=scheduled.ends_at,
    )
    for rc in scheduled.spec.rate_cards:
        item = _item_create(
            organization,
            sub,
            rc,
            phase=phase,
            key=rc.key,
            quantity=Decimal(1),
            addon_key="",
            template=rc.entitlement_template,
            start=start,
            end=scheduled.ends_at,
        )
        _entitlement_from_template(organization=organization, sub=sub, item=item)
    return phase


def schedule_materialize(
    *, organization: Organization, sub: Subscription, starting_phase: int, from_time: datetime | None = None
) -> None:
    """Create phases/items/entitlements for scheduled phases that end after `from_time` (all when None)."""
    for sp in phase_schedule(sub, starting_phase):
        if from_time is not None and sp.ends_at is not None and sp.ends_at <= from_time:
            continue
        start = sp.starts_at if from_time is None else max(sp.starts_at, from_time)
        phase_create(organization=organization, sub=sub, scheduled=sp, start=start)


def subscription_clip(*, organization: Organization, sub: Subscription, at: datetime) -> None:
    """End everything of the subscription at `at`: rows starting at/after it go, the rest end at it."""
    now = timezone.now()
    Entitlement.objects.filter(
        organization=organization, subscription=sub, active_from__gte=at, deleted_at__isnull=True
    ).update(deleted_at=now, active_to=at)
    Entitlement.objects.filter(organization=organization, subscription=sub, deleted_at__isnull=True).filter(
        active_to__isnull=True
    ).update(active_to=at)
    Entitlement.objects.filter(
        organization=organization, subscription=sub, deleted_at__isnull=True, active_to__gt=at
    ).update(active_to=at)
    models: list[tuple[Any, str, str]] = [
        (SubscriptionItem, "active_from", "active_to"),
        (SubscriptionPhase, "starts_at", "ends_at"),
        (SubscriptionAddon, "active_from", "active_to"),
    ]
    for model, start_field, end_field in models:
        qs = model.objects.filter(organization=organization, subscription=sub)
        qs.filter(**{f"{start_field}__gte": at}).delete()
        qs.filter(**{f"{end_field}__isnull": True}).update(**{end_field: at})
        qs.filter(**{f"{end_field}__gt": at}).update(**{end_field: at})
    sub.active_to = at
    sub.save(update_fields=["active_to", "updated_at"])


def customer_lock(organization: Organization, customer: Customer) -> Customer:
    return Customer.objects.select_for_update().get(pk=customer.pk, organization=organization)


def subscription_lock(
    organization: Organization, subscription: Subscription, now: datetime, *, ended: str
) -> Subscription:
    """The subscription's row, locked; `SubscriptionNotActive(ended)` when it ended at or before `now`."""
    sub = Subscription.objects.select_for_update().get(pk=subscription.pk, organization=organization)
    if sub.active_to is not None and sub.active_to <= now:
        raise SubscriptionNotActive(ended)
    return sub


def addon_start(
    organization: Organization,
    sub: Subscription,
    addon_key: str,
    quantity: int,
    *,
    at: datetime,
    snapshot: dict[str, Any],
) -> SubscriptionAddon:
    """`quantity` of the add-on (`snapshot`: its catalog document) from `at` to the subscription's end:
    the add-on row and one item per rate card."""
    addon = SubscriptionAddon.objects.create(
        organization=organization,
        subscription=sub,
        addon_key=addon_key,
        addon_version=snapshot.get("version", 1),
        name=snapshot.get("name", addon_key),
        quantity=quantity,
        active_from=at,
        active_to=sub.active_to,
        snapshot=snapshot,
    )
    for card in snapshot.get("rateCards", []):
        rc = sources.RateCardSpec.from_json(card)
        _item_create(
            organization,
            sub,
            rc,
            phase=None,
            key=f"{addon_key}:{rc.key}",
            quantity=Decimal(quantity),
            addon_key=addon_key,
            template=None,
            start=at,
            end=sub.active_to,
        )
    return addon
