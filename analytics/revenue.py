"""The revenue dashboard's figures: billed per month, MRR by plan and over 12 months, net revenue
retention, churn, top customers and the headline numbers above them.

Each dataset costs a fixed number of queries (aggregations in SQL over billing's and invoicing's
selectors), so the page stays within the query budget whatever the number of customers or invoices.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncMonth

from analytics.datasets import Dataset, month_starts
from billing.selectors import subscription_list
from core.charts import Bar, fmt_number
from core.models import Organization
from core.money import quantize
from invoicing.selectors import invoice_list

BILLED_STATUSES = ("issued", "paid", "payment_failed", "overdue", "uncollectible")


def revenue_billed(*, organization: Organization, now: datetime) -> Dataset:
    """Invoiced totals per month of the service period they bill (an October invoice issued on November 1
    counts in October), last 12 months, per currency. One query."""
    months = month_starts(now)
    ds = Dataset(
        "billed", "Billed per month (by billing period)", ["Month", "Currency", "Invoices", "Billed"]
    )
    qs = invoice_list(organization=organization)
    totals: dict[tuple[datetime, str], tuple[int, Decimal]] = {}
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
    ds.empty = (
        "No invoice issued in the last 12 months. An invoice counts here, in the month of the period it "
        "bills, once it is issued: after a subscription's first billing period closes and the collection "
        "delay set in Billing settings has passed (an in-advance fee is issued when the subscription starts)."
    )
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
    qs = subscription_list(organization=organization)
    currency = organization.default_currency
    moments = [*month_starts(now), now]
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
    ds.empty = (
        "No active subscription with a recurring flat fee. A plan appears here as soon as a customer "
        "subscribes to one with a monthly or yearly fee."
    )
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
    months = month_starts(now)
    ds = Dataset("churn", "Churned subscriptions per month", ["Month", "Churned"])
    qs = subscription_list(organization=organization)
    replaced = (
        subscription_list(organization=organization)
        .filter(previous__isnull=False)
        .order_by()
        .values("previous_id")
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
    qs = invoice_list(organization=organization)
    rows = (
        qs.filter(status__in=BILLED_STATUSES, issued_at__gte=now - timedelta(days=365))
        .values("customer_id", "customer__name", "customer__key", "currency")
        .annotate(total=Sum("total"))
        .order_by("-total")[:limit]
    )
    ds.empty = (
        "No invoice issued in the last 12 months. Customers appear here by the total of their issued "
        "invoices, from the first one issued."
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
    month = month_starts(now, 2)[0]
    churned = next((int(r[1]) for r in churn.rows if r[0] == month.strftime("%Y-%m")), 0)
    at_start = (
        subscription_list(organization=organization)
        .filter(active_from__lte=month)
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
