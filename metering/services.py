"""Writes for metering: event ingestion, meter create/update/delete, rollup runs."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core import jobs
from core.audit import Actor, audit_object
from core.audited import create_audited
from core.background import Refreshed
from core.errors import Unavailable, raise_invalid
from core.ids import is_ulid
from core.models import Organization
from metering import hooks, store
from metering.drain import drain_lanes, drain_soon, events_drain_all, events_flush
from metering.jsonpath import value_path_problem
from metering.models import Aggregation, Meter, RejectedEvent
from metering.selectors import meter_get

SLUG_RE = re.compile(r"^[a-z0-9]+(?:[_-][a-z0-9]+)*$")
DIM_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
logger = logging.getLogger(__name__)
ROLLUP_JOB = "rollups_advance"
RESERVED_DIMS = {"subject", "customer_id", "customerId", "windowstart", "windowend", "value"}


# --- events ------------------------------------------------------------------------------------
#
# The API accepts a validated request into the inbox (one row, `events_accept`) and answers; a drain
# (metering/drain.py: the Celery task, or any read of this organization's usage) moves accepted batches
# into the event store, dedups them there and then calls the ingest listeners. `events_ingest` stores
# already-built tuples synchronously (demo data, loaders, tests).


# The inbox's pending event count, read from the database at most once a second per process.
_backlog = Refreshed(lambda: store.inbox_pending_events(), ttl=1.0)


def events_accept(
    *, organization: Organization, body: bytes, event_count: int, received_at: datetime | None = None
) -> int:
    """Durably accept a validated request (`metering.ingest`); a drain is scheduled after commit.

    Backpressure: while more than INGEST_BACKLOG_MAX_EVENTS accepted events wait to be stored, requests
    are refused with 503 + Retry-After (nothing is stored; the client retries), so a burst beyond what
    the drain sustains cannot grow the backlog, and the lag of reads, without bound."""
    limit = settings.INGEST_BACKLOG_MAX_EVENTS
    if limit and (pending := _backlog.get()) > limit:
        raise Unavailable(
            f"{pending:,} accepted events are waiting to be stored, more than INGEST_BACKLOG_MAX_EVENTS "
            f"({limit:,}); nothing of this request was stored, retry in a few seconds.",
            retry_after=5,
            extra={"pending": pending, "limit": limit},
        )
    batch_id = store.inbox_append(
        organization_id=organization.id,
        body=body,
        event_count=event_count,
        received_at=received_at or timezone.now(),
        lanes=drain_lanes(),
    )
    transaction.on_commit(drain_soon)
    return batch_id


def events_accept_partial(
    *,
    organization: Organization,
    body: bytes | None,
    event_count: int,
    rejected: Sequence[Mapping[str, Any]],
) -> int | None:
    """Accept the good part of a request whose other items were refused (the Kong path): the validated
    events (`body`, None when there are none) go to the inbox as in `events_accept`, and each refused item
    is logged as a rejected event (`RejectedEvent` fields, shown by the event log), in one transaction.
    An item logged identically before (the client resent the request) is not logged twice."""
    with transaction.atomic():
        batch_id = None
        if body is not None:
            batch_id = events_accept(organization=organization, body=body, event_count=event_count)
        if rejected:
            seen = {
                _rejected_key(row)
                for row in RejectedEvent.objects.filter(
                    organization=organization,
                    reason__in={row["reason"] for row in rejected},
                    event_id__in={row["event_id"] for row in rejected},
                ).values("source", "event_id", "reason", "detail", "data")
            }
            new = []
            for row in rejected:
                key = _rejected_key(row)
                if key not in seen:
                    seen.add(key)
                    new.append(row)
            store.rejected_insert(organization_id=organization.id, rows=new, received_at=timezone.now())
    return batch_id


def _rejected_key(row: Mapping[str, Any]) -> tuple[str, ...]:
    data = json.dumps(row["data"], sort_keys=True, default=str)
    return (row["source"], row["event_id"], row["reason"], row["detail"], data)


def events_ingest(
    *, organization: Organization, events: list[store.EventTuple], received_at: datetime | None = None
) -> store.InsertResult:
    """Store already-built events synchronously (demo data, loaders, tests); dedup as for the API.

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
        reason = value_path_problem(path)
        if reason:
            errors.append({"name": f"groupBy.{dim}", "reason": reason})
    return dict(group_by)


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
            reason = value_path_problem(value_property)
            if reason:
                errors.append({"name": "valueProperty", "reason": reason})
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
    raise_invalid(
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
    return create_audited(
        lambda: Meter.objects.create(
            organization=organization,
            slug=slug,
            name=name or slug,
            description=description or "",
            event_type=event_type.strip(),
            aggregation=aggregation,
            value_property=value_property or "",
            group_by=dict(group_by or {}),
            event_from=event_from,
        ),
        action="meter.created",
        after=meter_snapshot,
        actor=actor,
        conflict=f"A meter with slug {slug!r} already exists.",
        field="slug",
    )


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
    raise_invalid(errors)
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
        audit_object(
            meter,
            "meter.updated",
            actor,
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
            audit_object(
                meter,
                "meter.deleted",
                actor,
                before=meter_snapshot(meter),
            )
    return meter


# --- rollups -----------------------------------------------------------------------------------


def rollups_advance(*, organization_id: str | None = None, max_chunks: int = 50) -> dict[str, int]:
    """Store accepted batches, then advance every live meter's rollup watermark to the safe horizon.
    Safe to run concurrently/twice."""
    if organization_id:
        events_flush(organization_id=organization_id)
    else:
        events_drain_all()
    horizon = store.safe_horizon()
    qs = Meter.objects.filter(deleted_at__isnull=True).exclude(aggregation=Aggregation.UNIQUE_COUNT)
    if organization_id:
        qs = qs.filter(organization_id=organization_id)
    # a meter whose rollup fails is recorded and skipped for a back-off (core.jobs): every other meter, of
    # every organization, still advances; `manage.py job_failures --retry` tries it again at once
    skip = jobs.quarantined(ROLLUP_JOB, "meter")
    done: dict[str, int] = {}
    for meter in qs.exclude(id__in=skip).order_by("id"):
        with jobs.isolated(
            ROLLUP_JOB,
            organization_id=meter.organization_id,
            object_type="meter",
            object_id=meter.id,
            was_failing=meter.id in skip.failing,
        ) as outcome:
            spec = store.MeterSpec.of(meter)
            for _ in range(max_chunks):
                low, high = store.rollup_advance(spec=spec, horizon=horizon)
                if high == low or high >= horizon:
                    break
        if not outcome.failed:
            done[meter.id] = high
    return done
