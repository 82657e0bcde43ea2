"""What invoicing reads from `billing` (subscription timeline, due periods) and `metering` (usage).

Invoicing asks this module for plain dataclasses; the default providers read billing's subscription
timeline (`SubscriptionItem` rows: one rate card over [active_from, active_to)) and usage through
`billing.sources.usage_total` (which calls metering). `set_provider()` replaces one (tests and the
benchmark use in-memory providers for what they do not exercise).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from django.apps import apps
from django.db.models import Q

from core.models import Organization


@dataclass(frozen=True)
class BillableItem:
    """One rate card active on a subscription inside one billing period, clipped to it."""

    item_id: str
    subscription_id: str
    key: str
    name: str
    feature_key: str
    price: dict[str, Any] | None
    discounts: dict[str, Any] | None
    payment_term: str
    quantity: Decimal
    currency: str
    span_start: datetime  # [span_start, span_end) inside [period_start, period_end)
    span_end: datetime
    period_start: datetime
    period_end: datetime

    @property
    def proration(self) -> Fraction:
        from billing.proration import proration_fraction

        return proration_fraction(
            span_start=self.span_start,
            span_end=self.span_end,
            period_start=self.period_start,
            period_end=self.period_end,
        )


@dataclass(frozen=True)
class DuePeriod:
    customer_id: str
    currency: str
    period_start: datetime
    period_end: datetime


@dataclass(frozen=True)
class CurrentPeriod:
    currency: str
    period_start: datetime
    period_end: datetime


# --- default providers (billing and metering) ---------------------------------------------------------
def _subscription_model() -> Any:
    return apps.get_model("billing", "Subscription")


def _billing_items(
    *,
    organization: Organization,
    customer_id: str,
    currency: str,
    period_start: datetime,
    period_end: datetime,
) -> list[BillableItem]:
    item_model = apps.get_model("billing", "SubscriptionItem")
    rows = (
        item_model.objects.filter(
            organization=organization,
            subscription__customer_id=customer_id,
            subscription__currency=currency,
            active_from__lt=period_end,
        )
        .filter(Q(active_to__isnull=True) | Q(active_to__gt=period_start))
        .select_related("subscription")
        .order_by("active_from", "key", "id")
    )
    out = []
    for row in rows:
        out.append(
            BillableItem(
                item_id=row.id,
                subscription_id=row.subscription_id,
                key=row.key,
                name=row.name,
                feature_key=row.feature_key,
                price=row.price,
                discounts=row.discounts,
                payment_term=row.payment_term or "in_advance",
                quantity=row.quantity,
                currency=row.subscription.currency,
                span_start=max(row.active_from, period_start),
                span_end=min(row.active_to or period_end, period_end),
                period_start=period_start,
                period_end=period_end,
            )
        )
    return out


def _sub_period(sub: Any, at: datetime) -> tuple[datetime, datetime, int]:
    from billing.periods import period_at

    p = period_at(sub.billing_anchor, sub.billing_cadence, at, sub.timezone)
    return p.start, p.end, p.index


BACKFILL_PERIODS = 3  # closed periods per subscription the clock looks at (the latest and two before)


def _billing_due_periods(*, organization: Organization, cutoff: datetime) -> list[DuePeriod]:
    """The closed billing periods (end <= `cutoff`) of every subscription: the latest one and up to
    `BACKFILL_PERIODS - 1` before it, so a clock that was down for a period back-fills what it missed
    (the scheduler drops those already invoiced)."""
    from billing.periods import Cadence, period_start

    subs = (
        _subscription_model()
        .objects.filter(organization=organization, active_from__lt=cutoff)
        .filter(Q(active_to__isnull=True) | Q(active_to__gt=cutoff - timedelta(days=400)))
        .only(
            "id",
            "customer_id",
            "currency",
            "billing_anchor",
            "billing_cadence",
            "timezone",
            "active_from",
            "active_to",
        )
    )
    out: set[DuePeriod] = set()
    for sub in subs:
        at = min(cutoff, sub.active_to - timedelta(microseconds=1)) if sub.active_to else cutoff
        _start, end, index = _sub_period(sub, at)
        latest = index if end <= cutoff else index - 1  # an ended subscription's last period is closed
        cadence = Cadence.parse(sub.billing_cadence)
        due_end = period_start(sub.billing_anchor, cadence, latest + 1, sub.timezone)
        # the latest closed period and up to BACKFILL_PERIODS - 1 before it (a clock that was down)
        for k in range(latest, latest - BACKFILL_PERIODS, -1):
            due_start = period_start(sub.billing_anchor, cadence, k, sub.timezone)
            if sub.active_from >= due_end:
                break
            if sub.active_to is None or sub.active_to > due_start:
                out.add(DuePeriod(sub.customer_id, sub.currency, due_start, due_end))
            due_end = due_start
    return sorted(out, key=lambda d: (d.customer_id, d.period_start))


def _billing_current_periods(
    *, organization: Organization, customer_id: str, at: datetime
) -> list[CurrentPeriod]:
    subs = (
        _subscription_model()
        .objects.filter(organization=organization, customer_id=customer_id, active_from__lte=at)
        .filter(Q(active_to__isnull=True) | Q(active_to__gt=at))
    )
    out = []
    for sub in subs:
        start, end, _ = _sub_period(sub, at)
        out.append(CurrentPeriod(sub.currency, start, end))
    return out


def _billing_usage(
    *, organization: Organization, customer_id: str, feature_key: str, start: datetime, end: datetime
) -> Decimal:
    from billing import sources as billing_sources
    from billing.selectors import subjects_for_customers

    feature = billing_sources.feature_spec_get(organization=organization, key_or_id=feature_key)
    if not feature.meter_slug:
        return Decimal(0)
    subjects = subjects_for_customers(organization=organization, customer_ids=[customer_id])[customer_id]
    return billing_sources.usage_total(
        organization=organization,
        meter_slug=feature.meter_slug,
        subject_keys=subjects,
        start=start,
        end=end,
        group_by_filters=feature.meter_group_by_filters,
    )


@dataclass(frozen=True)
class UsageRequest:
    """Usage of one customer for one feature over [start, end) (the batched run asks for many at once)."""

    customer_id: str
    feature_key: str
    start: datetime
    end: datetime


def _billing_items_bulk(
    *, organization: Organization, periods: list[DuePeriod]
) -> dict[DuePeriod, list[BillableItem]]:
    """`_billing_items` for many (customer, currency, period) keys in one query."""
    item_model = apps.get_model("billing", "SubscriptionItem")
    out: dict[DuePeriod, list[BillableItem]] = {p: [] for p in periods}
    if not periods:
        return out
    lo = min(p.period_start for p in periods)
    hi = max(p.period_end for p in periods)
    by_customer: dict[str, list[DuePeriod]] = {}
    for p in periods:
        by_customer.setdefault(p.customer_id, []).append(p)
    rows = (
        item_model.objects.filter(
            organization=organization,
            subscription__customer_id__in=list(by_customer),
            active_from__lt=hi,
        )
        .filter(Q(active_to__isnull=True) | Q(active_to__gt=lo))
        .order_by("active_from", "key", "id")
        .values_list(
            "id",
            "subscription_id",
            "key",
            "name",
            "feature_key",
            "price",
            "discounts",
            "payment_term",
            "quantity",
            "active_from",
            "active_to",
            "subscription__currency",
            "subscription__customer_id",
        )
    )
    for iid, sid, key, name, fkey, price, discounts, term, qty, a_from, a_to, currency, cid in rows:
        for p in by_customer[cid]:
            if (
                currency != p.currency
                or a_from >= p.period_end
                or (a_to is not None and a_to <= p.period_start)
            ):
                continue
            out[p].append(
                BillableItem(
                    item_id=iid,
                    subscription_id=sid,
                    key=key,
                    name=name,
                    feature_key=fkey,
                    price=price,
                    discounts=discounts,
                    payment_term=term or "in_advance",
                    quantity=qty,
                    currency=currency,
                    span_start=max(a_from, p.period_start),
                    span_end=min(a_to or p.period_end, p.period_end),
                    period_start=p.period_start,
                    period_end=p.period_end,
                )
            )
    return out


def _billing_usage_bulk(
    *, organization: Organization, requests: list[UsageRequest]
) -> dict[UsageRequest, Decimal]:
    """Usage for many (customer, feature, span) at once: one grouped metering query per (feature, span),
    labelled by customer (`metering.selectors.meter_query` with a customer → subjects map): exact, rollups
    below the watermark plus raw events above it, as for one customer."""
    from billing import sources as billing_sources
    from billing.selectors import subjects_for_customers
    from metering import selectors as metering

    out: dict[UsageRequest, Decimal] = {r: Decimal(0) for r in requests}
    groups: dict[tuple[str, datetime, datetime], list[UsageRequest]] = {}
    for r in requests:
        if r.end > r.start and r.feature_key:
            groups.setdefault((r.feature_key, r.start, r.end), []).append(r)
    if not groups:
        return out
    subjects = subjects_for_customers(
        organization=organization, customer_ids=sorted({r.customer_id for g in groups.values() for r in g})
    )
    features: dict[str, Any] = {}
    meters: dict[str, Any] = {}
    for (feature_key, start, end), reqs in groups.items():
        if feature_key not in features:
            features[feature_key] = billing_sources.feature_spec_get(
                organization=organization, key_or_id=feature_key
            )
        feature = features[feature_key]
        if not feature.meter_slug:
            continue
        if feature.meter_slug not in meters:
            meters[feature.meter_slug] = metering.meter_get(
                organization=organization, id_or_slug=feature.meter_slug
            )
        customers = {r.customer_id: subjects[r.customer_id] for r in reqs if subjects.get(r.customer_id)}
        if not customers:
            continue
        rows = metering.meter_query(
            organization=organization,
            meter=meters[feature.meter_slug],
            from_=start,
            to=end,
            customers=customers,
            filter_group_by={k: [v] for k, v in feature.meter_group_by_filters.items()},
        )
        values = {row.customer_id: row.value for row in rows}
        for r in reqs:
            out[r] = Decimal(values.get(r.customer_id, 0))
    return out


_PROVIDERS: dict[str, Callable[..., Any]] = {
    "items": _billing_items,
    "items_bulk": _billing_items_bulk,
    "usage_bulk": _billing_usage_bulk,
    "due_periods": _billing_due_periods,
    "current_periods": _billing_current_periods,
    "usage": _billing_usage,
}
_DEFAULTS = dict(_PROVIDERS)


def set_provider(name: str, fn: Callable[..., Any] | None) -> None:
    """Replace a provider (None restores the default)."""
    if name not in _DEFAULTS:
        raise KeyError(name)
    _PROVIDERS[name] = fn or _DEFAULTS[name]


def billable_items(
    *,
    organization: Organization,
    customer_id: str,
    currency: str,
    period_start: datetime,
    period_end: datetime,
) -> list[BillableItem]:
    return _PROVIDERS["items"](
        organization=organization,
        customer_id=customer_id,
        currency=currency,
        period_start=period_start,
        period_end=period_end,
    )


def due_periods(*, organization: Organization, cutoff: datetime) -> list[DuePeriod]:
    return _PROVIDERS["due_periods"](organization=organization, cutoff=cutoff)


def current_periods(*, organization: Organization, customer_id: str, at: datetime) -> list[CurrentPeriod]:
    return _PROVIDERS["current_periods"](organization=organization, customer_id=customer_id, at=at)


def usage(
    *, organization: Organization, customer_id: str, feature_key: str, start: datetime, end: datetime
) -> Decimal:
    """Metered usage of the customer for the feature over [start, end)."""
    if end <= start or not feature_key:
        return Decimal(0)
    return Decimal(
        _PROVIDERS["usage"](
            organization=organization, customer_id=customer_id, feature_key=feature_key, start=start, end=end
        )
    )


def billable_items_bulk(
    *, organization: Organization, periods: list[DuePeriod]
) -> dict[DuePeriod, list[BillableItem]]:
    """`billable_items` for many keys (one query with the default provider)."""
    if _PROVIDERS["items"] is not _DEFAULTS["items"]:  # a replaced single provider wins (tests)
        return {
            p: billable_items(
                organization=organization,
                customer_id=p.customer_id,
                currency=p.currency,
                period_start=p.period_start,
                period_end=p.period_end,
            )
            for p in periods
        }
    return _PROVIDERS["items_bulk"](organization=organization, periods=periods)


def usage_bulk(*, organization: Organization, requests: list[UsageRequest]) -> dict[UsageRequest, Decimal]:
    """`usage` for many (customer, feature, span) at once (a few grouped metering queries)."""
    if _PROVIDERS["usage"] is not _DEFAULTS["usage"]:  # a replaced single provider wins (tests)
        return {
            r: usage(
                organization=organization,
                customer_id=r.customer_id,
                feature_key=r.feature_key,
                start=r.start,
                end=r.end,
            )
            for r in requests
        }
    return _PROVIDERS["usage_bulk"](organization=organization, requests=requests)
