"""Entitlement writes: create (with its first grants), delete, override and a manual usage reset."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing import sources
from billing.entitlements.burn import measure_from
from billing.entitlements.grants import grant_insert, interval_parse
from billing.models import BalanceSnapshot, Customer, Entitlement, EntitlementReset, EntitlementType
from billing.periods import period_at
from core.audit import Actor, audit_object
from core.errors import Conflict, NotFound, ValidationFailed
from core.models import Organization


def entitlement_create(
    *,
    organization: Organization,
    customer: Customer,
    feature_key: str,
    type: str,
    usage_period_interval: str | None = None,
    usage_period_anchor: datetime | None = None,
    is_soft_limit: bool = False,
    issue_after_reset: Decimal | None = None,
    issue_after_reset_priority: int = 1,
    preserve_overage_at_reset: bool = False,
    measure_usage_from: str | datetime | None = None,
    config: str | None = None,
    metadata: dict | None = None,
    grants: list[dict[str, Any]] | None = None,
    actor: Actor = None,
    _audit_action: str = "entitlement.created",
) -> Entitlement:
    now = timezone.now()
    if customer.deleted_at is not None:
        raise NotFound("No such customer.")
    if type not in EntitlementType.values:
        raise ValidationFailed(f"type must be one of {', '.join(EntitlementType.values)}.", field="type")
    feature = sources.feature_spec_get(organization=organization, key_or_id=feature_key)
    ent = Entitlement(
        organization=organization,
        customer=customer,
        feature_id=feature.id,
        feature_key=feature.key,
        type=type,
        active_from=now,
        metadata=metadata or {},
        timezone=customer.timezone or organization.timezone,
    )
    if type == EntitlementType.STATIC:
        if config is None:
            raise ValidationFailed("config is required for static entitlements.", field="config")
        try:
            json.loads(config)
        except (TypeError, ValueError):
            raise ValidationFailed("config must be a JSON string.", field="config") from None
        ent.config = config
    if type == EntitlementType.METERED:
        if not feature.meter_slug:
            raise ValidationFailed(
                f"Feature {feature.key!r} has no meter; metered entitlements need one.", field="featureKey"
            )
        if not usage_period_interval:
            raise ValidationFailed(
                "usagePeriod.interval is required for metered entitlements.", field="usagePeriod.interval"
            )
        ent.meter_slug = feature.meter_slug
        ent.meter_group_by_filters = feature.meter_group_by_filters
        ent.usage_period_interval = interval_parse(usage_period_interval, "usagePeriod.interval")
        ent.usage_period_anchor = usage_period_anchor or now
        ent.is_soft_limit = is_soft_limit
        ent.issue_after_reset = issue_after_reset
        ent.issue_after_reset_priority = issue_after_reset_priority
        ent.preserve_overage_at_reset = preserve_overage_at_reset
        if measure_usage_from in (None, "", "CURRENT_PERIOD_START"):
            ent.measure_usage_from = period_at(
                ent.usage_period_anchor, ent.usage_period_interval, now, ent.timezone
            ).start
        elif measure_usage_from == "NOW":
            ent.measure_usage_from = now
        elif isinstance(measure_usage_from, datetime):
            ent.measure_usage_from = measure_usage_from
        else:
            raise ValidationFailed(
                "measureUsageFrom must be CURRENT_PERIOD_START, NOW or a timestamp.", field="measureUsageFrom"
            )
        ent.active_from = min(now, ent.measure_usage_from)
    try:
        with transaction.atomic():
            ent.save()
            for index, g in enumerate(grants or []):
                try:
                    grant_insert(organization=organization, entitlement=ent, **g)
                except ValidationFailed as exc:
                    raise ValidationFailed(
                        exc.detail, field=f"grants[{index}].{exc.field or ''}".rstrip(".")
                    ) from None
            audit_object(
                ent,
                _audit_action,
                actor,
                object_type="entitlement",
                after={"customerId": customer.id, "featureKey": ent.feature_key, "type": ent.type},
            )
    except IntegrityError:
        raise Conflict(
            f"The customer already has an active entitlement for feature {feature.key!r}.", field="featureKey"
        ) from None
    return ent


def entitlement_delete(*, organization: Organization, entitlement: Entitlement, actor: Actor = None) -> None:
    now = timezone.now()
    with transaction.atomic():
        updated = Entitlement.objects.filter(
            pk=entitlement.pk, organization=organization, deleted_at__isnull=True
        ).update(deleted_at=now)
        if updated:
            audit_object(
                entitlement, "entitlement.deleted", actor, before={"featureKey": entitlement.feature_key}
            )


def entitlement_override(
    *, organization: Organization, customer: Customer, old: Entitlement, actor: Actor = None, **fields: Any
) -> Entitlement:
    """Replace an entitlement (OpenMeter's PUT .../override): soft-delete the old one, create the new one."""
    with transaction.atomic():
        entitlement_delete(organization=organization, entitlement=old, actor=actor)
        return entitlement_create(
            organization=organization,
            customer=customer,
            actor=actor,
            _audit_action="entitlement.overridden",
            **fields,
        )


def entitlement_reset(
    *, organization: Organization, entitlement: Entitlement, at: datetime | None = None, actor: Actor = None
) -> None:
    """Start a new usage period now (grants roll over). The usage-period anchor is kept (retainAnchor)."""
    if entitlement.type != EntitlementType.METERED:
        raise ValidationFailed("Only metered entitlements can be reset.", field="entitlement")
    at = at or timezone.now()
    if at < measure_from(entitlement):
        raise ValidationFailed("A reset cannot be before usage is measured.", field="effectiveAt")
    with transaction.atomic():
        EntitlementReset.objects.create(organization=organization, entitlement=entitlement, at=at)
        BalanceSnapshot.objects.filter(entitlement=entitlement, at__gt=at).delete()
        audit_object(entitlement, "entitlement.reset", actor, after={"at": at.isoformat()})
