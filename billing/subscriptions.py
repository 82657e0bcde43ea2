"""Subscription writes (services): create, change, cancel, unschedule cancelation, add-ons, migrate.

Kept in its own module because it is large; `billing.services` re-exports the public functions.

Timeline model: a subscription has phases ([starts_at, ends_at)), each phase has items (one per rate
card, same span), add-ons add items with a quantity, and items with an entitlement template have an
entitlement over the same span. Every change only *clips* (sets an end) or *adds* rows from an instant
on, so the past is never rewritten and invoicing can bill exact spans.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing import sources
from billing.models import (
    Customer,
    Entitlement,
    EntitlementType,
    NotificationEvent,
    Subscription,
    SubscriptionAddon,
    SubscriptionItem,
    SubscriptionPhase,
)
from billing.periods import Cadence, InvalidCadence, Period, period_at, period_start
from core.audit import Actor, audit_record
from core.errors import Conflict, DomainError, NotFound, ValidationFailed
from core.ids import new_ulid
from core.models import Organization

IMMEDIATE = "immediate"
NEXT_BILLING_CYCLE = "next_billing_cycle"
TIMINGS = (IMMEDIATE, NEXT_BILLING_CYCLE)


class SubscriptionNotActive(DomainError):
    status = 409
    code = "subscription-not-active"
    title = "Subscription not active"


def subscription_snapshot(sub: Subscription) -> dict[str, Any]:
    return {
        "customerId": sub.customer_id,
        "plan": {"key": sub.plan_key, "version": sub.plan_version},
        "activeFrom": sub.active_from.isoformat(),
        "activeTo": sub.active_to.isoformat() if sub.active_to else None,
        "billingAnchor": sub.billing_anchor.isoformat(),
        "billingCadence": sub.billing_cadence,
    }


def _timing_label(timing: str | datetime) -> str:
    return timing.isoformat() if isinstance(timing, datetime) else timing


def _notify(
    *,
    organization: Organization,
    type: str,
    sub: Subscription,
    action: str,
    timing: str | datetime,
    effective_at: datetime,
    previous: Subscription | None = None,
    extra: dict[str, Any] | None = None,
) -> NotificationEvent:
    """Store a `subscription.*` notification in the caller's transaction; invoicing's
    `billing_notifications_forward` delivers it as a webhook (billing never imports invoicing)."""
    payload: dict[str, Any] = {
        "action": action,
        "subscriptionId": sub.id,
        "customerId": sub.customer_id,
        "customerKey": sub.customer.key,
        "plan": {"key": sub.plan_key, "version": sub.plan_version},
        "timing": _timing_label(timing),
        "effectiveAt": effective_at.isoformat(),
        "activeFrom": sub.active_from.isoformat(),
        "activeTo": sub.active_to.isoformat() if sub.active_to else None,
        "billingAnchor": sub.billing_anchor.isoformat(),
        "billingCadence": sub.billing_cadence,
        "currency": sub.currency,
    }
    if previous is not None:
        payload["previousSubscriptionId"] = previous.id
        payload["previousPlan"] = {"key": previous.plan_key, "version": previous.plan_version}
    payload.update(extra or {})
    event_id = new_ulid()
    return NotificationEvent.objects.create(
        id=event_id,
        organization=organization,
        type=type,
        payload=payload,
        dedupe_key=f"{type}:{sub.id}:{event_id}",
    )


def _subscription_event_record(
    *,
    organization: Organization,
    sub: Subscription,
    actor: Actor,
    action: str,
    type: str,
    timing: str | datetime,
    effective_at: datetime,
    before: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Audit `action` on the subscription (after: its snapshot now) and store the `type` notification."""
    audit_record(
        organization=organization,
        actor=actor,
        action=action,
        object_type="subscription",
        object_id=sub.id,
        before=before,
        after=subscription_snapshot(sub),
    )
    _notify(
        organization=organization,
        type=type,
        sub=sub,
        action=action,
        timing=timing,
        effective_at=effective_at,
        extra=extra,
    )


def subscription_period_at(sub: Subscription, at: datetime) -> Period:
    return period_at(sub.billing_anchor, sub.billing_cadence, at, sub.timezone)


def _phase_end(sub: Subscription, start: datetime, duration: str | None) -> datetime | None:
    """Nominal end (start + duration in the billing zone), rounded up to a billing-period boundary."""
    if not duration:
        return None
    try:
        cad = Cadence.parse(duration)
    except InvalidCadence as exc:
        raise ValidationFailed(str(exc), field="phases.duration") from None
    nominal = period_start(start, cad, 1, sub.timezone)
    p = subscription_period_at(sub, nominal)
    return p.start if p.start == nominal else p.end


@dataclass(frozen=True)
class ScheduledPhase:
    index: int
    spec: sources.PhaseSpec
    starts_at: datetime
    ends_at: datetime | None


def phase_schedule(sub: Subscription, starting_phase: int = 0) -> list[ScheduledPhase]:
    plan = sources.PlanSpec.from_json(sub.plan_snapshot)
    out: list[ScheduledPhase] = []
    start = sub.active_from
    for index, spec in enumerate(plan.phases):
        if index < starting_phase:
            continue
        end = _phase_end(sub, start, spec.duration) if index < len(plan.phases) - 1 else None
        out.append(ScheduledPhase(index, spec, start, end))
        if end is None:
            break
        start = end
    return out


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
        ent.config = config if isinstance(config, str) else __import__("json").dumps(config)
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


def _create_items(
    *,
    organization: Organization,
    sub: Subscription,
    phase: SubscriptionPhase,
    rate_cards: tuple[sources.RateCardSpec, ...],
    start: datetime,
    end: datetime | None,
    addon_key: str = "",
    quantity: Decimal = Decimal(1),
) -> list[SubscriptionItem]:
    items = []
    for rc in rate_cards:
        item = SubscriptionItem.objects.create(
            organization=organization,
            subscription=sub,
            phase=phase,
            key=rc.key,
            name=rc.name,
            feature_key=rc.feature_key,
            price=rc.price,
            payment_term=rc.payment_term,
            billing_cadence=rc.billing_cadence,
            quantity=quantity,
            addon_key=addon_key,
            entitlement_template=rc.entitlement_template,
            discounts=rc.discounts,
            commitments=rc.commitments,
            active_from=start,
            active_to=end,
        )
        _entitlement_from_template(organization=organization, sub=sub, item=item)
        items.append(item)
    return items


def _materialize(
    *, organization: Organization, sub: Subscription, starting_phase: int, from_time: datetime | None = None
) -> None:
    """Create phases/items/entitlements for scheduled phases that end after `from_time` (all when None)."""
    for sp in phase_schedule(sub, starting_phase):
        if from_time is not None and sp.ends_at is not None and sp.ends_at <= from_time:
            continue
        start = sp.starts_at if from_time is None else max(sp.starts_at, from_time)
        phase = SubscriptionPhase.objects.create(
            organization=organization,
            subscription=sub,
            index=sp.index,
            key=sp.spec.key,
            name=sp.spec.name,
            starts_at=start,
            ends_at=sp.ends_at,
        )
        _create_items(
            organization=organization,
            sub=sub,
            phase=phase,
            rate_cards=sp.spec.rate_cards,
            start=start,
            end=sp.ends_at,
        )


def _clip(*, organization: Organization, sub: Subscription, at: datetime) -> None:
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


def _lock_customer(organization: Organization, customer: Customer) -> Customer:
    return Customer.objects.select_for_update().get(pk=customer.pk, organization=organization)


def _resolve_timing(sub: Subscription, timing: str | datetime, now: datetime) -> datetime:
    if isinstance(timing, datetime):
        if timing < now:
            raise ValidationFailed("A change cannot be scheduled in the past.", field="timing")
        return timing
    if timing == IMMEDIATE:
        return max(now, sub.active_from)
    if timing == NEXT_BILLING_CYCLE:
        return subscription_period_at(sub, max(now, sub.active_from)).end
    raise ValidationFailed(f"timing must be one of {', '.join(TIMINGS)} or a timestamp.", field="timing")


def _live_subscription(organization: Organization, customer: Customer, at: datetime) -> Subscription | None:
    return (
        Subscription.objects.filter(organization=organization, customer=customer)
        .exclude(active_to__lte=at)
        .order_by("active_from")
        .first()
    )


def _create(
    *,
    organization: Organization,
    customer: Customer,
    plan: sources.PlanSpec,
    active_from: datetime,
    billing_anchor: datetime,
    starting_phase: int,
    previous: Subscription | None,
    timezone_name: str,
) -> Subscription:
    if not plan.phases:
        raise ValidationFailed("The plan has no phases.", field="plan")
    if customer.currency and plan.currency and customer.currency.upper() != plan.currency.upper():
        raise ValidationFailed(
            f"The plan is priced in {plan.currency} but the customer is billed in {customer.currency}.",
            field="plan",
        )
    if not 0 <= starting_phase < len(plan.phases):
        raise ValidationFailed(
            f"startingPhase must be between 0 and {len(plan.phases) - 1}.", field="startingPhase"
        )
    sub = Subscription(
        organization=organization,
        customer=customer,
        plan_id=plan.id,
        plan_key=plan.key,
        plan_version=plan.version,
        name=plan.name,
        currency=customer.currency or plan.currency,
        timezone=timezone_name,
        billing_cadence=plan.billing_cadence,
        billing_anchor=billing_anchor,
        active_from=active_from,
        plan_snapshot={**plan.as_json(), "startingPhase": starting_phase},
        previous=previous,
    )
    try:
        Cadence.parse(sub.billing_cadence)
    except InvalidCadence as exc:
        raise ValidationFailed(str(exc), field="plan.billingCadence") from None
    sub.save()
    _materialize(organization=organization, sub=sub, starting_phase=starting_phase)
    return sub


def _starting_phase_index(plan: sources.PlanSpec, starting_phase: str | int | None) -> int:
    if starting_phase in (None, ""):
        return 0
    for i, p in enumerate(plan.phases):
        if p.key == starting_phase or str(i) == str(starting_phase):
            return i
    raise ValidationFailed(f"The plan has no phase {starting_phase!r}.", field="startingPhase")


def subscription_create(
    *,
    organization: Organization,
    customer: Customer,
    plan_key: str,
    plan_version: int | None = None,
    active_from: datetime | None = None,
    billing_anchor: datetime | None = None,
    starting_phase: str | int | None = None,
    actor: Actor = None,
) -> Subscription:
    """Subscribe a customer to a published plan version (the latest when none given)."""
    assert customer.organization_id == organization.id
    now = timezone.now()
    active_from = active_from or now
    plan = sources.plan_spec_get(organization=organization, key=plan_key, version=plan_version)
    if not plan.published:
        raise Conflict(f"Plan {plan_key!r} version {plan.version} is not published.", field="plan")
    with transaction.atomic():
        customer = _lock_customer(organization, customer)
        if customer.deleted_at is not None:
            raise NotFound("No such customer.")
        existing = _live_subscription(organization, customer, active_from)
        if existing is not None:
            raise Conflict(
                f"The customer already has a subscription ({existing.id}) at that time; change it instead.",
                field="customerId",
                extra={"subscriptionId": existing.id},
            )
        sub = _create(
            organization=organization,
            customer=customer,
            plan=plan,
            active_from=active_from,
            billing_anchor=billing_anchor or active_from,
            starting_phase=_starting_phase_index(plan, starting_phase),
            previous=None,
            timezone_name=customer.timezone or organization.timezone,
        )
        _subscription_event_record(
            organization=organization,
            sub=sub,
            actor=actor,
            action="subscription.created",
            type="subscription.created",
            timing=IMMEDIATE if active_from <= now else active_from,
            effective_at=active_from,
        )
    return sub


def subscription_change(
    *,
    organization: Organization,
    subscription: Subscription,
    plan_key: str,
    plan_version: int | None = None,
    timing: str | datetime | None = IMMEDIATE,
    starting_phase: str | int | None = None,
    actor: Actor = None,
    action: str = "subscription.changed",
) -> tuple[Subscription, Subscription]:
    """End `subscription` at the change instant and start the new plan there (same billing anchor).
    Returns (old, new). In-advance flat fees of the partial period are prorated by invoicing from the
    item spans. `timing=None`: an upgrade now, a downgrade at the end of the billing period
    (`change_default_timing`)."""
    now = timezone.now()
    plan = sources.plan_spec_get(organization=organization, key=plan_key, version=plan_version)
    if not plan.published:
        raise Conflict(f"Plan {plan_key!r} version {plan.version} is not published.", field="plan")
    if timing is None:
        timing = change_default_timing(sources.PlanSpec.from_json(subscription.plan_snapshot), plan)
    with transaction.atomic():
        _lock_customer(organization, subscription.customer)
        old = Subscription.objects.select_for_update().get(pk=subscription.pk, organization=organization)
        if old.active_to is not None and old.active_to <= now:
            raise SubscriptionNotActive("The subscription has ended.")
        at = _resolve_timing(old, timing, now)
        if old.active_to is not None and at >= old.active_to:
            raise SubscriptionNotActive(
                "The subscription is canceled before the change would take effect; "
                "unschedule the cancelation first."
            )
        if Subscription.objects.filter(organization=organization, previous=old).exists():
            raise Conflict("A change is already scheduled for this subscription.")
        before = subscription_snapshot(old)
        addons = list(SubscriptionAddon.objects.filter(subscription=old).filter(active_to__isnull=True))
        _clip(organization=organization, sub=old, at=at)
        new = _create(
            organization=organization,
            customer=old.customer,
            plan=plan,
            active_from=at,
            billing_anchor=old.billing_anchor,
            starting_phase=_starting_phase_index(plan, starting_phase),
            previous=old,
            timezone_name=old.timezone,
        )
        for addon in addons:  # add-ons carry over to the new plan
            _addon_start(
                organization=organization,
                sub=new,
                addon_key=addon.addon_key,
                quantity=addon.quantity,
                at=at,
                snapshot=addon.snapshot,
            )
        audit_record(
            organization=organization,
            actor=actor,
            action=action,
            object_type="subscription",
            object_id=old.id,
            before=before,
            after={
                **subscription_snapshot(old),
                "newSubscriptionId": new.id,
                "newPlan": {"key": new.plan_key, "version": new.plan_version},
                "at": at.isoformat(),
            },
        )
        _notify(
            organization=organization,
            type="subscription.changed",
            sub=new,
            action=action,
            timing=timing,
            effective_at=at,
            previous=old,
        )
    return old, new


def _flat_per_period(plan: sources.PlanSpec) -> Decimal:
    """The recurring flat fees of the plan's last (steady-state) phase, summed."""
    total = Decimal(0)
    for card in plan.phases[-1].rate_cards if plan.phases else ():
        price = card.price or {}
        if price.get("type") == "flat" and card.billing_cadence:
            try:
                total += Decimal(str(price.get("amount", "0")))
            except (ArithmeticError, ValueError):
                continue
    return total


def change_default_timing(current: sources.PlanSpec, new: sources.PlanSpec) -> str:
    """Upgrades apply now, downgrades at the end of the billing period (Stripe's and Lago's habit): a
    change is a downgrade when the new plan's recurring flat fees are lower than the current plan's."""
    return NEXT_BILLING_CYCLE if _flat_per_period(new) < _flat_per_period(current) else IMMEDIATE


def subscription_migrate(
    *,
    organization: Organization,
    subscription: Subscription,
    target_version: int | None = None,
    timing: str | datetime = IMMEDIATE,
    actor: Actor = None,
) -> tuple[Subscription, Subscription]:
    """Move a grandfathered subscription to a newer version of the same plan (latest when not given)."""
    plan = sources.plan_spec_get(organization=organization, key=subscription.plan_key, version=target_version)
    if plan.version <= subscription.plan_version:
        raise ValidationFailed(
            f"Target version {plan.version} is not newer than {subscription.plan_version}.",
            field="targetVersion",
        )
    return subscription_change(
        organization=organization,
        subscription=subscription,
        plan_key=plan.key,
        plan_version=plan.version,
        timing=timing,
        actor=actor,
        action="subscription.migrated",
    )


def subscription_cancel(
    *,
    organization: Organization,
    subscription: Subscription,
    timing: str | datetime = IMMEDIATE,
    actor: Actor = None,
) -> Subscription:
    """Cancel now or at the end of the current billing period (`next_billing_cycle`)."""
    now = timezone.now()
    with transaction.atomic():
        sub = Subscription.objects.select_for_update().get(pk=subscription.pk, organization=organization)
        if sub.active_to is not None and sub.active_to <= now:
            raise SubscriptionNotActive("The subscription has already ended.")
        if Subscription.objects.filter(organization=organization, previous=sub).exists():
            raise Conflict("A plan change is scheduled for this subscription; it cannot be canceled.")
        at = _resolve_timing(sub, timing, now)
        before = subscription_snapshot(sub)
        _clip(organization=organization, sub=sub, at=at)
        sub.cancel_requested_at = now
        sub.save(update_fields=["cancel_requested_at", "updated_at"])
        _subscription_event_record(
            organization=organization,
            sub=sub,
            actor=actor,
            action="subscription.canceled",
            type="subscription.canceled",
            before=before,
            timing=timing,
            effective_at=at,
            extra={"canceledAt": now.isoformat()},
        )
    return sub


def subscription_unschedule_cancelation(
    *, organization: Organization, subscription: Subscription, actor: Actor = None
) -> Subscription:
    """Undo a cancelation that has not taken effect: the rest of the schedule is rebuilt from the snapshot."""
    now = timezone.now()
    with transaction.atomic():
        sub = Subscription.objects.select_for_update().get(pk=subscription.pk, organization=organization)
        if sub.active_to is None or sub.cancel_requested_at is None:
            raise Conflict("The subscription has no scheduled cancelation.")
        if sub.active_to <= now:
            raise SubscriptionNotActive("The cancelation has already taken effect.")
        at = sub.active_to
        before = subscription_snapshot(sub)
        sub.active_to = None
        sub.cancel_requested_at = None
        sub.save(update_fields=["active_to", "cancel_requested_at", "updated_at"])
        starting = int(sub.plan_snapshot.get("startingPhase", 0))
        schedule = {sp.index: sp for sp in phase_schedule(sub, starting)}
        # Reopen what was clipped at `at`, then create what was removed after it.
        for phase in SubscriptionPhase.objects.filter(subscription=sub, ends_at=at):
            planned = schedule[phase.index].ends_at
            if planned != at:
                phase.ends_at = planned
                phase.save(update_fields=["ends_at"])
                SubscriptionItem.objects.filter(subscription=sub, phase=phase, active_to=at).update(
                    active_to=planned
                )
                Entitlement.objects.filter(
                    subscription=sub, active_to=at, deleted_at__isnull=True, active_from__gte=phase.starts_at
                ).update(active_to=planned)
        SubscriptionAddon.objects.filter(subscription=sub, active_to=at).update(active_to=None)
        SubscriptionItem.objects.filter(subscription=sub, active_to=at).exclude(addon_key="").update(
            active_to=None
        )
        existing = set(SubscriptionPhase.objects.filter(subscription=sub).values_list("index", flat=True))
        for sp in schedule.values():
            if sp.index in existing:
                continue
            phase = SubscriptionPhase.objects.create(
                organization=organization,
                subscription=sub,
                index=sp.index,
                key=sp.spec.key,
                name=sp.spec.name,
                starts_at=sp.starts_at,
                ends_at=sp.ends_at,
            )
            _create_items(
                organization=organization,
                sub=sub,
                phase=phase,
                rate_cards=sp.spec.rate_cards,
                start=sp.starts_at,
                end=sp.ends_at,
            )
        _subscription_event_record(
            organization=organization,
            sub=sub,
            actor=actor,
            action="subscription.cancelation_unscheduled",
            type="subscription.changed",
            before=before,
            timing=IMMEDIATE,
            effective_at=now,
            extra={"unscheduledCancelationAt": at.isoformat()},
        )
    return sub


def _addon_start(
    *,
    organization: Organization,
    sub: Subscription,
    addon_key: str,
    quantity: int,
    at: datetime,
    snapshot: dict[str, Any],
) -> SubscriptionAddon:
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
    rate_cards = tuple(sources.RateCardSpec.from_json(rc) for rc in snapshot.get("rateCards", []))
    for rc in rate_cards:
        SubscriptionItem.objects.create(
            organization=organization,
            subscription=sub,
            phase=None,
            key=f"{addon_key}:{rc.key}",
            name=rc.name,
            feature_key=rc.feature_key,
            price=rc.price,
            payment_term=rc.payment_term,
            billing_cadence=rc.billing_cadence,
            quantity=Decimal(quantity),
            addon_key=addon_key,
            entitlement_template=None,
            discounts=rc.discounts,
            commitments=rc.commitments,
            active_from=at,
            active_to=sub.active_to,
        )
    return addon


def subscription_addon_set(
    *,
    organization: Organization,
    subscription: Subscription,
    addon_key: str,
    quantity: int,
    timing: str | datetime = IMMEDIATE,
    actor: Actor = None,
) -> SubscriptionAddon | None:
    """Set an add-on's quantity from the timing instant on (0 removes it). The previous quantity's items
    end at that instant, so invoicing prorates each quantity over its own span."""
    if quantity < 0:
        raise ValidationFailed("quantity must be 0 or more.", field="quantity")
    now = timezone.now()
    spec = sources.addon_spec_get(organization=organization, key=addon_key)
    if spec.max_quantity is not None and quantity > spec.max_quantity:
        raise ValidationFailed(f"quantity must be at most {spec.max_quantity}.", field="quantity")
    with transaction.atomic():
        sub = Subscription.objects.select_for_update().get(pk=subscription.pk, organization=organization)
        if sub.active_to is not None and sub.active_to <= now:
            raise SubscriptionNotActive("The subscription has ended.")
        at = _resolve_timing(sub, timing, now)
        current = (
            SubscriptionAddon.objects.filter(subscription=sub, addon_key=addon_key)
            .exclude(active_to__lte=at)
            .order_by("-active_from")
            .first()
        )
        before = {"addonKey": addon_key, "quantity": current.quantity if current else 0}
        if current is not None:
            if current.active_from >= at:
                SubscriptionItem.objects.filter(
                    subscription=sub, addon_key=addon_key, active_from=current.active_from
                ).delete()
                current.delete()
            else:
                current.active_to = at
                current.save(update_fields=["active_to"])
                SubscriptionItem.objects.filter(subscription=sub, addon_key=addon_key).exclude(
                    active_to__lte=at
                ).update(active_to=at)
        addon = None
        if quantity > 0:
            addon = _addon_start(
                organization=organization,
                sub=sub,
                addon_key=addon_key,
                quantity=quantity,
                at=at,
                snapshot=spec.as_json(),
            )
        audit_record(
            organization=organization,
            actor=actor,
            action="subscription.addon_changed",
            object_type="subscription",
            object_id=sub.id,
            before=before,
            after={"addonKey": addon_key, "quantity": quantity, "at": at.isoformat()},
        )
        _notify(
            organization=organization,
            type="subscription.changed",
            sub=sub,
            action="subscription.addon_changed",
            timing=timing,
            effective_at=at,
            extra={"addon": {"key": addon_key, "quantity": quantity, "previousQuantity": before["quantity"]}},
        )
    return addon
