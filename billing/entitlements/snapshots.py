"""Balance snapshots: the periodic refresh that value reads resume from, and what landing usage
invalidates (late events drop the snapshots after them)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from billing.entitlements.burn import active_end, burn, live_metered, measure_from
from billing.entitlements.thresholds import entitlement_thresholds_check
from billing.models import BalanceSnapshot, CustomerSubject, Entitlement, EntitlementType
from core.models import Organization

# Snapshots are taken this long in the past, so events still in flight (gateways batch for seconds) do
# not land before them and force a recompute.
SNAPSHOT_LAG = timedelta(minutes=2)
SNAPSHOTS_KEPT = 5


def entitlement_snapshot_refresh(
    *, organization: Organization, entitlement_id: str, now: datetime | None = None
) -> BalanceSnapshot | None:
    """Recompute the entitlement's state at `now - SNAPSHOT_LAG` and store it as the newest snapshot
    (idempotent; safe to run twice). Older snapshots beyond SNAPSHOTS_KEPT are pruned."""
    ent = Entitlement.objects.filter(
        organization=organization, id=entitlement_id, type=EntitlementType.METERED
    ).first()
    if ent is None:
        return None
    at = (now or timezone.now()) - SNAPSHOT_LAG
    at = at.replace(second=0, microsecond=0)
    ends = active_end(ent)
    if ends is not None:
        at = min(at, ends)
    if at <= measure_from(ent):
        return None
    # A full recompute (not from the previous snapshot): a late event that arrived since then is picked up
    # even when metering did not call `entitlements_usage_landed` (bounded staleness: one beat interval).
    result = burn(organization=organization, ent=ent, at=at, use_snapshot=False)
    BalanceSnapshot.objects.filter(entitlement=ent, at__gt=at).delete()
    snap, _ = BalanceSnapshot.objects.update_or_create(
        entitlement=ent,
        at=result.state.at,
        defaults={
            "organization": organization,
            "period_start": result.state.period_start,
            "grant_balances": {k: str(v) for k, v in result.state.grant_balances.items()},
            "usage": result.state.usage,
            "overage": result.state.overage,
            "total_available": result.total_available,
        },
    )
    old = list(
        BalanceSnapshot.objects.filter(entitlement=ent)
        .order_by("-at")
        .values_list("id", flat=True)[SNAPSHOTS_KEPT:]
    )
    if old:
        BalanceSnapshot.objects.filter(id__in=old).delete()
    # Thresholds are also checked here, so they fire within a beat interval even when metering does not
    # call `entitlements_usage_landed` at ingest (deduplicated: each fires once per period).
    entitlement_thresholds_check(organization=organization, entitlement_ids=[ent.id], at=now)
    return snap


def entitlements_usage_landed(
    *, organization: Organization, subject_keys: list[str], earliest_event_time: datetime
) -> list[str]:
    """Called when usage is ingested: drop snapshots that the new events invalidate (late events) and
    evaluate threshold rules for the affected entitlements. Returns the affected entitlement ids."""
    customer_ids = list(
        CustomerSubject.objects.filter(organization=organization, subject_key__in=subject_keys)
        .values_list("customer_id", flat=True)
        .distinct()
    )
    if not customer_ids:
        return []
    ids = list(live_metered(organization).filter(customer_id__in=customer_ids).values_list("id", flat=True))
    BalanceSnapshot.objects.filter(entitlement_id__in=ids, at__gt=earliest_event_time).delete()
    entitlement_thresholds_check(organization=organization, entitlement_ids=ids)
    return ids
