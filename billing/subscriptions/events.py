"""What a subscription write records besides its rows: the audit entry and the `subscription.*`
notification event (invoicing's `billing_notifications_forward` delivers it as a webhook)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billing.models import NotificationEvent, Subscription
from billing.subscriptions.schedule import timing_resolve
from core.audit import Actor, audit_object
from core.ids import new_ulid
from core.models import Organization


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
        **subscription_snapshot(sub),
        "customerKey": sub.customer.key,
        "timing": _timing_label(timing),
        "effectiveAt": effective_at.isoformat(),
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


# The notification each audited action is announced as: a subscription starts, ends, or else changes.
NOTIFICATION_TYPES = {
    "subscription.created": "subscription.created",
    "subscription.canceled": "subscription.canceled",
    "subscription.cancelation_unscheduled": "subscription.changed",
    "subscription.changed": "subscription.changed",
    "subscription.migrated": "subscription.changed",
    "subscription.addon_changed": "subscription.changed",
}


@dataclass(frozen=True)
class SubscriptionWrite:
    """One write to a subscription as it is recorded: who writes (the organization and the actor), to
    which subscription, the timing asked for and the instant `at` it takes effect."""

    organization: Organization
    actor: Actor
    sub: Subscription
    timing: str | datetime
    at: datetime

    @classmethod
    def resolve(
        cls,
        *,
        organization: Organization,
        actor: Actor,
        sub: Subscription,
        timing: str | datetime,
        now: datetime,
    ) -> SubscriptionWrite:
        """The write to the locked `sub` asked at `now` with `timing` (`immediate`, `next_billing_cycle` or
        an instant): it takes effect at the instant `timing_resolve` gives."""
        return cls(
            organization=organization,
            actor=actor,
            sub=sub,
            timing=timing,
            at=timing_resolve(sub, timing, now),
        )

    def record(
        self,
        action: str,
        *,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
        next_sub: Subscription | None = None,
    ) -> None:
        """Audit `action` on the subscription (after: its snapshot now, unless given) and store its
        notification (`NOTIFICATION_TYPES`): about `next_sub`, with this subscription as its previous
        one, when a change started one; else about this subscription."""
        sub = self.sub
        audit_object(
            sub,
            action,
            self.actor,
            before=before,
            after=subscription_snapshot(sub) if after is None else after,
        )
        _notify(
            organization=self.organization,
            type=NOTIFICATION_TYPES[action],
            sub=next_sub or sub,
            action=action,
            timing=self.timing,
            effective_at=self.at,
            previous=sub if next_sub is not None else None,
            extra=extra,
        )
