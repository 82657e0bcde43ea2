"""Invoice run: N subscriptions with usage invoiced end to end (draft, tax, number, issue), one invoice each.

Sets up an organization `bench-invoicing` (recreated each run) with N customers (one subject each),
each on a monthly subscription (a flat in-advance fee and a graduated usage rate card on the feature
`tokens`, metered by a SUM meter) anchored on the 1st of last month, and a 10% default tax rate.

Usage is real metering: BENCH_EVENTS_PER_SUB events per customer in last month's period (plus one in
this month, not billed) are stored through `metering.store.events_insert` (COPY), the rollups are
advanced (as the beat does), then one late event per customer is stored after the rollups (the raw
tail above the watermark), so the invoice run reads rollups plus fresh events like in production.

Then times the invoice clock (`invoice_runs_schedule_batches`: due periods from billing's subscription
rows, cut into batches) and the fan-out (`invoice_run_batch_process` per batch) on BENCH_WORKERS
processes (default 2, this machine's cores), as Celery workers would run them. Checks exactly one
issued invoice per subscription, gapless numbers, and that the billed usage equals the events' sum.
Env: BENCH_SUBSCRIPTIONS (default 10_000), BENCH_WORKERS (default 2), BENCH_EVENTS_PER_SUB (default 5).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

SLUG = "bench-invoicing"
GRADUATED = {
    "type": "tiered",
    "mode": "graduated",
    "tiers": [
        {"upToAmount": "1000", "unitPrice": {"type": "unit", "amount": "0.10"}},
        {"unitPrice": {"type": "unit", "amount": "0.05"}},
    ],
}


def _value(i: int, j: int) -> int:
    return (i * 37 + j * 101) % 900


def _events(org_id: str, n: int, anchor: datetime, per_sub: int) -> tuple[int, Decimal]:
    """Store the usage events; returns (events stored, sum billed in the period [anchor, next month))."""
    from metering import store
    from metering.services import rollups_advance

    month_end = (anchor + timedelta(days=32)).replace(day=1)
    span = (month_end - anchor).total_seconds()
    received = datetime.now(UTC)
    billed = Decimal(0)
    batch: list = []
    stored = 0

    def flush() -> None:
        nonlocal stored, batch
        if batch:
            stored += store.events_insert(organization_id=org_id, events=batch, received_at=received).inserted
            batch = []

    for i in range(n):
        for j in range(per_sub):
            at = anchor + timedelta(seconds=int(span * (j + 0.5) / (per_sub + 1)) + i % 3600)
            v = _value(i, j)
            billed += v
            batch.append(("bench", f"e{i}-{j}", "tokens", f"s{i:06d}", at, f'{{"tokens": {v}}}'))
        batch.append(
            ("bench", f"e{i}-next", "tokens", f"s{i:06d}", month_end + timedelta(hours=2), '{"tokens": 7}')
        )
        if len(batch) >= 50_000:
            flush()
    flush()
    rollups_advance(organization_id=org_id, max_chunks=1000)
    for i in range(n):  # late events after the rollups ran: read raw, above the watermark
        v = _value(i, per_sub)
        billed += v
        batch.append(
            (
                "bench",
                f"e{i}-late",
                "tokens",
                f"s{i:06d}",
                month_end - timedelta(minutes=1),
                f'{{"tokens": {v}}}',
            )
        )
        if len(batch) >= 50_000:
            flush()
    flush()
    return stored, billed


def _setup(n: int, anchor: datetime) -> str:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from billing.models import Customer, CustomerSubject, Subscription, SubscriptionItem
    from catalog.services import feature_create
    from core.models import Organization
    from core.services import organization_create
    from invoicing.models import Invoice, InvoiceRun
    from invoicing.services import invoicing_settings_update, tax_rate_create
    from metering import store
    from metering.services import meter_create

    old = Organization.objects.filter(slug=SLUG).first()
    if old is not None:
        store.events_purge(organization_id=old.id)
        InvoiceRun.objects.filter(organization=old).delete()
        Invoice.objects.filter(organization=old).delete()
        SubscriptionItem.objects.filter(organization=old).delete()
        Subscription.objects.filter(organization=old).delete()
        Customer.objects.filter(organization=old).delete()
        old.delete()
    org = organization_create(slug=SLUG, name="Bench Invoicing")
    invoicing_settings_update(organization=org, supplier_name="Bench Invoicing GmbH")
    tax_rate_create(organization=org, name="VAT", percentage="10", is_default=True)
    customers = Customer.objects.bulk_create(
        [Customer(organization=org, key=f"c{i:06d}", name=f"Customer {i}", currency="USD") for i in range(n)],
        batch_size=2000,
    )
    CustomerSubject.objects.bulk_create(
        [
            CustomerSubject(organization=org, customer=c, subject_key=f"s{i:06d}")
            for i, c in enumerate(customers)
        ],
        batch_size=2000,
    )
    meter_create(
        organization=org, slug="tokens", event_type="tokens", aggregation="SUM", value_property="$.tokens"
    )
    feature_create(organization=org, key="tokens", name="Tokens", meter_slug="tokens")
    subs = Subscription.objects.bulk_create(
        [
            Subscription(
                organization=org,
                customer=c,
                plan_key="pro",
                plan_version=1,
                name="Pro",
                currency="USD",
                timezone="UTC",
                billing_cadence="P1M",
                billing_anchor=anchor,
                active_from=anchor,
                plan_snapshot={},
            )
            for c in customers
        ],
        batch_size=2000,
    )
    items = []
    for s in subs:
        items.append(
            SubscriptionItem(
                organization=org,
                subscription=s,
                key="platform",
                name="Platform",
                price={"type": "flat", "amount": "49", "paymentTerm": "in_advance"},
                payment_term="in_advance",
                billing_cadence="P1M",
                active_from=anchor,
            )
        )
        items.append(
            SubscriptionItem(
                organization=org,
                subscription=s,
                key="tokens",
                name="Tokens",
                feature_key="tokens",
                price=GRADUATED,
                payment_term="in_arrears",
                billing_cadence="P1M",
                active_from=anchor,
            )
        )
    SubscriptionItem.objects.bulk_create(items, batch_size=5000)
    return org.id


def _work(batch: list[str]) -> int:
    from django.db import connections

    connections.close_all()  # a fresh connection per forked worker
    from invoicing.runs import invoice_run_batch_process

    return invoice_run_batch_process(item_ids=batch)


def run() -> list[dict]:
    from django.db import connections
    from django.db.models import Sum

    from core.models import Organization
    from invoicing.models import Invoice, InvoiceLine
    from invoicing.runs import invoice_runs_schedule_batches

    n = int(os.environ.get("BENCH_SUBSCRIPTIONS", "10000"))
    workers = int(os.environ.get("BENCH_WORKERS", "2"))
    per_sub = int(os.environ.get("BENCH_EVENTS_PER_SUB", "5"))
    today = datetime.now(UTC)
    this_month = today.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    anchor = (this_month - timedelta(days=1)).replace(day=1)
    org_id = _setup(n, anchor)
    org = Organization.objects.get(id=org_id)
    t0 = time.monotonic()
    stored, expected_usage = _events(org_id, n, anchor, per_sub)
    ingest = time.monotonic() - t0

    # set-up, not timed: each subscription's start invoice (its first in-advance fee), issued at the anchor
    connections.close_all()
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers) as pool:
        pool.map(_work, invoice_runs_schedule_batches(organization=org, now=anchor + timedelta(minutes=1)))

    started = time.monotonic()
    batches = invoice_runs_schedule_batches(organization=org)
    scheduled = time.monotonic() - started
    connections.close_all()
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers) as pool:
        pool.map(_work, batches, chunksize=1)
    elapsed = time.monotonic() - started

    invoices = Invoice.objects.filter(organization=org, kind="period")
    issued = invoices.filter(status="issued").count()
    per_customer_ok = invoices.values("customer_id").distinct().count() == n == invoices.count()
    every = Invoice.objects.filter(organization=org).values_list("number", flat=True)
    numbers = sorted(int(x.rsplit("-", 1)[1]) for x in every)
    gapless = numbers == list(range(1, len(numbers) + 1))
    billed_usage = InvoiceLine.objects.filter(organization=org, type="usage").aggregate(s=Sum("quantity"))[
        "s"
    ]
    usage_ok = billed_usage == expected_usage
    ok = elapsed <= 60 and issued == n and per_customer_ok and gapless and usage_ok
    return [
        {
            "benchmark": f"invoice run: {n} subscriptions with usage → issued invoices ({workers} workers)",
            "measured": f"{elapsed:.1f} s ({n / elapsed:.0f} invoices/s; clock {scheduled:.1f} s, "
            f"{len(batches)} batches)",
            "target": "≤ 60 s, one invoice each",
            "ok": ok,
            "notes": f"issued {issued}/{n}, one per customer: {per_customer_ok}, gapless numbers: {gapless}; "
            f"usage from {stored} real events (rollups + late raw tail; stored in {ingest:.1f} s, not timed), "
            f"billed usage = events' sum: {usage_ok} ({billed_usage})",
        },
    ]
