"""Grant writes: add a grant to a metered entitlement (expiry, rollover, recurrence) and void one."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing.entitlements.thresholds import entitlement_thresholds_check
from billing.models import BalanceSnapshot, Entitlement, EntitlementType, Grant
from billing.periods import Cadence, InvalidCadence, period_start
from core.audit import Actor, audit_object
from core.errors import NotFound, ValidationFailed
from core.models import Organization

EXPIRATION_UNITS = {"HOUR": "PT1H", "DAY": "P1D", "WEEK": "P1W", "MONTH": "P1M", "YEAR": "P1Y"}


def interval_parse(value: str, field: str) -> str:
    try:
        Cadence.parse(value)
    except InvalidCadence as exc:
        raise ValidationFailed(str(exc), field=field) from None
    return {"DAY": "P1D", "WEEK": "P1W", "MONTH": "P1M", "YEAR": "P1Y"}.get(value.upper(), value.upper())


def grant_insert(
    *,
    organization: Organization,
    entitlement: Entitlement,
    amount: Decimal,
    effective_at: datetime | None = None,
    priority: int = 1,
    expiration: dict | None = None,
    min_rollover: Decimal | None = None,
    max_rollover: Decimal | None = None,
    recurrence: dict | None = None,
    metadata: dict | None = None,
    source: str = "api",
) -> Grant:
    if entitlement.type != EntitlementType.METERED:
        raise ValidationFailed("Grants can only be added to metered entitlements.", field="entitlement")
    if amount is None or Decimal(amount) <= 0:
        raise ValidationFailed("amount must be greater than 0.", field="amount")
    effective_at = effective_at or timezone.now()
    # OpenMeter ceils effectiveAt to the minute.
    if effective_at.second or effective_at.microsecond:
        effective_at = effective_at.replace(second=0, microsecond=0) + timedelta(minutes=1)
    expires_at = None
    duration, count = "", None
    if expiration:
        duration = str(expiration.get("duration", "")).upper()
        count = int(expiration.get("count") or 0)
        if duration not in EXPIRATION_UNITS or count <= 0:
            raise ValidationFailed(
                "expiration needs duration HOUR|DAY|WEEK|MONTH|YEAR and count > 0.", field="expiration"
            )
        expires_at = period_start(
            effective_at, Cadence.parse(EXPIRATION_UNITS[duration]), count, entitlement.timezone
        )
    rec_interval, rec_anchor = "", None
    if recurrence:
        rec_interval = interval_parse(str(recurrence.get("interval", "")), "recurrence.interval")
        rec_anchor = recurrence.get("anchor") or effective_at
    max_r = Decimal(max_rollover) if max_rollover is not None else Decimal(0)
    min_r = Decimal(min_rollover) if min_rollover is not None else Decimal(0)
    if min_r < 0 or max_r < 0:
        raise ValidationFailed("Rollover amounts must not be negative.", field="minRolloverAmount")
    grant = Grant.objects.create(
        organization=organization,
        entitlement=entitlement,
        amount=Decimal(amount),
        priority=priority,
        effective_at=effective_at,
        expiration_duration=duration,
        expiration_count=count,
        expires_at=expires_at,
        min_rollover=min_r,
        max_rollover=max_r,
        recurrence_interval=rec_interval,
        recurrence_anchor=rec_anchor,
        metadata=metadata or {},
        source=source,
    )
    # A back-dated grant changes balances after its effective time.
    BalanceSnapshot.objects.filter(entitlement=entitlement, at__gt=effective_at).delete()
    return grant


def grant_create(
    *, organization: Organization, entitlement: Entitlement, actor: Actor = None, **fields: Any
) -> Grant:
    with transaction.atomic():
        grant = grant_insert(organization=organization, entitlement=entitlement, **fields)
        audit_object(
            grant,
            "grant.created",
            actor,
            after={
                "entitlementId": entitlement.id,
                "amount": str(grant.amount),
                "priority": grant.priority,
                "effectiveAt": grant.effective_at.isoformat(),
            },
        )
    transaction.on_commit(
        lambda: entitlement_thresholds_check(organization=organization, entitlement_ids=[entitlement.id])
    )
    return grant


def grant_void(*, organization: Organization, grant_id: str, actor: Actor = None) -> Grant:
    now = timezone.now()
    with transaction.atomic():
        grant = Grant.objects.select_for_update().filter(organization=organization, id=grant_id).first()
        if grant is None:
            raise NotFound(f"No such grant: {grant_id!r}.")
        if grant.voided_at is not None:
            return grant
        grant.voided_at = now
        grant.save(update_fields=["voided_at", "updated_at"])
        BalanceSnapshot.objects.filter(entitlement_id=grant.entitlement_id, at__gt=now).delete()
        audit_object(grant, "grant.voided", actor, after={"voidedAt": now.isoformat()})
    return grant
