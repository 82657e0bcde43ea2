"""Threshold notification rules and their evaluation: one notification event per threshold crossed per
usage period."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing.entitlements.burn import live_metered
from billing.entitlements.values import EntitlementValue, entitlement_value
from billing.models import NotificationEvent, NotificationRule
from core.audit import Actor, audit_object
from core.errors import ValidationFailed
from core.models import Organization

THRESHOLD_EVENT = "entitlements.balance.threshold"


def _threshold_crossed(kind: str, target: Decimal, value: EntitlementValue) -> bool:
    usage = value.usage or Decimal(0)
    if kind == "PERCENT":
        total = value.total_available or Decimal(0)
        if total <= 0:
            return usage > 0 and target >= 0
        return usage * 100 / total >= target
    if kind == "USAGE_VALUE" or kind == "NUMBER":
        return usage >= target
    if kind == "BALANCE_VALUE":
        return (value.balance or Decimal(0)) <= target
    return False


def entitlement_thresholds_check(
    *, organization: Organization, entitlement_ids: list[str], at: datetime | None = None
) -> int:
    """Evaluate threshold rules for these entitlements; store one notification event per threshold
    crossed per usage period (idempotent through `dedupe_key`). Returns how many were created."""
    at = at or timezone.now()
    ents = list(live_metered(organization).filter(id__in=entitlement_ids).select_related("customer"))
    if not ents:
        return 0
    rules = list(
        NotificationRule.objects.filter(
            organization=organization, disabled=False, feature_key__in={e.feature_key for e in ents}
        )
    )
    if not rules:
        return 0
    created = 0
    for ent in ents:
        matching = [r for r in rules if r.feature_key == ent.feature_key]
        if not matching:
            continue
        value = entitlement_value(organization=organization, entitlement=ent, at=at)
        events = []
        for rule in matching:
            for th in rule.thresholds:
                kind, target = str(th.get("type", "PERCENT")).upper(), Decimal(str(th.get("value")))
                if not _threshold_crossed(kind, target, value):
                    continue
                events.append(
                    NotificationEvent(
                        organization=organization,
                        type=THRESHOLD_EVENT,
                        rule=rule,
                        dedupe_key=f"{rule.id}:{ent.id}:{value.period_start.isoformat() if value.period_start else ''}:"
                        f"{kind}:{target}",
                        payload={
                            "entitlement": {"id": ent.id, "featureKey": ent.feature_key},
                            "customer": {"id": ent.customer_id, "key": ent.customer.key},
                            "threshold": {"type": kind, "value": str(target)},
                            "value": value.as_api(),
                            "period": {
                                "from": value.period_start.isoformat() if value.period_start else None,
                                "to": value.period_end.isoformat() if value.period_end else None,
                            },
                        },
                    )
                )
        if events:
            before = NotificationEvent.objects.filter(organization=organization).count()
            NotificationEvent.objects.bulk_create(events, ignore_conflicts=True)
            created += NotificationEvent.objects.filter(organization=organization).count() - before
    return created


def notification_rule_create(
    *,
    organization: Organization,
    name: str,
    feature_key: str,
    thresholds: list[dict[str, Any]],
    actor: Actor = None,
) -> NotificationRule:
    if not thresholds:
        raise ValidationFailed("At least one threshold is required.", field="thresholds")
    for i, th in enumerate(thresholds):
        if str(th.get("type", "")).upper() not in ("PERCENT", "USAGE_VALUE", "NUMBER", "BALANCE_VALUE"):
            raise ValidationFailed(
                "type must be PERCENT, USAGE_VALUE or BALANCE_VALUE.", field=f"thresholds[{i}].type"
            )
        try:
            Decimal(str(th.get("value")))
        except Exception:
            raise ValidationFailed("value must be a number.", field=f"thresholds[{i}].value") from None
    with transaction.atomic():
        rule = NotificationRule.objects.create(
            organization=organization,
            name=name,
            feature_key=feature_key,
            thresholds=[{"type": str(t["type"]).upper(), "value": str(t["value"])} for t in thresholds],
        )
        audit_object(
            rule,
            "notification_rule.created",
            actor,
            after={"featureKey": feature_key, "thresholds": rule.thresholds},
        )
    return rule
