"""Event retention per organization, and the upkeep of the event store's monthly partitions (the
services behind the `metering.tasks.events_expire` and `metering.tasks.event_partitions_maintain` jobs).

An organization without an `EventRetention` row keeps its events forever (the default). With one, its raw
events (and their dedup keys) are removed once their whole month is older than `days` days: months
where every organization present is expired go as whole partitions, months shared with an organization
that keeps them lose only the expired organizations' rows (`store.events_expire`: the PostgreSQL store's
`partitions.py`, or `metering/clickhouse/retention.py` with METERING_STORE=clickhouse, the same rule).
Hourly rollups are kept, so meter totals over removed months stay answerable at hour precision.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from core.audit import Actor, audit_object
from core.errors import ValidationFailed
from core.models import Organization
from metering import store
from metering.models import EventRetention

RETENTION_MIN_DAYS = 35  # the dedup window promised to senders: a resend within it is never counted twice
RETENTION_MAX_DAYS = 36_500


def event_retention_get(*, organization: Organization) -> int | None:
    """Days an organization's events are kept; None: forever."""
    row = EventRetention.objects.filter(organization=organization).first()
    return row.days if row else None


def event_retention_set(*, organization: Organization, days: int | None, actor: Actor = None) -> int | None:
    """Keep the organization's raw events `days` days (None: forever), audited. Refused (nothing written)
    unless a whole number of days in [RETENTION_MIN_DAYS, RETENTION_MAX_DAYS]."""
    if days is not None and (isinstance(days, bool) or not isinstance(days, int)):
        raise ValidationFailed("must be a whole number of days, or null to keep events forever", field="days")
    if days is not None and not RETENTION_MIN_DAYS <= days <= RETENTION_MAX_DAYS:
        raise ValidationFailed(
            f"must be between {RETENTION_MIN_DAYS} and {RETENTION_MAX_DAYS} days (the dedup window of "
            f"{RETENTION_MIN_DAYS} days is kept), or null to keep events forever",
            field="days",
        )
    with transaction.atomic():
        before = event_retention_get(organization=organization)
        if days is None:
            EventRetention.objects.filter(organization=organization).delete()
        else:
            EventRetention.objects.update_or_create(organization=organization, defaults={"days": days})
        if before != days:
            audit_object(
                organization,
                "metering.event_retention.set",
                actor,
                object_type="organization",
                before={"days": before},
                after={"days": days},
            )
    return days


def retention_cutoffs(*, now: datetime) -> dict[str, datetime]:
    """{organization id: events before this instant may go} for every organization with a retention."""
    return {
        org_id: now - timedelta(days=days)
        for org_id, days in EventRetention.objects.values_list("organization_id", "days")
    }


def events_expire(*, now: datetime | None = None) -> store.ExpireResult:
    """Apply every organization's retention (idempotent; organizations without one are never touched)."""
    return store.events_expire(cutoffs=retention_cutoffs(now=now or timezone.now()))


def event_partitions_maintain(*, now: datetime | None = None) -> list[str]:
    """Create the coming months' partitions and move months found in the default partition into their
    own (idempotent). Returns the partitions created. Nothing to do with the ClickHouse store, whose events
    never reach PostgreSQL's event table (should the store be switched back, the default partition takes
    every month until this runs again)."""
    if store.clickhouse_selected():
        return []
    return store.partitions_ensure(now=now or timezone.now())
