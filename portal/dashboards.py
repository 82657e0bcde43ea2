"""Console dashboards (`/console/dashboards/`): revenue, MRR, churn, top customers, usage and AI
showback/chargeback. Every chart has a table view and a CSV export (`?format=csv` on the same data).

Each dataset is computed by one function here in a fixed number of queries (aggregations in SQL through
the other apps' selectors/querysets, usage through `metering.selectors.meter_query`, which reads rollups),
so pages stay within the query budget whatever the number of customers, invoices or events.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, Sum, Value
from django.db.models.functions import TruncMonth
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from core.console import console_view
from core.models import Organization
from core.money import quantize
from portal import sources
from portal.charts import Bar, bar_chart, fmt_number

BILLED_STATUSES = ("issued", "paid", "payment_failed", "overdue", "uncollectible")


@dataclass
class Dataset:
    key: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    bars: list[Bar] | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def chart(self):
        return bar_chart(self.bars, label=self.title) if self.bars is not None else None


def plain(value: Decimal) -> Decimal:
    """A usage quantity without trailing zeros (and never in exponent notation)."""
    value = Decimal(value)
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def _month_starts(now: datetime, count: int = 12) -> list[datetime]:
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    out = [first]
    for _ in range(count - 1):
        out.append((out[-1] - timedelta(days=1)).replace(day=1))
    return list(reversed(out))


# --- revenue ----------------------------------------------------------------------------------------
def revenue_billed(*, organization: Organization, now: datetime) -> Dataset:
    """Invoiced totals per month of the service period they bill (an October invoice issued on November 1
    counts in October), last 12 months, per currency. One query."""
    months = _month_starts(now)
    ds = Dataset(
        "billed", "Billed per month (by billing period)", ["Month", "Currency", "Invoices", "Billed"]
    )
    qs = sources.invoices_queryset(organization=organization)
    totals: dict[tuple[datetime, str], tuple[int, Decimal]] = {}
    if qs is not None:
        rows = (
            qs.filter(status__in=BILLED_STATUSES, period_start__gte=months[0])
            .annotate(month=TruncMonth("period_start", tzinfo=now.tzinfo))
            .values("month", "currency")
            .annotate(n=Count("id"), total=Sum("total"))
            .order_by("month", "currency")
        )
        for r in rows:
            totals[(r["month"], r["currency"])] = (r["n"], r["total"] or Decimal(0))
    currency = organization.default_currency
    for (month, cur), (n, total) in sorted(totals.items()):
        ds.rows.append([month.strftime("%Y-%m"), cur, n, quantize(total, cur)])
    ds.bars = [
        Bar(
            m.strftime("%b %y"),
            totals.get((m, currency), (0, Decimal(0)))[1],
            f"{m:%b %Y}: {fmt_number(totals.get((m, currency), (0, Decimal(0)))[1])} {currency}",
        )
        for m in months
    ]
    ds.note = f"Chart in {currency}; other currencies are in the table."
    return ds


_CADENCE = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?$")


def monthly_factor(cadence: str) -> Decimal | None:
    """How many times a fee with this ISO 8601 cadence is charged per month (P1Y → 1/12)."""
    m = _CADENCE.match(cadence or "")
    if not m or not any(m.groups()):
        return None
    years, months, weeks, days = (int(g or 0) for g in m.groups())
    in_months = Decimal(years * 12 + months) + Decimal(weeks * 7 + days) * 12 / Decimal(365)
    return Decimal(1) / in_months if in_months else None


def _live(span, at: datetime) -> bool:
    return span.active_from <= at and (span.active_to is None or span.active_to > at)


def _item_mrr(item) -> Decimal | None:
    """An item's monthly recurring amount: a flat price with a recurring cadence, normalised to a month."""
    price = item.price or {}
    factor = monthly_factor(item.billing_cadence)
    if str(price.get("type", "")).lower() != "flat" or factor is None:
        return None
    return Decimal(str(price.get("amount", "0"))) * item.quantity * factor


def mrr_datasets(*, organization: Organization, now: datetime) -> tuple[Dataset, Dataset]:
    """MRR by plan now (active subscriptions: recurring flat fees normalised to a month, usage excluded) and
    the MRR trend at the start of each of the last 12 months and now, with the net revenue retention over
    the period (MRR now of the customers who had MRR 12 months ago / their MRR then). Two queries
    (subscriptions overlapping the period, their items)."""
    ds = Dataset("mrr", "MRR by plan", ["Plan", "Currency", "Subscriptions", "MRR"])
    trend = Dataset("mrr-trend", "MRR over 12 months", ["Month", "Currency", "MRR"])
    qs = sources.subscriptions_queryset(organization=organization)
    if qs is None:
        return ds, trend
    currency = organization.default_currency
    moments = [*_month_starts(now), now]
    qs = qs.filter(active_from__lte=now).filter(Q(active_to__isnull=True) | Q(active_to__gt=moments[0]))
    by_plan: dict[tuple[str, str], list] = defaultdict(lambda: [set(), Decimal(0)])
    by_moment: dict[datetime, Decimal] = defaultdict(Decimal)
    first: dict[str, Decimal] = defaultdict(Decimal)  # customer -> MRR at the start of the period
    last: dict[str, Decimal] = defaultdict(Decimal)  # customer -> MRR now
    customers: set[str] = set()
    names: dict[str, str] = {}
    for sub in qs.prefetch_related("items"):
        active_now = _live(sub, now)
        key = (sub.plan_key, sub.currency)
        if active_now:
            by_plan[key][0].add(sub.id)
            customers.add(sub.customer_id)
            names.setdefault(sub.plan_key, sub.name or sub.plan_key)
        for item in sub.items.all():
            amount = _item_mrr(item)
            if amount is None:
                continue
            if active_now and _live(item, now):
                by_plan[key][1] += amount
            if sub.currency != currency:
                continue
            for at in moments:
                if _live(sub, at) and _live(item, at):
                    by_moment[at] += amount
            if _live(sub, moments[0]) and _live(item, moments[0]):
                first[sub.customer_id] += amount
            if active_now and _live(item, now):
                last[sub.customer_id] += amount
    for (plan, cur), (subs, mrr) in sorted(by_plan.items(), key=lambda kv: -kv[1][1]):
        ds.rows.append([names.get(plan, plan), cur, len(subs), quantize(mrr, cur)])
    start_mrr = sum(first.values(), Decimal(0))
    retained = sum((last.get(c, Decimal(0)) for c in first), Decimal(0))
    ds.extra = {
        "customers": len(customers),
        "subscriptions": sum(len(v[0]) for v in by_plan.values()),
        "nrr": (retained * 100 / start_mrr).quantize(Decimal("0.1")) if start_mrr else None,
    }
    ds.bars = [Bar(r[0], r[3], f"{r[0]}: {fmt_number(r[3])} {r[1]}") for r in ds.rows]
    ds.note = "Recurring flat fees of active subscriptions, normalised to a month; usage charges excluded."
    for at in moments:
        label = "now" if at == now else at.strftime("%Y-%m")
        trend.rows.append([label, currency, quantize(by_moment[at], currency)])
    trend.bars = [
        Bar(
            "now" if at == now else at.strftime("%b %y"),
            quantize(by_moment[at], currency),
            f"{'Now' if at == now else f'{at:%b 1, %Y}'}: {fmt_number(quantize(by_moment[at], currency))} {currency}",
        )
        for at in moments
    ]
    trend.note = f"MRR at the start of each month and now, in {currency} (as the MRR by plan)."
    return ds, trend


def churn_by_month(*, organization: Organization, now: datetime) -> Dataset:
    """Subscriptions that ended (not replaced by a plan change) per month, last 12 months. One query."""
    months = _month_starts(now)
    ds = Dataset("churn", "Churned subscriptions per month", ["Month", "Churned"])
    qs = sources.subscriptions_queryset(organization=organization)
    counts: dict[datetime, int] = {}
    if qs is not None:
        model = qs.model
        replaced = model.objects.filter(organization=organization, previous__isnull=False).values(
            "previous_id"
        )
        rows = (
            qs.filter(active_to__isnull=False, active_to__lte=now, active_to__gte=months[0])
            .exclude(id__in=replaced)
            .annotate(month=TruncMonth("active_to", tzinfo=now.tzinfo))
            .values("month")
            .annotate(n=Count("id"))
            .order_by("month")
        )
        counts = {r["month"]: r["n"] for r in rows}
    for m in months:
        ds.rows.append([m.strftime("%Y-%m"), counts.get(m, 0)])
    ds.bars = [Bar(m.strftime("%b %y"), Decimal(counts.get(m, 0))) for m in months]
    return ds


def top_customers(*, organization: Organization, now: datetime, limit: int = 10) -> Dataset:
    """Customers by billed total over the last 12 months. One query."""
    ds = Dataset(
        "top-customers", "Top customers (billed, 12 months)", ["Customer", "Key", "Currency", "Billed"]
    )
    qs = sources.invoices_queryset(organization=organization)
    if qs is None:
        return ds
    rows = (
        qs.filter(status__in=BILLED_STATUSES, issued_at__gte=now - timedelta(days=365))
        .values("customer_id", "customer__name", "customer__key", "currency")
        .annotate(total=Sum("total"))
        .order_by("-total")[:limit]
    )
    for r in rows:
        ds.rows.append(
            [
                r["customer__name"],
                r["customer__key"] or "",
                r["currency"],
                quantize(r["total"], r["currency"]),
            ]
        )
    ds.bars = [Bar(r[1] or r[0][:16], r[3], f"{r[0]}: {fmt_number(r[3])} {r[2]}") for r in ds.rows]
    return ds


# --- usage ---------------------------------------------------------------------------------------------
PERIODS = {"this_month": "This month", "last_month": "Last month", "last_30_days": "Last 30 days"}


def period_bounds(period: str, now: datetime) -> tuple[datetime, datetime]:
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if period == "last_month":
        return (first - timedelta(days=1)).replace(day=1), first
    if period == "last_30_days":
        return now - timedelta(days=30), now
    return first, now


ADDITIVE = ("SUM", "COUNT")


def customers_with_subjects(organization: Organization) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """({customer_id: [subject, ...]}, {customer_id: customer}) in one query (subjects aggregated)."""
    from django.contrib.postgres.aggregates import ArrayAgg

    qs = (
        sources.customer_list(organization=organization)
        .prefetch_related(None)
        .only("id", "name", "key")
        .annotate(subject_keys=ArrayAgg("subjects__subject_key", distinct=True, default=Value([])))
    )
    customers = {c.id: c for c in qs}
    mapping = {cid: [s for s in c.subject_keys if s] for cid, c in customers.items()}
    return {cid: subjects for cid, subjects in mapping.items() if subjects}, customers


def usage_datasets(*, organization: Organization, meter, start: datetime, end: datetime) -> list[Dataset]:
    """Usage by customer, by feature and (AI) by model/type from ONE meter query grouped by customer and
    every meter dimension (additive meters); non-additive meters get the by-customer view only."""
    mapping, customers = customers_with_subjects(organization)
    by_customer = Dataset(
        "usage-by-customer", f"{meter.name or meter.slug} by customer", ["Customer", "Key", "Usage"]
    )
    by_feature = Dataset(
        "usage-by-feature", f"{meter.name or meter.slug} by feature", ["Feature", "Filter", "Usage"]
    )
    ai = Dataset(
        "ai-usage", "AI usage by customer, model and type (showback)", ["Customer", "Model", "Type", "Tokens"]
    )
    if not mapping:
        return [by_customer, by_feature, ai]
    additive = meter.aggregation in ADDITIVE
    dims = sorted(meter.group_by or {}) if additive else []
    rows = sources.meter_rows(
        organization=organization, meter=meter, from_=start, to=end, customers=mapping, group_by=dims
    )
    # by customer
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        totals[r.customer_id] += r.value or Decimal(0)
    for cid, value in sorted(totals.items(), key=lambda kv: -kv[1])[:20]:
        c = customers.get(cid)
        by_customer.rows.append([c.name if c else cid, (c.key or "") if c else "", plain(value)])
    by_customer.bars = [Bar(r[1] or r[0][:16], r[2], f"{r[0]}: {fmt_number(r[2])}") for r in by_customer.rows]
    if not additive:
        by_feature.note = ai.note = f"{meter.aggregation} meters are not summed across groups."
        return [by_customer, by_feature, ai]
    # by feature: features on this meter, matched to their group-by filters
    for f in sources.feature_list(organization=organization):
        if f.meter_slug != meter.slug:
            continue
        filters = f.meter_group_by_filters or {}
        total = sum(
            (
                r.value or Decimal(0)
                for r in rows
                if all(_matches(r.group_by.get(k), v) for k, v in filters.items())
            ),
            Decimal(0),
        )
        by_feature.rows.append(
            [f.key, ", ".join(f"{k}={v}" for k, v in sorted(filters.items())) or "—", total]
        )
    by_feature.bars = [Bar(r[0][:14], r[2], f"{r[0]}: {fmt_number(r[2])}") for r in by_feature.rows]
    # AI: by customer, model and type
    if {"model", "type"} & set(dims):
        grouped: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
        for r in rows:
            c = customers.get(r.customer_id)
            key = (
                c.name if c else r.customer_id,
                r.group_by.get("model") or "—",
                r.group_by.get("type") or "—",
            )
            grouped[key] += r.value or Decimal(0)
        ai.rows = [[*k, plain(v)] for k, v in sorted(grouped.items(), key=lambda kv: (kv[0][0], -kv[1]))]
        by_model: dict[str, Decimal] = defaultdict(Decimal)
        for row in ai.rows:
            by_model[f"{row[1]} {row[2]}"] += row[3]
        ai.bars = [Bar(k[:16], v, f"{k}: {fmt_number(v)}") for k, v in sorted(by_model.items())]
        ai.note = "Cost per customer and feature (chargeback) is in the next table, as invoiced."
    else:
        ai.note = "This meter has no `model`/`type` dimensions."
    return [by_customer, by_feature, ai]


def _matches(actual, wanted) -> bool:
    if isinstance(wanted, list | tuple):
        return actual in wanted
    return actual == wanted


def chargeback(*, organization: Organization, start: datetime, end: datetime, limit: int = 200) -> Dataset:
    """Cost per customer and feature: the amounts the invoicing engine put on invoice lines (issued and
    gathering) for service periods overlapping [start, end). One query."""
    ds = Dataset(
        "chargeback", "Cost by customer and feature", ["Customer", "Feature", "Currency", "Quantity", "Cost"]
    )
    qs = sources.invoice_lines_queryset(organization=organization)
    if qs is None:
        return ds
    rows = (
        qs.filter(type__in=("usage", "flat_fee", "adjustment", "commitment", "discount"))
        .exclude(invoice__status="voided")
        .filter(Q(period_start__lt=end) & (Q(period_end__gt=start) | Q(period_end__isnull=True)))
        .values("invoice__customer__name", "feature_key", "invoice__currency")
        .annotate(quantity=Sum("quantity"), cost=Sum("amount"))
        .order_by("invoice__customer__name", "feature_key")[:limit]
    )
    for r in rows:
        cur = r["invoice__currency"]
        qty = plain(r["quantity"]) if r["quantity"] is not None else ""
        name = r["invoice__customer__name"]
        ds.rows.append([name, r["feature_key"] or "(plan fees)", cur, qty, quantize(r["cost"], cur)])
    ds.note = "Amounts as invoiced (including the current period's gathering invoice)."
    return ds


# --- views ----------------------------------------------------------------------------------------
def _revenue_datasets(request: HttpRequest) -> list[Dataset]:
    org, now = request.organization, timezone.now()  # type: ignore[attr-defined]
    mrr, trend = mrr_datasets(organization=org, now=now)
    return [
        revenue_billed(organization=org, now=now),
        mrr,
        trend,
        top_customers(organization=org, now=now),
        churn_by_month(organization=org, now=now),
    ]


@dataclass(frozen=True)
class Headline:
    currency: str
    mrr: Decimal
    arr: Decimal
    active_customers: int
    churn_rate: Decimal | None  # last full month, percent; None without subscriptions at its start
    churn_month: datetime
    nrr: Decimal | None  # net revenue retention over 12 months, percent; None without MRR back then


def headline(*, organization: Organization, now: datetime, mrr: Dataset, churn: Dataset) -> Headline:
    """The figures on top of the revenue page, from the datasets below plus one query:
    MRR (recurring flat fees of active subscriptions in the organization's currency, as the MRR chart),
    ARR = 12 x MRR, active customers (with an active subscription), and the churn rate of the last full
    month: subscriptions that ended in it without being replaced / subscriptions active at its start."""
    currency = organization.default_currency
    total = sum((Decimal(r[3]) for r in mrr.rows if r[1] == currency), Decimal(0))
    month = _month_starts(now, 2)[0]
    churned = next((int(r[1]) for r in churn.rows if r[0] == month.strftime("%Y-%m")), 0)
    qs = sources.subscriptions_queryset(organization=organization)
    at_start = 0
    if qs is not None:
        at_start = (
            qs.filter(active_from__lte=month)
            .filter(Q(active_to__isnull=True) | Q(active_to__gt=month))
            .count()
        )
    rate = (Decimal(churned) * 100 / at_start).quantize(Decimal("0.1")) if at_start else None
    return Headline(
        currency=currency,
        mrr=quantize(total, currency),
        arr=quantize(total * 12, currency),
        active_customers=int(mrr.extra.get("customers", 0)),
        churn_rate=rate,
        churn_month=month,
        nrr=mrr.extra.get("nrr"),
    )


def _usage_params(request: HttpRequest) -> dict[str, Any]:
    now = timezone.now()
    period = request.GET.get("period", "this_month")
    if period not in PERIODS:
        period = "this_month"
    start, end = period_bounds(period, now)
    return {
        "period": period,
        "periods": PERIODS,
        "start": start,
        "end": end,
        "query": request.GET.urlencode(),
    }


def _usage_data(request: HttpRequest, section: str) -> tuple[dict[str, Any], list[Dataset]]:
    org = request.organization  # type: ignore[attr-defined]
    ctx = _usage_params(request)
    if section == "chargeback":
        return ctx, [chargeback(organization=org, start=ctx["start"], end=ctx["end"])]
    meter = sources.meter_get(organization=org, slug=request.GET.get("meter", ""))
    if meter is None:
        raise Http404("No such meter.")
    ctx["meter"] = meter
    if section == "trend":
        return ctx, [usage_trend(organization=org, meter=meter, now=timezone.now())]
    return ctx, usage_datasets(organization=org, meter=meter, start=ctx["start"], end=ctx["end"])


def usage_trend(*, organization: Organization, meter, now: datetime) -> Dataset:
    """The meter's usage per calendar month (UTC) over the last 12 months, all subjects: one meter query
    with MONTH windows (rollups below the watermark plus the raw tail)."""
    months = _month_starts(now)
    title = f"{meter.name or meter.slug} over 12 months"
    ds = Dataset("usage-trend", title, ["Month", "Usage"])
    rows = sources.meter_rows(
        organization=organization, meter=meter, from_=months[0], to=now, window_size="MONTH"
    )
    by_month: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        by_month[r.window_start.strftime("%Y-%m")] += r.value or Decimal(0)
    for m in months:
        ds.rows.append([m.strftime("%Y-%m"), plain(by_month[m.strftime("%Y-%m")])])
    ds.bars = [
        Bar(
            m.strftime("%b %y"),
            by_month[m.strftime("%Y-%m")],
            f"{m:%b %Y}: {fmt_number(by_month[m.strftime('%Y-%m')])}",
        )
        for m in months
    ]
    ds.note = "This month so far; months in UTC." + (
        "" if meter.aggregation in ADDITIVE else f" {meter.aggregation} of each month."
    )
    return ds


def _csv(dataset: Dataset) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{dataset.key}.csv"'
    writer = csv.writer(response)
    writer.writerow(dataset.columns)
    for row in dataset.rows:
        writer.writerow([_csv_cell(v) for v in row])
    return response


def _csv_cell(value: Any) -> str:
    text = str(value)
    return (
        "'" + text if text[:1] in ("=", "+", "-", "@") and not _is_number(text) else text
    )  # no CSV injection


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except Exception:
        return False
    return True


def _pick(datasets: list[Dataset], key: str) -> Dataset:
    for ds in datasets:
        if ds.key == key:
            return ds
    raise Http404("No such chart.")


@console_view()
def revenue(request: HttpRequest) -> HttpResponse:
    datasets = _revenue_datasets(request)
    if request.GET.get("format") == "csv":
        return _csv(_pick(datasets, request.GET.get("chart", "")))
    figures = headline(
        organization=request.organization,  # type: ignore[attr-defined]
        now=timezone.now(),
        mrr=_pick(datasets, "mrr"),
        churn=_pick(datasets, "churn"),
    )
    return render(request, "console/dashboards/revenue.html", {"datasets": datasets, "headline": figures})


@console_view()
def usage(request: HttpRequest) -> HttpResponse:
    """The usage page shell: filters, then each section loads with htmx (each within the query budget)."""
    meters = sources.meter_list(organization=request.organization)  # type: ignore[attr-defined]
    ctx = _usage_params(request)
    slug = request.GET.get("meter") or (meters[0].slug if meters else "")
    ctx.update(meters=meters, meter_slug=slug)
    return render(request, "console/dashboards/usage.html", ctx)


@console_view()
def usage_section(request: HttpRequest, section: str) -> HttpResponse:
    """`/console/dashboards/usage/<usage|chargeback>/?meter=&period=`: datasets (htmx partial, full page
    without JS, or `format=csv&chart=<key>`)."""
    if section not in ("usage", "chargeback", "trend"):
        raise Http404("No such section.")
    ctx, datasets = _usage_data(request, section)
    if request.GET.get("format") == "csv":
        return _csv(_pick(datasets, request.GET.get("chart", "")))
    ctx["datasets"] = datasets
    if getattr(request, "htmx", False):
        return render(request, "console/dashboards/usage_section.html#datasets", ctx)
    return render(request, "console/dashboards/usage_section.html", ctx)
