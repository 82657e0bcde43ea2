"""What invoicing reads from `billing` (subscription timeline, due periods) and `metering` (usage).

Invoicing asks this module for plain dataclasses; the default providers read billing's subscription
timeline (`SubscriptionItem` rows: one rate card over [active_from, active_to)), the billing moments
that are due, and usage through `metering.selectors` (features and meters from catalog and metering).
`set_provider()` replaces one (tests use an in-memory usage book where usage is not what they exercise).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import OuterRef, Q
from django.db.models.functions import JSONObject

from billing.models import CustomerSubject
from billing.periods import Cadence, InvalidCadence, period_at, period_start
from billing.selectors import subjects_for_customers
from catalog.models import Feature
from catalog.selectors import feature_list
from core.models import Organization
from core.providers import Providers
from invoicing.lines import BillableItem
from metering import selectors as metering_selectors
from metering.models import Meter

__all__ = ["BillableItem", "CurrentPeriod", "DuePeriod", "UsageRequest"]


@dataclass(frozen=True)
class DuePeriod:
    """A billing moment of a customer: the invoice with this natural key bills what is due at its moment
    (`period_end`, or `period_start` for a subscription's start invoice, `kind="start"`)."""

    customer_id: str
    currency: str
    period_start: datetime
    period_end: datetime
    kind: str = "period"

    @property
    def moment(self) -> datetime:
        return self.period_start if self.kind == "start" else self.period_end


@dataclass(frozen=True)
class CurrentPeriod:
    currency: str
    period_start: datetime
    period_end: datetime


# How far back an invoice looks for service periods that are due and not billed, or billed and changed
# since (late usage, a back-filled clock, a change after billing). About three monthly periods.
LOOKBACK = timedelta(days=93)
BACKFILL_PERIODS = 3  # billing moments per subscription the clock schedules when it was down
TINY = timedelta(microseconds=1)


# --- default providers (billing and metering) ---------------------------------------------------------
def _subscription_model() -> Any:
    return apps.get_model("billing", "Subscription")


# SubscriptionItem field -> BillableItem field
_ITEM_FIELDS = {
    "id": "item_id",
    "subscription_id": "subscription_id",
    "key": "key",
    "name": "name",
    "feature_key": "feature_key",
    "price": "price",
    "discounts": "discounts",
    "commitments": "commitments",
    "payment_term": "payment_term",
    "billing_cadence": "billing_cadence",
    "quantity": "quantity",
    "active_from": "active_from",
    "active_to": "active_to",
    "subscription__currency": "currency",
    "subscription__billing_anchor": "anchor",
    "subscription__timezone": "timezone",
    "subscription__billing_cadence": "plan_cadence",
}


def _billable_item(row: dict[str, Any]) -> BillableItem | None:
    """A `SubscriptionItem` row (values over `_ITEM_FIELDS`) as a BillableItem; None for an item removed at
    the instant it started."""
    if row["active_to"] is not None and row["active_to"] <= row["active_from"]:
        return None
    fields = {ours: row[theirs] for theirs, ours in _ITEM_FIELDS.items()}
    fields["payment_term"] = fields["payment_term"] or "in_advance"
    fields["timezone"] = fields["timezone"] or "UTC"
    fields["plan_cadence"] = fields["plan_cadence"] or "P1M"
    return BillableItem(**fields)


def _billing_items_bulk(
    *, organization: Organization, customer_ids: list[str], since: datetime, until: datetime
) -> dict[str, list[BillableItem]]:
    """{customer id: items active at some point in [since, until]} in one query, ordered by start."""
    item_model = apps.get_model("billing", "SubscriptionItem")
    out: dict[str, list[BillableItem]] = {c: [] for c in customer_ids}
    if not customer_ids:
        return out
    rows = (
        item_model.objects.filter(
            organization=organization,
            subscription__customer_id__in=list(customer_ids),
            active_from__lte=until,
        )
        .filter(Q(active_to__isnull=True) | Q(active_to__gte=since))
        .order_by("active_from", "key", "id")
        .values("subscription__customer_id", *_ITEM_FIELDS)
    )
    for row in rows:
        item = _billable_item(row)
        if item is not None:
            out[row["subscription__customer_id"]].append(item)
    return out


@dataclass(frozen=True)
class CustomerTimeline:
    """What the upcoming invoice of one customer needs from billing, read in one query
    (`customer_timeline`): the billing period containing `at` of each live subscription, and every item
    the builder of any of those periods would read (`items_for`)."""

    customer_id: str
    periods: list[CurrentPeriod]
    items: list[tuple[datetime, datetime | None, BillableItem]]  # (active_from, active_to, item)
    # whether the customer is live (not deleted), known when it has items in view, else None
    customer_live: bool | None = None

    def items_for(self, period_end: datetime) -> dict[str, list[BillableItem]]:
        """`billable_items` for a builder whose moment is `period_end` (the same filter, in memory)."""
        since = period_end - LOOKBACK
        return {
            self.customer_id: [
                item
                for start, end, item in self.items
                if start <= period_end and (end is None or end >= since)
            ]
        }


def customer_timeline(*, organization: Organization, customer_id: str, at: datetime) -> CustomerTimeline:
    """`current_periods` and the items of every builder at those periods' ends in one query: the items
    of the subscriptions live at `at` (whose cadences set the invoicing cadence) and every item active on
    or after `at - LOOKBACK` (a period ends after `at`, so its builder reads no earlier item)."""
    item_model = apps.get_model("billing", "SubscriptionItem")
    live = Q(subscription__active_from__lte=at) & (
        Q(subscription__active_to__isnull=True) | Q(subscription__active_to__gt=at)
    )
    rows = (
        item_model.objects.filter(organization=organization, subscription__customer_id=customer_id)
        .filter(live | Q(active_to__isnull=True) | Q(active_to__gte=at - LOOKBACK))
        .order_by("active_from", "key", "id")
        .values(
            *_ITEM_FIELDS,
            "subscription__active_from",
            "subscription__active_to",
            "subscription__customer__deleted_at",
        )
    )
    subs: dict[str, tuple[str, datetime, str, str]] = {}
    cadences: dict[str, set[str]] = {}
    items = []
    customer_live = None
    for row in rows:
        customer_live = row["subscription__customer__deleted_at"] is None
        sub_to = row["subscription__active_to"]
        if row["subscription__active_from"] <= at and (sub_to is None or sub_to > at):
            subs[row["subscription_id"]] = (
                row["subscription__currency"],
                row["subscription__billing_anchor"],
                row["subscription__billing_cadence"],
                row["subscription__timezone"],
            )
            cadences.setdefault(row["subscription_id"], set()).add(row["billing_cadence"])
        item = _billable_item(row)
        if item is not None:
            items.append((row["active_from"], row["active_to"], item))
    return CustomerTimeline(customer_id, _periods_at(subs, cadences, at), items, customer_live)


def _periods_at(
    subs: dict[str, tuple[str, datetime, str, str]], cadences: dict[str, set[str]], at: datetime
) -> list[CurrentPeriod]:
    """The period containing `at` of each subscription ({id: (currency, anchor, plan cadence, time
    zone)}), in subscription id order."""
    out = []
    for sid, (currency, anchor, plan_cadence, tz) in sorted(subs.items()):
        p = period_at(anchor, _invoicing_cadence(plan_cadence, cadences[sid]), at, tz)
        out.append(CurrentPeriod(currency, p.start, p.end))
    return out


def _invoicing_cadence(plan_cadence: str, item_cadences: set[str]) -> Any:
    """The shortest of the plan's cadence and its recurring items' cadences: an annual plan with monthly
    usage is invoiced monthly."""
    best = None
    for text in {plan_cadence or "P1M", *item_cadences}:
        if not text:
            continue
        try:
            cad = Cadence.parse(text)
        except InvalidCadence:
            continue
        if best is None or cad.approx_seconds() < best.approx_seconds():
            best = cad
    return best or Cadence.parse("P1M")


def _billing_due_periods(
    *, organization: Organization, cutoff: datetime, now: datetime | None = None
) -> list[DuePeriod]:
    """The billing moments of every subscription that are due: its start (`kind="start"`, at once: it
    bills in-advance fees), each period boundary of its invoicing cadence up to `cutoff` (after the
    collection delay), and its end when it ended inside a period. At most `BACKFILL_PERIODS` moments per
    subscription (a clock that was down back-fills what it missed; the scheduler drops those already
    invoiced). A start that coincides with another moment of the customer is left to that one."""
    now = now or cutoff
    item_model = apps.get_model("billing", "SubscriptionItem")
    subs = list(
        _subscription_model()
        .objects.filter(organization=organization, active_from__lte=now)
        .filter(Q(active_to__isnull=True) | Q(active_to__gt=cutoff - LOOKBACK))
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
    cadences: dict[str, set[str]] = {}
    advance: set[str] = set()  # subscriptions with a fee billed at their start
    for sid, cadence, term, price_type in (
        item_model.objects.filter(organization=organization, subscription_id__in=[s.id for s in subs])
        .values_list("subscription_id", "billing_cadence", "payment_term", "price__type")
        .distinct()
    ):
        cadences.setdefault(sid, set()).add(cadence)
        if price_type == "flat" and (term != "in_arrears" or not cadence):
            advance.add(sid)
    moments: dict[tuple[str, str, datetime], DuePeriod] = {}
    starts: list[DuePeriod] = []
    for sub in subs:
        cad = _invoicing_cadence(sub.billing_cadence, cadences.get(sub.id, set()))
        end = sub.active_to
        found: list[DuePeriod] = []
        last = min(cutoff, end) if end else cutoff
        if last > sub.active_from:
            p = period_at(sub.billing_anchor, cad, last - TINY, sub.timezone)
            if end is not None and end <= cutoff and end != p.end:
                found.append(DuePeriod(sub.customer_id, sub.currency, p.start, end))  # ended mid-period
            k = p.index if p.end <= last else p.index - 1
            while len(found) < BACKFILL_PERIODS:
                b_start = period_start(sub.billing_anchor, cad, k, sub.timezone)
                b_end = period_start(sub.billing_anchor, cad, k + 1, sub.timezone)
                if b_end <= sub.active_from:
                    break
                found.append(DuePeriod(sub.customer_id, sub.currency, b_start, b_end))
                k -= 1
        for d in found:
            moments.setdefault((d.customer_id, d.currency, d.moment), d)
        if sub.id in advance and sub.active_from > cutoff - LOOKBACK:
            first = period_at(sub.billing_anchor, cad, sub.active_from, sub.timezone)
            starts.append(DuePeriod(sub.customer_id, sub.currency, sub.active_from, first.end, "start"))
    for d in starts:
        moments.setdefault((d.customer_id, d.currency, d.moment), d)
    return sorted(moments.values(), key=due_order)


def due_order(d: DuePeriod) -> tuple[str, str, datetime, int]:
    """The order invoices of a customer are built in (both paths): by moment, starts first."""
    return (d.customer_id, d.currency, d.moment, 0 if d.kind == "start" else 1)


def _billing_current_periods(
    *, organization: Organization, customer_id: str, at: datetime
) -> list[CurrentPeriod]:
    """The billing period containing `at` of each live subscription of the customer (one query: the
    subscriptions through their items, whose cadences set the invoicing cadence)."""
    item_model = apps.get_model("billing", "SubscriptionItem")
    rows = (
        item_model.objects.filter(
            organization=organization,
            subscription__customer_id=customer_id,
            subscription__active_from__lte=at,
        )
        .filter(Q(subscription__active_to__isnull=True) | Q(subscription__active_to__gt=at))
        .values_list(
            "subscription_id",
            "subscription__currency",
            "subscription__billing_anchor",
            "subscription__billing_cadence",
            "subscription__timezone",
            "billing_cadence",
        )
    )
    subs: dict[str, tuple[str, datetime, str, str]] = {}
    cadences: dict[str, set[str]] = {}
    for sid, currency, anchor, plan_cadence, tz, cadence in rows:
        subs[sid] = (currency, anchor, plan_cadence, tz)
        cadences.setdefault(sid, set()).add(cadence)
    return _periods_at(subs, cadences, at)


def _billing_usage(*, organization: Organization, **fields: Any) -> Decimal:
    """The default `usage` provider: the one request (`usage`'s arguments) read through the bulk one."""
    request = UsageRequest(**fields)
    return _billing_usage_bulk(organization=organization, requests=[request])[request]


@dataclass(frozen=True)
class UsageRequest:
    """Usage of one customer for one feature over [start, end) (the batched run asks for many at once)."""

    customer_id: str
    feature_key: str
    start: datetime
    end: datetime
    measure: str = "value"  # "value": the meter's aggregate; "count": its number of events; "events": each
    # event's value (`event_values`)


FEW_CUSTOMERS = 25  # up to this many customers, usage is read in one `meter_usage_totals` call


def _billing_usage_bulk(
    *, organization: Organization, requests: list[UsageRequest]
) -> dict[UsageRequest, Decimal]:
    """Usage for many (customer, feature, span) at once (`_usage_bulk_direct`), less, for a feature that
    excludes others (its metadata `excludeFeatures`: comma-separated keys of features on the same meter),
    their usage over the same span: what is left once they have taken theirs (for SUM and COUNT meters,
    whose usage adds up; the features excluded must not overlap)."""
    out, features = _usage_bulk_direct(organization=organization, requests=requests)
    parts = {
        r: [
            UsageRequest(r.customer_id, key, r.start, r.end, r.measure)
            for key in features[r.feature_key].excludes
        ]
        for r in out
        if r.feature_key in features and features[r.feature_key].excludes
    }
    if parts:
        taken = _billing_usage_bulk(
            organization=organization, requests=list(dict.fromkeys(x for xs in parts.values() for x in xs))
        )
        for r, xs in parts.items():
            out[r] -= sum((taken[x] for x in xs), Decimal(0))
    return out


def _filter_lists(filters: dict[str, Any]) -> dict[str, list[str]]:
    """A feature's group-by filters as the meter reads them: {dimension: [any of these values]}."""
    return {k: [v] if isinstance(v, str) else list(v) for k, v in (filters or {}).items()}


def _usage_bulk_direct(
    *, organization: Organization, requests: list[UsageRequest]
) -> tuple[dict[UsageRequest, Decimal], dict[str, _FeatureRef]]:
    """Usage for many (customer, feature, span) at once, exact (rollups below the watermark plus raw
    events above it). Features, meters and subjects are read by `_usage_references`. For a few customers (one invoice,
    a preview) every request goes into one `metering.selectors.meter_usage_totals` call (a constant
    number of statements); for a batch, one grouped `meter_query` per (feature, span) labels its rows by
    customer."""
    out: dict[UsageRequest, Decimal] = {r: Decimal(0) for r in requests}
    wanted = [r for r in requests if r.end > r.start and r.feature_key]
    if not wanted:
        return out, {}
    customer_ids = sorted({r.customer_id for r in wanted})
    features, meters, subjects = _usage_references(
        organization=organization, feature_keys={r.feature_key for r in wanted}, customer_ids=customer_ids
    )

    def meter_of(r: UsageRequest) -> Any:
        feature = features.get(r.feature_key)
        meter = meters.get(feature.meter_slug) if feature is not None and feature.meter_slug else None
        if meter is not None and r.measure == "count":  # the same events, counted (rollups keep counts)
            meter = copy.copy(meter)
            meter.aggregation = "COUNT"
        return meter

    def filters_of(r: UsageRequest) -> dict[str, list[str]]:
        return _filter_lists(features[r.feature_key].meter_group_by_filters)

    usable = [r for r in wanted if meter_of(r) is not None and subjects.get(r.customer_id)]
    if len(customer_ids) <= FEW_CUSTOMERS:
        totals = metering_selectors.meter_usage_totals(
            organization=organization,
            requests=[(meter_of(r), subjects[r.customer_id], r.start, r.end, filters_of(r)) for r in usable],
        )
        out.update({r: Decimal(v) for r, v in zip(usable, totals, strict=True)})
        return out, features
    groups: dict[tuple[str, datetime, datetime, str], list[UsageRequest]] = {}
    for r in usable:
        groups.setdefault((r.feature_key, r.start, r.end, r.measure), []).append(r)
    for reqs in groups.values():
        first = reqs[0]
        rows = metering_selectors.meter_query(
            organization=organization,
            meter=meter_of(first),
            from_=first.start,
            to=first.end,
            customers={r.customer_id: subjects[r.customer_id] for r in reqs},
            filter_group_by=filters_of(first),
        )
        values = {row.customer_id: row.value for row in rows}
        for r in reqs:
            out[r] = Decimal(values.get(r.customer_id, 0))
    return out, features


@dataclass(frozen=True)
class _FeatureRef:
    meter_slug: str
    meter_group_by_filters: dict[str, Any]  # {dimension: value or [values]}
    excludes: tuple[str, ...] = ()  # keys of the features whose usage this one's leaves out


def _usage_references(
    *, organization: Organization, feature_keys: set[str], customer_ids: list[str]
) -> tuple[dict[str, _FeatureRef], dict[str, Meter], dict[str, list[str]]]:
    """({feature key: its meter reference}, {slug: live meter}, {customer id: sorted subjects}) for the
    features that have a live meter. One query: the live meters of the features (a key archived and
    reused counts its oldest feature, as before), each carrying its features and, for a few customers,
    the customers' subjects (for a batch the subjects are a second query, not repeated on every meter)."""
    chosen = (
        feature_list(organization=organization, include_archived=True)
        .filter(key__in=feature_keys)
        .order_by("key", "created_at")
        .distinct("key")
        .values("pk")
    )
    features_of_meter = Feature.objects.filter(pk__in=chosen, meter_slug=OuterRef("slug")).values(
        json=JSONObject(key="key", filters="meter_group_by_filters", excludes="metadata__excludeFeatures")
    )
    qs = metering_selectors.meter_list(organization=organization).filter(
        slug__in=Feature.objects.filter(pk__in=chosen).exclude(meter_slug="").values("meter_slug")
    )
    qs = qs.annotate(feature_refs=ArraySubquery(features_of_meter))
    few = len(customer_ids) <= FEW_CUSTOMERS
    if few:
        subjects_of = (
            CustomerSubject.objects.filter(organization=organization, customer_id__in=customer_ids)
            .order_by("subject_key")
            .values(json=JSONObject(c="customer_id", s="subject_key"))
        )
        qs = qs.annotate(subject_refs=ArraySubquery(subjects_of))
    features: dict[str, _FeatureRef] = {}
    meters: dict[str, Meter] = {}
    subjects: dict[str, list[str]] = {c: [] for c in customer_ids}
    for meter in qs:
        meters[meter.slug] = meter
        for ref in meter.feature_refs:
            excludes = tuple(k for k in (ref.get("excludes") or "").split(",") if k)
            features[ref["key"]] = _FeatureRef(meter.slug, ref["filters"] or {}, excludes)
    if few and meters:
        for ref in next(iter(meters.values())).subject_refs:  # type: ignore[attr-defined]
            subjects[ref["c"]].append(ref["s"])
    elif not few:
        subjects = subjects_for_customers(organization=organization, customer_ids=customer_ids)
    return features, meters, subjects


# At most this many events of one customer, feature and span are read for a price rated per transaction
# (a percentage price with per-transaction bounds or free transactions); above, the invoice is refused
# (`metering.store.TooManyEvents`) rather than billed on a partial read.
MAX_TRANSACTIONS = 100_000


def _billing_event_values(
    *, organization: Organization, requests: list[UsageRequest]
) -> dict[UsageRequest, tuple[Decimal, ...]]:
    """Each event's value for every request (`measure="events"`), in event-time order: one bounded read of
    raw events per request. Only prices rated per transaction ask for these."""
    out: dict[UsageRequest, tuple[Decimal, ...]] = {r: () for r in requests}
    wanted = [r for r in requests if r.end > r.start and r.feature_key]
    if not wanted:
        return out
    features, meters, subjects = _usage_references(
        organization=organization,
        feature_keys={r.feature_key for r in wanted},
        customer_ids=sorted({r.customer_id for r in wanted}),
    )
    for r in wanted:
        feature = features.get(r.feature_key)
        meter = meters.get(feature.meter_slug) if feature is not None else None
        if feature is None or meter is None or not subjects.get(r.customer_id):
            continue
        filters = _filter_lists(feature.meter_group_by_filters)
        out[r] = tuple(
            metering_selectors.meter_event_values(
                organization=organization,
                meter=meter,
                subjects=subjects[r.customer_id],
                from_=r.start,
                to=r.end,
                filter_group_by=filters,
                limit=MAX_TRANSACTIONS,
            )
        )
    return out


_PROVIDERS = Providers(
    {
        "items_bulk": _billing_items_bulk,
        "usage_bulk": _billing_usage_bulk,
        "due_periods": _billing_due_periods,
        "current_periods": _billing_current_periods,
        "usage": _billing_usage,
        "event_values": _billing_event_values,
    }
)
set_provider = _PROVIDERS.set


def billable_items(
    *, organization: Organization, customer_ids: list[str], since: datetime, until: datetime
) -> dict[str, list[BillableItem]]:
    """Every subscription item of these customers active at some point in [since, until] (one query)."""
    return _PROVIDERS["items_bulk"](
        organization=organization, customer_ids=customer_ids, since=since, until=until
    )


def due_periods(
    *, organization: Organization, cutoff: datetime, now: datetime | None = None
) -> list[DuePeriod]:
    return _PROVIDERS["due_periods"](organization=organization, cutoff=cutoff, now=now)


def current_periods(*, organization: Organization, customer_id: str, at: datetime) -> list[CurrentPeriod]:
    return _PROVIDERS["current_periods"](organization=organization, customer_id=customer_id, at=at)


def usage(
    *,
    organization: Organization,
    customer_id: str,
    feature_key: str,
    start: datetime,
    end: datetime,
    measure: str = "value",
) -> Decimal:
    """Metered usage of the customer for the feature over [start, end) (`measure="count"`: the number of
    events the feature's meter counts, for per-event fees)."""
    request = UsageRequest(customer_id, feature_key, start, end, measure)
    return usage_of(organization=organization, request=request)


def usage_of(*, organization: Organization, request: UsageRequest) -> Decimal:
    """`usage` of one request (the fields the `usage` provider takes)."""
    if request.end <= request.start or not request.feature_key:
        return Decimal(0)
    return Decimal(_PROVIDERS["usage"](organization=organization, **asdict(request)))


def usage_bulk(*, organization: Organization, requests: list[UsageRequest]) -> dict[UsageRequest, Decimal]:
    """`usage` for many (customer, feature, span, measure) at once (a few grouped metering queries)."""
    return _PROVIDERS["usage_bulk"](organization=organization, requests=requests)


def event_values(
    *, organization: Organization, requests: list[UsageRequest]
) -> dict[UsageRequest, tuple[Decimal, ...]]:
    """Each event's value (event-time order) for every (customer, feature, span): the reads of prices rated
    per transaction, bounded by `MAX_TRANSACTIONS` each."""
    return _PROVIDERS["event_values"](organization=organization, requests=requests)
