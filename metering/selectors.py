"""Reads for metering. Billing, entitlements and the portal call `meter_query` / `meter_usage_total`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import Q, QuerySet
from django.utils import timezone

from core.errors import NotFound, ValidationFailed
from core.ids import is_ulid
from core.models import Organization
from core.querysets import filter_given
from metering import drain, hooks, store
from metering.jsonpath import as_number, compile_path, extract, value_path_problem
from metering.models import Aggregation, Meter, RejectedEvent
from metering.store import UsageRow

WINDOW_SIZES = ("MINUTE", "HOUR", "DAY", "MONTH")


def _fresh(organization_id: str) -> None:
    """Read-your-writes for event reads: store the batches this organization had accepted first (one
    index probe when none are pending). See drain.events_flush."""
    drain.events_flush(organization_id=organization_id)


def _flusher(organization_id: str) -> store.Flush:
    """Read-your-writes for usage reads: the store probes the inbox together with the watermarks (no extra
    statement) and calls this only when batches are pending."""

    def flush(up_to_id: int) -> object:
        return drain.events_drain(organization_id=organization_id, up_to_id=up_to_id)

    return flush


def meter_list(*, organization: Organization, include_deleted: bool = False) -> QuerySet[Meter]:
    qs = Meter.objects.filter(organization=organization)
    if not include_deleted:
        qs = qs.filter(deleted_at__isnull=True)
    return qs.order_by("slug", "id")


def meter_get(*, organization: Organization, id_or_slug: str, include_deleted: bool = False) -> Meter:
    """A live meter by ULID id or slug (raises NotFound)."""
    qs = Meter.objects.filter(organization=organization)
    if not include_deleted:
        qs = qs.filter(deleted_at__isnull=True)
    cond = Q(slug=id_or_slug)
    if is_ulid(id_or_slug):
        cond |= Q(pk=id_or_slug.upper())
    meter = qs.filter(cond).order_by("-created_at").first()
    if meter is None:
        raise NotFound(f"No meter {id_or_slug!r} in this organization.")
    return meter


def meter_query(
    *,
    organization: Organization,
    meter: Meter,
    from_: datetime | None = None,
    to: datetime | None = None,
    window_size: str | None = None,
    window_tz: str = "UTC",
    subjects: Sequence[str] | None = None,
    customer_ids: Sequence[str] | None = None,
    customers: Mapping[str, Sequence[str]] | None = None,
    group_by: Sequence[str] = (),
    filter_group_by: Mapping[str, Sequence[str]] | None = None,
    use_rollups: bool = True,
) -> list[UsageRow]:
    """Aggregate `meter` over [from_, to) in windows of `window_size` (None = one window) in `window_tz`.

    - `subjects`: only these subjects. `group_by` may contain meter dimensions and "subject";
      passing `subjects` implies grouping by subject (OpenMeter semantics).
    - `customers`: `{customer_id: [subject, ...]}` (from billing); only their subjects count and
      rows are grouped and labelled by `customer_id`. `customer_ids` instead asks the registered
      customer resolver (metering.hooks) for that mapping.
    - `filter_group_by`: `{dimension: [allowed values]}`.
    Returns UsageRow(value: Decimal, window_start, window_end, subject, customer_id, group_by).
    Exact: rollups below the watermark plus raw events above it (docs/metering.md).
    """
    if meter.organization_id != organization.id:
        raise NotFound("No such meter in this organization.")
    if window_size is not None and window_size not in WINDOW_SIZES:
        raise ValidationFailed(f"windowSize must be one of {', '.join(WINDOW_SIZES)}.", field="windowSize")
    try:
        ZoneInfo(window_tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(f"Unknown time zone {window_tz!r}.", field="windowTimeZone") from None
    if from_ is not None and to is not None and from_ >= to:
        raise ValidationFailed("from must be before to.", field="from")
    dims: list[str] = []
    group_subject = subjects is not None
    group_customer = False
    for key in group_by:
        if key == "subject":
            group_subject = True
        elif key in ("customer_id", "customerId"):
            group_customer = True
        elif key in meter.group_by:
            if key not in dims:
                dims.append(key)
        else:
            raise ValidationFailed(
                f"groupBy {key!r} is not a dimension of meter {meter.slug!r} "
                f"({', '.join(sorted(meter.group_by)) or 'none'}).",
                field="groupBy",
            )
    for key in filter_group_by or {}:
        if key not in meter.group_by:
            raise ValidationFailed(
                f"filterGroupBy {key!r} is not a dimension of meter {meter.slug!r}.",
                field=f"filterGroupBy[{key}]",
            )
    if customer_ids is not None and customers is None:
        customers = hooks.resolve_customers(organization=organization, customer_ids=list(customer_ids))
        if customers is None:
            raise ValidationFailed(
                "Customer filtering needs the billing app's customer mapping, which is not installed.",
                field="filterCustomerId",
            )
        missing = [c for c in customer_ids if c not in customers]
        if missing:
            raise NotFound(f"No customer {missing[0]!r} in this organization.")
    if customers is not None:
        group_customer = True
    query = store.UsageQuery(
        spec=store.MeterSpec.of(meter),
        time_from=from_,
        time_to=to,
        window_size=window_size,
        window_tz=window_tz,
        subjects=list(subjects) if subjects is not None else None,
        group_by=tuple(dims),
        group_by_subject=group_subject,
        filter_group_by={k: list(v) for k, v in (filter_group_by or {}).items()},
        customers=customers,
        group_by_customer=group_customer,
        use_rollups=use_rollups,
    )
    return store.usage_query(query, flush=_flusher(organization.id))


def meter_usage_total(
    *,
    organization: Organization,
    meter: str,
    subjects: Sequence[str],
    start: datetime,
    end: datetime,
    filters: Mapping[str, str | Sequence[str]] | None = None,
) -> Decimal:
    """Total usage of `subjects` on meter (slug or id) in [start, end), with {dimension: value or [values]}
    filters.

    The entry point billing's `sources.usage_total` calls. No events = 0.
    """
    m = meter_get(organization=organization, id_or_slug=meter)
    if not subjects:
        return Decimal(0)
    query = store.UsageQuery(
        spec=store.MeterSpec.of(m),
        time_from=start,
        time_to=end,
        subjects=list(subjects),
        filter_group_by={k: [v] if isinstance(v, str) else list(v) for k, v in (filters or {}).items()},
    )
    rows = store.usage_query(query, flush=_flusher(organization.id))
    if not rows:
        return Decimal(0)
    if len(rows) == 1:
        return rows[0].value
    raise AssertionError("ungrouped query returned several rows")  # pragma: no cover


UsageTotalRequest = tuple[
    Meter | str,  # meter
    Sequence[str] | None,  # subjects
    datetime | None,  # from_
    datetime | None,  # to
    Mapping[str, str | Sequence[str]] | None,  # filter_group_by
]
BULK_AGGREGATIONS = (Aggregation.SUM, Aggregation.COUNT)


def meter_usage_totals(*, organization: Organization, requests: Sequence[UsageTotalRequest]) -> list[Decimal]:
    """Totals for many (meter, subjects, from_, to, filter_group_by) at once, in request order.

    `meter`: a Meter or a slug / id (resolved with one query); `subjects`: None = every subject, [] = 0;
    `filter_group_by`: {dimension: value or [values]}. SUM and COUNT meters are answered together in
    three statements whatever the number of requests, meters or subjects (`store.usage_totals_many`:
    watermarks, one UNION ALL over rollups + raw tail, watermarks again), exactly like `meter_query`.
    Other aggregations fall back to one usage query each and return the sum of its per-subject rows
    (the number billing has always used for them). No counted events = 0.
    """
    names = {m for m, *_ in requests if not isinstance(m, Meter)}
    by_name: dict[str, Meter] = {}
    if names:
        for m in meter_list(organization=organization).filter(Q(slug__in=names) | Q(pk__in=names)):
            by_name[m.slug] = by_name[m.id] = m
    out: list[Decimal | None] = [None] * len(requests)
    bulk: list[tuple[int, store.TotalRequest]] = []
    for i, (meter_ref, subjects, from_, to, filters) in enumerate(requests):
        if isinstance(meter_ref, Meter):
            meter = meter_ref
        else:
            found = by_name.get(meter_ref) or by_name.get(meter_ref.upper())
            if found is None:
                raise NotFound(f"No meter {meter_ref!r} in this organization.")
            meter = found
        if meter.organization_id != organization.id:
            raise NotFound("No such meter in this organization.")
        fgb = {k: [v] if isinstance(v, str) else list(v) for k, v in (filters or {}).items()}
        for key in fgb:
            if key not in meter.group_by:
                raise ValidationFailed(
                    f"filterGroupBy {key!r} is not a dimension of meter {meter.slug!r}.",
                    field=f"filterGroupBy[{key}]",
                )
        if (subjects is not None and not subjects) or (from_ is not None and to is not None and from_ >= to):
            out[i] = Decimal(0)
        else:
            subs = list(subjects) if subjects is not None else None
            request = store.TotalRequest(store.MeterSpec.of(meter), subs, from_, to, fgb)
            if meter.aggregation in BULK_AGGREGATIONS:
                bulk.append((i, request))
            else:
                rows = store.usage_query(request.per_subject(), flush=_flusher(organization.id))
                out[i] = sum((r.value for r in rows), Decimal(0))
    if bulk:
        totals = store.usage_totals_many(requests=[r for _, r in bulk], flush=_flusher(organization.id))
        for (i, _), total in zip(bulk, totals, strict=True):
            out[i] = total
    return [v if v is not None else Decimal(0) for v in out]


def meter_subjects(
    *, organization: Organization, meter: Meter, from_: datetime | None = None, to: datetime | None = None
) -> list[str]:
    _fresh(organization.id)
    return store.subjects_list(spec=store.MeterSpec.of(meter), time_from=from_, time_to=to)


def meter_group_values(*, organization: Organization, meter: Meter, key: str) -> list[str]:
    if key not in meter.group_by:
        raise NotFound(f"Meter {meter.slug!r} has no group-by dimension {key!r}.")
    _fresh(organization.id)
    return store.group_values_list(spec=store.MeterSpec.of(meter), key=key)


# --- event log ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class IngestedEvent:
    event: dict[str, Any]
    ingested_at: datetime
    stored_at: datetime
    validation_error: str | None

    @property
    def data_text(self) -> str:
        """The data as compact JSON for pages, at most 2000 characters; never fails on a row stored before
        the ingest limits (nested too deep to print)."""
        try:
            text = json.dumps(self.event.get("data"), default=str, ensure_ascii=False, separators=(",", ":"))
        except (RecursionError, ValueError):
            return "(nested too deep to show)"
        return text if len(text) <= 2000 else text[:2000] + "…"


def _reasons(ev_type: str, time: datetime, data: Any, meters: list[Meter]) -> str | None:
    """Why a stored event does not count (read-time, against the current meters), or None."""
    matching = [m for m in meters if m.event_type == ev_type]
    if not matching:
        return f"matched no meter: no meter has eventType {ev_type!r}"
    problems: list[str] = []
    counted = False
    for m in matching:
        if m.event_from and time < m.event_from:
            problems.append(f"meter {m.slug}: before its eventFrom")
            continue
        if m.aggregation in (Aggregation.COUNT,):
            counted = True
            continue
        value = extract(data, compile_path(m.value_property)) if m.value_property else None
        if m.aggregation == Aggregation.UNIQUE_COUNT:
            if value is None:
                problems.append(f"meter {m.slug}: {m.value_property} is missing")
            else:
                counted = True
            continue
        if as_number(value) is None:
            what = "missing" if value is None else "not a number"
            problems.append(f"meter {m.slug}: {m.value_property} is {what}, not counted")
        else:
            counted = True
    if problems and not counted:
        return "; ".join(problems)
    if problems:
        return "partly counted: " + "; ".join(problems)
    return None


# the event log's filters (`store.EventFilters`) on the rejected events
_REJECTED_LOOKUPS = {
    "subject": "subject",
    "type": "type",
    "id": "event_id",
    "time_from": "time__gte",
    "time_to": "time__lt",
    "stored_from": "received_at__gte",
    "stored_to": "received_at__lt",
}


def events_list(
    *,
    organization: Organization,
    subject: str | None = None,
    type: str | None = None,
    id: str | None = None,
    from_: datetime | None = None,
    to: datetime | None = None,
    limit: int = 100,
    has_error: bool | None = None,
    ingested_from: datetime | None = None,
    ingested_to: datetime | None = None,
) -> list[IngestedEvent]:
    """Recent events, newest ingested first, with `validation_error` for those that did not count:
    rejected ones (e.g. same id with a different payload) and stored ones that match no meter or
    carry no usable value (computed now, against the current meters). Four queries at most."""
    _fresh(organization.id)
    filters: store.EventFilters = {
        "subject": subject,
        "type": type,
        "id": id,
        "time_from": from_,
        "time_to": to,
        "stored_from": ingested_from,
        "stored_to": ingested_to,
    }
    stored = store.events_list(organization_id=organization.id, limit=limit, **filters)
    rejected_filters = {_REJECTED_LOOKUPS[name]: value for name, value in filters.items()}
    rej = filter_given(RejectedEvent.objects.filter(organization=organization), **rejected_filters)
    meters = list(meter_list(organization=organization))
    out: list[IngestedEvent] = []
    for ev in stored:
        out.append(
            IngestedEvent(
                event=_ce(ev.id, ev.source, ev.type, ev.subject, ev.time, ev.data),
                ingested_at=ev.stored_at,
                stored_at=ev.stored_at,
                validation_error=_reasons(ev.type, ev.time, ev.data, meters),
            )
        )
    for r in rej.order_by("-received_at", "-id")[:limit]:
        out.append(
            IngestedEvent(
                event=_ce(r.event_id, r.source, r.type, r.subject, r.time, r.data),
                ingested_at=r.received_at,
                stored_at=r.received_at,
                validation_error=f"{r.reason}: {r.detail}",
            )
        )
    if has_error is not None:
        out = [e for e in out if (e.validation_error is not None) == has_error]
    out.sort(key=lambda e: e.ingested_at, reverse=True)
    return out[:limit]


def _ce(id: str, source: str, type: str, subject: str, time: datetime | None, data: Any) -> dict[str, Any]:
    return {
        "id": id,
        "source": source,
        "specversion": "1.0",
        "type": type,
        "subject": subject,
        "time": time,
        "data": data,
    }


def meters_usage_last_24h(
    *, organization: Organization, meters: Sequence[Meter]
) -> dict[str, Decimal | None]:
    """{meter id: total over the last 24 h} for the console list: two queries whatever the number of
    meters (watermarks, then one UNION ALL statement over rollups and the fresh tail)."""
    now = timezone.now()
    return store.usage_totals(
        specs=[store.MeterSpec.of(m) for m in meters if m.organization_id == organization.id],
        time_from=now - timedelta(hours=24),
        time_to=now,
        flush=_flusher(organization.id),
    )


# --- path tester (no database) -----------------------------------------------------------------------
@dataclass(frozen=True)
class PathReading:
    name: str  # "value" or a group-by dimension
    path: str
    value: Any  # what the path finds in data (None when missing)
    number: Decimal | None  # the value as the meter counts it (value path only)
    problem: str  # why the path cannot be used or finds nothing; "" when fine


def meter_paths_try(
    *, sample: dict[str, Any], aggregation: str, value_property: str, group_by: Mapping[str, str]
) -> tuple[Any, list[PathReading]]:
    """What a meter would read from a pasted event, before saving it: `sample` is a CloudEvent (its `data`
    is read) or the data itself. Returns (data, readings) with the value path first, then each dimension."""
    is_event = "data" in sample and ("specversion" in sample or "type" in sample or "subject" in sample)
    data = sample["data"] if is_event else sample
    paths = [("value", value_property)] if aggregation != "COUNT" else []
    paths += list(group_by.items())
    readings = []
    for name, path in paths:
        problem = value_path_problem(path) or ""
        value, number = None, None
        if not problem:
            value = extract(data, compile_path(path))
            number = as_number(value) if name == "value" else None
            if value is None:
                problem = "nothing at this path in the event's data"
            elif name == "value" and number is None:
                problem = "not a number, so the meter would not count this event"
        readings.append(PathReading(name=name, path=path, value=value, number=number, problem=problem))
    return data, readings


def meter_event_values(
    *,
    organization: Organization,
    meter: Meter,
    subjects: Sequence[str],
    from_: datetime,
    to: datetime,
    filter_group_by: Mapping[str, Sequence[str]] | None = None,
    limit: int,
) -> list[Decimal]:
    """Each event's value in [from_, to), in event-time order, at most `limit` (`store.TooManyEvents`
    above): what a price rated transaction by transaction reads."""
    if meter.organization_id != organization.id:
        raise NotFound("No such meter in this organization.")
    _fresh(organization.id)
    return store.event_values(
        spec=store.MeterSpec.of(meter),
        subjects=subjects,
        time_from=from_,
        time_to=to,
        filter_group_by={k: list(v) for k, v in (filter_group_by or {}).items()},
        limit=limit,
    )
