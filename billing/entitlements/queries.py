"""Entitlement and grant lookups and lists, and an entitlement's usage history (OpenMeter's shape)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q
from django.utils import timezone

from billing.entitlements.burn import burn, entitlement_subjects, usage_reader
from billing.entitlements.values import wire_number
from billing.models import Customer, Entitlement, EntitlementType, Grant
from billing.periods import Cadence, InvalidCadence, period_at, period_start
from core.errors import NotFound, ValidationFailed
from core.ids import is_ulid
from core.models import Organization


def entitlement_get(
    *, organization: Organization, customer: Customer, id_or_feature_key: str, at: datetime | None = None
) -> Entitlement:
    """The customer's entitlement with this id, or its entitlement for this feature key active at `at`."""
    qs = Entitlement.objects.filter(organization=organization, customer=customer, deleted_at__isnull=True)
    if is_ulid(id_or_feature_key):
        found = qs.filter(id=id_or_feature_key.upper()).first()
        if found is not None:
            return found
    at = at or timezone.now()
    found = (
        qs.filter(feature_key=id_or_feature_key, active_from__lte=at)
        .filter(Q(active_to__isnull=True) | Q(active_to__gt=at))
        .order_by("-active_from")
        .first()
    )
    if found is None:
        found = qs.filter(feature_key=id_or_feature_key, active_to__isnull=True).first()
    if found is None:
        raise NotFound(f"No entitlement {id_or_feature_key!r} for this customer.")
    return found


def entitlement_list(
    *,
    organization: Organization,
    customer: Customer | None = None,
    include_deleted: bool = False,
    active_at: datetime | None = None,
):
    qs = Entitlement.objects.filter(organization=organization).select_related("customer")
    if customer is not None:
        qs = qs.filter(customer=customer)
    if not include_deleted:
        qs = qs.filter(deleted_at__isnull=True)
    if active_at is not None:
        qs = qs.filter(active_from__lte=active_at).filter(
            Q(active_to__isnull=True) | Q(active_to__gt=active_at)
        )
    return qs.order_by("feature_key", "-active_from", "id")


def grant_list(
    *, organization: Organization, entitlement: Entitlement | None = None, include_deleted: bool = False
):
    qs = Grant.objects.filter(organization=organization)
    if entitlement is not None:
        qs = qs.filter(entitlement=entitlement)
    if not include_deleted:
        qs = qs.filter(voided_at__isnull=True)
    return qs.order_by("effective_at", "id")


def entitlement_history(
    *,
    organization: Organization,
    entitlement: Entitlement,
    start: datetime,
    end: datetime,
    window_size: str = "DAY",
    tz: str = "UTC",
) -> dict[str, Any]:
    """Windowed usage and the burn-down segments between start and end (OpenMeter's history shape)."""
    ent = entitlement
    subjects = entitlement_subjects(ent)
    usage = usage_reader(organization, ent, subjects)
    try:
        cad = Cadence.parse({"MINUTE": "PT1M"}.get(window_size.upper(), window_size))
    except InvalidCadence as exc:
        raise ValidationFailed(str(exc), field="windowSize") from None
    windows = []
    k = 0
    first = period_at(start, cad, start, tz).start
    while True:
        ws = period_start(first, cad, k, tz)
        if ws >= end:
            break
        we = min(period_start(first, cad, k + 1, tz), end)
        windows.append({"from": ws, "to": we, "usage": wire_number(usage(max(ws, start), we))})
        k += 1
        if k > 2000:
            raise ValidationFailed("Too many windows; use a larger windowSize.", field="windowSize")
    burndown = []
    if ent.type == EntitlementType.METERED:
        result = burn(organization=organization, ent=ent, at=end, subjects=subjects, use_snapshot=False)
        for seg in result.segments:
            if seg.end <= start:
                continue
            burndown.append(
                {
                    "period": {"from": seg.start, "to": seg.end},
                    "usage": wire_number(seg.usage),
                    "overage": wire_number(seg.overage_added),
                    "balanceAtEnd": wire_number(seg.balance_at_end),
                }
            )
    return {"windowedHistory": windows, "burndownHistory": burndown}
