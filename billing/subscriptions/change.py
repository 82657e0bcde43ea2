"""Plan changes: change a subscription's plan at an instant (add-ons carry over) and migrate a
grandfathered subscription to a newer version of its plan."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from billing import sources
from billing.models import Subscription, SubscriptionAddon
from billing.subscriptions.create import starting_phase_index, subscription_start
from billing.subscriptions.events import SubscriptionWrite, subscription_snapshot
from billing.subscriptions.schedule import (
    IMMEDIATE,
    SubscriptionNotActive,
    change_default_timing,
)
from billing.subscriptions.timeline import addon_start, customer_lock, subscription_clip, subscription_lock
from core.audit import Actor
from core.errors import Conflict, ValidationFailed
from core.models import Organization


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
        customer_lock(organization, subscription.customer)
        old = subscription_lock(organization, subscription, now, ended="The subscription has ended.")
        write = SubscriptionWrite.resolve(
            organization=organization, actor=actor, sub=old, timing=timing, now=now
        )
        at = write.at
        if old.active_to is not None and at >= old.active_to:
            raise SubscriptionNotActive(
                "The subscription is canceled before the change would take effect; "
                "unschedule the cancelation first."
            )
        if Subscription.objects.filter(organization=organization, previous=old).exists():
            raise Conflict("A change is already scheduled for this subscription.")
        before = subscription_snapshot(old)
        addons = list(SubscriptionAddon.objects.filter(subscription=old).filter(active_to__isnull=True))
        subscription_clip(organization=organization, sub=old, at=at)
        new = subscription_start(
            organization=organization,
            customer=old.customer,
            plan=plan,
            active_from=at,
            billing_anchor=old.billing_anchor,
            starting_phase=starting_phase_index(plan, starting_phase),
            previous=old,
            timezone_name=old.timezone,
        )
        for addon in addons:  # add-ons carry over to the new plan
            addon_start(organization, new, addon.addon_key, addon.quantity, at=at, snapshot=addon.snapshot)
        write.record(
            action,
            before=before,
            after={
                **subscription_snapshot(old),
                "newSubscriptionId": new.id,
                "newPlan": {"key": new.plan_key, "version": new.plan_version},
                "at": at.isoformat(),
            },
            next_sub=new,
        )
    return old, new


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
