"""Add-ons on a subscription: set an add-on's quantity from an instant on (0 removes it)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from billing import sources
from billing.models import Subscription, SubscriptionAddon, SubscriptionItem
from billing.subscriptions.events import SubscriptionWrite
from billing.subscriptions.schedule import IMMEDIATE
from billing.subscriptions.timeline import addon_start, subscription_lock
from core.audit import Actor
from core.errors import ValidationFailed
from core.models import Organization


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
        sub = subscription_lock(organization, subscription, now, ended="The subscription has ended.")
        write = SubscriptionWrite.resolve(
            organization=organization, actor=actor, sub=sub, timing=timing, now=now
        )
        at = write.at
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
            addon = addon_start(organization, sub, addon_key, quantity, at=at, snapshot=spec.as_json())
        write.record(
            "subscription.addon_changed",
            before=before,
            after={"addonKey": addon_key, "quantity": quantity, "at": at.isoformat()},
            extra={"addon": {"key": addon_key, "quantity": quantity, "previousQuantity": before["quantity"]}},
        )
    return addon
