"""Billing tasks: balance snapshots and the usage-landed hook. Each task takes ids, calls one service and
is safe to run twice."""

from __future__ import annotations

from datetime import datetime

from celery import shared_task

from billing.models import Entitlement, EntitlementType
from core.models import Organization


@shared_task(name="billing.tasks.entitlement_snapshots_refresh", ignore_result=True)
def entitlement_snapshots_refresh() -> int:
    """Beat (every minute): enqueue a snapshot refresh for every live metered entitlement."""
    rows = Entitlement.objects.filter(type=EntitlementType.METERED, deleted_at__isnull=True).values_list(
        "organization_id", "id"
    )
    count = 0
    for organization_id, entitlement_id in rows.iterator():
        entitlement_snapshot_refresh.apply_async(
            (organization_id, entitlement_id), queue="billing", expires=55
        )
        count += 1
    return count


@shared_task(name="billing.tasks.entitlement_snapshot_refresh", ignore_result=True)
def entitlement_snapshot_refresh(organization_id: str, entitlement_id: str) -> None:
    from billing import services

    organization = Organization.objects.get(id=organization_id)
    services.entitlement_snapshot_refresh(organization=organization, entitlement_id=entitlement_id)


@shared_task(name="billing.tasks.usage_landed", ignore_result=True)
def usage_landed(organization_id: str, subject_keys: list[str], earliest_event_time: str) -> None:
    """After ingest: invalidate snapshots older than late events and evaluate threshold rules."""
    from billing import services

    organization = Organization.objects.get(id=organization_id)
    services.entitlements_usage_landed(
        organization=organization,
        subject_keys=subject_keys,
        earliest_event_time=datetime.fromisoformat(earliest_event_time),
    )


def usage_landed_listener(
    *, organization, subjects: list[str], earliest_event_time: datetime, **_: object
) -> None:
    """Metering ingest listener: queue `usage_landed` after the ingest transaction commits."""
    from django.db import transaction

    transaction.on_commit(
        lambda: usage_landed.apply_async(
            (organization.id, sorted(set(subjects)), earliest_event_time.isoformat()), queue="billing"
        )
    )
