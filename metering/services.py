"""Writes for metering: event ingestion, meter create/update/delete, rollup runs."""

from __future__ import annotations

import re
from datetime import datetime
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.audit import Actor, audit_record
from core.errors import Conflict, ValidationFailed
from core.ids import is_ulid
from core.models import Organization
from metering import hooks, store
from metering.jsonpath import JsonPathError, compile_path
from metering.models import Aggregation, Meter
from metering.selectors import meter_get

SLUG_RE = re.compile(r"^[a-z0-9]+(?:[_-][a-z0-9]+)*$")
DIM_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED_DIMS = {"subject", "customer_id", "customerId", "windowstart", "windowend", "value"}


# --- events ------------------------------------------------------------------------------------


def events_ingest(
    *, organization: Organization, events: list[store.EventTuple], received_at: datetime | None = None
) -> store.InsertResult:
    """Store validated events atomically; dedup on (organization, source, id) is done by the database.

    When new events were stored, the ingest listeners (`metering.hooks`) are called once, after the
    transaction commits (right away in autocommit)."""
    result = store.events_insert(
        organization_id=organization.id, events=events, received_at=received_at or timezone.now()
    )
    if result.inserted and hooks.ingest_listeners():
        # EventTuple = (source, event_id, type, subject, time, data)
        transaction.on_commit(
            partial(
                hooks.ingest_landed,
                organization=organization,
                subjects={ev[3] for ev in events},
                earliest_event_time=min(ev[4] for ev in events),
                event_types={ev[2] for ev in events},
            )
        )
    return result


# --- meters ------------------------------------------------------------------------------------


def meter_snapshot(meter: Meter) -> dict[str, Any]:
    return {
        "slug": meter.slug,
        "name": meter.name,
        "description": meter.description,
        "eventType": meter.event_type,
        "aggregation": meter.aggregation,
        "valueProperty": meter.value_property or None,
        "groupBy": meter.group_by,
        "eventFrom": meter.event_from.isoformat() if meter.event_from else None,
    }


def _check_group_by(group_by: Any, errors: list[dict[str, str]]) -> dict[str, str]:
    if group_by is None:
        return {}
    if not isinstance(group_by, dict):
        errors.append({"name": "groupBy", "reason": "must be an object {dimension: JSONPath}"})
        return {}
    for dim, path in group_by.items():
        if not DIM_RE.match(str(dim)) or dim in RESERVED_DIMS:
            errors.append(
                {
                    "name": f"groupBy.{dim}",
                    "reason": "dimension names are letters, digits and _ "
                    f"(not {', '.join(sorted(RESERVED_DIMS))})",
                }
            )
            continue
        try:
            compile_path(path)
        except JsonPathError as exc:
            errors.append({"name": f"groupBy.{dim}", "reason": str(exc)})
    return dict(group_by)


def _raise(errors: list[dict[str, str]]) -> None:
    if errors:
        raise ValidationFailed("; ".join(f"{e['name']}: {e['reason']}" for e in errors), errors=errors)


def meter_validate(
    *,
    slug: Any,
    event_type: Any,
    aggregation: Any,
    value_property: Any,
    group_by: Any,
    name: Any = "",
    description: Any = "",
) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    if not isinstance(slug, str) or not SLUG_RE.match(slug) or len(slug) > 63:
        errors.append({"name": "slug", "reason": "required: lowercase letters, digits, _ or -, at most 63"})
    elif is_ulid(slug):
        errors.append({"name": "slug", "reason": "must not look like an id (ULID)"})
    if not isinstance(event_type, str) or not event_type.strip() or len(event_type) > 255:
        errors.append({"name": "eventType", "reason": "required, a non-empty string"})
    if aggregation not in Aggregation.values:
        errors.append({"name": "aggregation", "reason": f"one of {', '.join(Aggregation.values)}"})
    if aggregation == Aggregation.COUNT:
        if value_property:
            errors.append({"name": "valueProperty", "reason": "must be empty for COUNT"})
    elif aggregation in Aggregation.values:
        if not value_property:
            errors.append({"name": "valueProperty", "reason": f"required for {aggregation}, e.g. $.tokens"})
        else:
            try:
                compile_path(value_property)
            except JsonPathError as exc:
                errors.append({"name": "valueProperty", "reason": str(exc)})
    _check_group_by(group_by, errors)
    if name is not None and (not isinstance(name, str) or len(name) > 200):
        errors.append({"name": "name", "reason": "a string of at most 200 characters"})
    if description is not None and not isinstance(description, str):
        errors.append({"name": "description", "reason": "must be a string"})
    return errors


def meter_create(
    *,
    organization: Organization,
    slug: str,
    event_type: str,
    aggregation: str,
    value_property: str | None = None,
    group_by: dict[str, str] | None = None,
    name: str = "",
    description: str = "",
    event_from: datetime | None = None,
    actor: Actor = None,
) -> Meter:
    _raise(
        meter_validate(
            slug=slug,
            event_type=event_type,
            aggregation=aggregation,
            value_property=value_property,
            group_by=group_by,
            name=name,
            description=description,
        )
    )
    try:
        with transaction.atomic():
            meter = Meter.objects.create(
                organization=organization,
                slug=slug,
                name=name or slug,
                description=description or "",
                event_type=event_type.strip(),
                aggregation=aggregation,
                value_property=value_property or "",
                group_by=dict(group_by or {}),
                event_from=event_from,
            )
            audit_record(
                organization=organization,
                actor=actor,
                action="meter.created",
                object_type="meter",
                object_id=meter.id,
                after=meter_snapshot(meter),
            )
    except IntegrityError:
        raise Conflict(f"A meter with slug {slug!r} already exists.", field="slug") from None
    return meter


def meter_update(
    *,
    organization: Organization,
    id_or_slug: str,
    name: str | None = None,
    description: str | None = None,
    group_by: dict[str, str] | None = None,
    actor: Actor = None,
) -> Meter:
    """OpenMeter's MeterUpdate: name, description and groupBy change; the rest is immutable so history
    is never rewritten. A group-by change rebuilds the meter's rollups from raw events."""
    errors: list[dict[str, str]] = []
    if group_by is not None:
        _check_group_by(group_by, errors)
    if name is not None and (not isinstance(name, str) or len(name) > 200):
        errors.append({"name": "name", "reason": "a string of at most 200 characters"})
    _raise(errors)
    with transaction.atomic():
        meter = Meter.objects.select_for_update().get(
            pk=meter_get(organization=organization, id_or_slug=id_or_slug).pk
        )
        before = meter_snapshot(meter)
        if name is not None:
            meter.name = name
        if description is not None:
            meter.description = description
        regroup = group_by is not None and dict(group_by) != meter.group_by
        if regroup:
            meter.group_by = dict(group_by or {})
        meter.save()
        if regroup:
            store.rollup_reset(meter_id=meter.id)
        audit_record(
            organization=organization,
            actor=actor,
            action="meter.updated",
            object_type="meter",
            object_id=meter.id,
            before=before,
            after=meter_snapshot(meter),
        )
    return meter


def meter_delete(*, organization: Organization, id_or_slug: str, actor: Actor = None) -> Meter:
    with transaction.atomic():
        meter = meter_get(organization=organization, id_or_slug=id_or_slug)
        updated = Meter.objects.filter(pk=meter.pk, deleted_at__isnull=True).update(deleted_at=timezone.now())
        if updated:
            meter.refresh_from_db()
            audit_record(
                organization=organization,
                actor=actor,
                action="meter.deleted",
                object_type="meter",
                object_id=meter.id,
                before=meter_snapshot(meter),
            )
    return meter


# --- rollups -----------------------------------------------------------------------------------


def rollups_advance(*, organization_id: str | None = None, max_chunks: int = 50) -> dict[str, int]:
    """Advance every live meter's rollup watermark to the safe horizon. Safe to run concurrently/twice."""
    horizon = store.safe_horizon()
    qs = Meter.objects.filter(deleted_at__isnull=True).exclude(aggregation=Aggregation.UNIQUE_COUNT)
    if organization_id:
        qs = qs.filter(organization_id=organization_id)
    done: dict[str, int] = {}
    for meter in qs.order_by("id"):
        spec = store.MeterSpec.of(meter)
        for _ in range(max_chunks):
            low, high = store.rollup_advance(spec=spec, horizon=horizon)
            if high == low or high >= horizon:
                break
        done[meter.id] = high
    return done
