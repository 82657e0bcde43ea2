"""What a subscription write records besides its rows: the audit entry and the `subscription.*`
notification event (invoicing's `billing_notifications_forward` delivers it as a webhook)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from billing.models import NotificationEvent, Subscription
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
    after: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    next_sub: Subscription | None = None,
) -> None:
    """Audit `action` on `sub` (after: its snapshot now, unless given) and store the `type` notification:
    about `next_sub`, with `sub` as its previous subscription, when a change started one; else about `sub`."""
    audit_object(
        sub, action, actor, before=before, after=subscription_snapshot(sub) if after is None else after
    )
    _notify(
        organization=organization,
        type=type,
        sub=next_sub or sub,
        action=action,
        timing=timing,
        effective_at=effective_at,
        previous=sub if next_sub is not None else None,
        extra=extra,
    )
