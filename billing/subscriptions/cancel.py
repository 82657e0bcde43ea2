"""Cancel a subscription (now, at the period end or at an instant) and undo a cancelation that has not
taken effect."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from billing.models import Entitlement, Subscription, SubscriptionAddon, SubscriptionItem, SubscriptionPhase
from billing.subscriptions.events import SubscriptionWrite, subscription_snapshot
from billing.subscriptions.schedule import IMMEDIATE, SubscriptionNotActive, phase_schedule
from billing.subscriptions.timeline import phase_create, subscription_clip, subscription_lock
from core.audit import Actor
from core.errors import Conflict
from core.models import Organization


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
        sub = subscription_lock(organization, subscription, now, ended="The subscription has already ended.")
        if Subscription.objects.filter(organization=organization, previous=sub).exists():
            raise Conflict("A plan change is scheduled for this subscription; it cannot be canceled.")
        write = SubscriptionWrite.resolve(
            organization=organization, actor=actor, sub=sub, timing=timing, now=now
        )
        before = subscription_snapshot(sub)
        subscription_clip(organization=organization, sub=sub, at=write.at)
        sub.cancel_requested_at = now
        sub.save(update_fields=["cancel_requested_at", "updated_at"])
        write.record("subscription.canceled", before=before, extra={"canceledAt": now.isoformat()})
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
            phase_create(organization=organization, sub=sub, scheduled=sp, start=sp.starts_at)
        write = SubscriptionWrite(organization=organization, actor=actor, sub=sub, timing=IMMEDIATE, at=now)
        write.record(
            "subscription.cancelation_unscheduled",
            before=before,
            extra={"unscheduledCancelationAt": at.isoformat()},
        )
    return sub
