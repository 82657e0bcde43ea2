"""What a subscription write records besides its rows: the audit entry and the `subscription.*`
notification event (invoicing's `billing_notifications_forward` delivers it as a webhook)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from billing.models import NotificationEvent, Subscription
from core.audit import Actor, audit_record
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


def subscription_notify(
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


def subscription_event_record(
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
    subscription_notify(
        organization=organization,
        type=type,
        sub=sub,
        action=action,
        timing=timing,
        effective_at=effective_at,
        extra=extra,
    )
