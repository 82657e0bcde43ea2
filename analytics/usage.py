"""The usage dashboard's figures: usage by customer, by feature and (AI meters) by model and type
(showback), cost by customer and feature as invoiced (chargeback), and a meter's 12-month trend.

Usage comes from `metering.selectors.meter_query` (rollups below the watermark plus the raw tail): one
grouped query per section, so the page's cost does not grow with customers or events.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import Q, Sum, Value

from analytics.datasets import Dataset, month_starts, plain
from billing.selectors import customer_list
from catalog.selectors import feature_list
from core.charts import Bar, fmt_number
from core.models import Organization
from core.money import quantize
from invoicing.models import InvoiceLine
from metering.selectors import meter_query

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
    qs = (
        customer_list(organization=organization)
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
    by_customer.empty = by_feature.empty = ai.empty = (
        "No usage in this period. Usage shows here within a minute of events arriving for a subject that "
        "belongs to a customer (set a customer's subjects on its page)."
    )
    if not mapping:
        return [by_customer, by_feature, ai]
    additive = meter.aggregation in ADDITIVE
    dims = sorted(meter.group_by or {}) if additive else []
    rows = meter_query(
        organization=organization, meter=meter, from_=start, to=end, customers=mapping, group_by=dims
    )
    # by customer
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        totals[r.customer_id or ""] += r.value or Decimal(0)
    for cid, value in sorted(totals.items(), key=lambda kv: -kv[1])[:20]:
        c = customers.get(cid)
        by_customer.rows.append([c.name if c else cid, (c.key or "") if c else "", plain(value)])
    by_customer.bars = [Bar(r[1] or r[0][:16], r[2], f"{r[0]}: {fmt_number(r[2])}") for r in by_customer.rows]
    if not additive:
        by_feature.note = ai.note = f"{meter.aggregation} meters are not summed across groups."
        return [by_customer, by_feature, ai]
    # by feature: features on this meter, matched to their group-by filters
    for f in feature_list(organization=organization):
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
            c = customers.get(r.customer_id or "")
            key = (
                c.name if c else r.customer_id or "",
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
    qs = InvoiceLine.objects.filter(organization=organization)
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
    ds.empty = (
        "Nothing invoiced for this period yet. Each subscribed customer's running invoice for the current "
        "period fills in as usage and fees arrive; its lines show here by feature."
    )
    return ds


def usage_trend(*, organization: Organization, meter, now: datetime) -> Dataset:
    """The meter's usage per calendar month (UTC) over the last 12 months, all subjects: one meter query
    with MONTH windows (rollups below the watermark plus the raw tail)."""
    months = month_starts(now)
    title = f"{meter.name or meter.slug} over 12 months"
    ds = Dataset("usage-trend", title, ["Month", "Usage"])
    rows = meter_query(organization=organization, meter=meter, from_=months[0], to=now, window_size="MONTH")
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
