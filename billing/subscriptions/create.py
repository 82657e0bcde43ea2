"""Subscribe a customer to a plan version: the subscription row and its materialized timeline."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from billing import sources
from billing.models import Customer, Subscription
from billing.periods import Cadence, InvalidCadence
from billing.subscriptions.events import SubscriptionWrite
from billing.subscriptions.schedule import IMMEDIATE
from billing.subscriptions.timeline import customer_lock, schedule_materialize
from core.audit import Actor
from core.errors import Conflict, NotFound, ValidationFailed
from core.models import Organization


def _live_subscription(organization: Organization, customer: Customer, at: datetime) -> Subscription | None:
    return (
        Subscription.objects.filter(organization=organization, customer=customer)
        .exclude(active_to__lte=at)
        .order_by("active_from")
        .first()
    )


def subscription_start(
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
    """Save the subscription to `plan` and materialize its phases from `starting_phase` on. No lock, audit
    or notification: `subscription_create` and `subscription_change` do those around it."""
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
    schedule_materialize(organization=organization, sub=sub, starting_phase=starting_phase)
    return sub


def starting_phase_index(plan: sources.PlanSpec, starting_phase: str | int | None) -> int:
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
        customer = customer_lock(organization, customer)
        if customer.deleted_at is not None:
            raise NotFound("No such customer.")
        existing = _live_subscription(organization, customer, active_from)
        if existing is not None:
            raise Conflict(
                f"The customer already has a subscription ({existing.id}) at that time; change it instead.",
                field="customerId",
                extra={"subscriptionId": existing.id},
            )
        sub = subscription_start(
            organization=organization,
            customer=customer,
            plan=plan,
            active_from=active_from,
            billing_anchor=billing_anchor or active_from,
            starting_phase=starting_phase_index(plan, starting_phase),
            previous=None,
            timezone_name=customer.timezone or organization.timezone,
        )
        timing = IMMEDIATE if active_from <= now else active_from
        write = SubscriptionWrite(
            organization=organization, actor=actor, sub=sub, timing=timing, at=active_from
        )
        write.record("subscription.created")
    return sub
