"""Invoice run: N subscriptions with usage invoiced end to end (draft, tax, number, issue), one invoice each.

Sets up an organization `bench-invoicing` (recreated each run) with N customers, each on a monthly
subscription (a flat in-advance fee and a graduated usage rate card) anchored on the 1st of last month,
and a 10% default tax rate. Then times the invoice clock (`invoice_runs_schedule`: due periods from
billing's subscription rows) and the fan-out (`invoice_run_item_process` per customer) on
BENCH_WORKERS processes (default 2, this machine's cores), as Celery workers would run them.

Usage comes from an in-memory provider (one dict lookup per line): this measures invoicing, not the
metering query (see bench/metering*.py for that). Checks exactly one issued invoice per subscription and
gapless numbers. Env: BENCH_SUBSCRIPTIONS (default 10_000), BENCH_WORKERS (default 2).
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


def _usage(*, organization, customer_id, feature_key, start, end) -> Decimal:
    return Decimal(sum(ord(ch) for ch in customer_id) % 3000)


def _setup(n: int, anchor: datetime) -> str:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from billing.models import Customer, Subscription, SubscriptionItem
    from core.models import Organization
    from core.services import organization_create
    from invoicing.models import Invoice, InvoiceRun
    from invoicing.services import invoicing_settings_update, tax_rate_create

    old = Organization.objects.filter(slug=SLUG).first()
    if old is not None:
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


def _work(ids: list[str]) -> int:
    import django
    from django.db import connections

    django.setup()
    connections.close_all()
    from invoicing import sources
    from invoicing.runs import invoice_run_item_process

    sources.set_provider("usage", _usage)
    for item_id in ids:
        invoice_run_item_process(item_id=item_id)
    return len(ids)


def run() -> list[dict]:
    from django.db import connections

    from core.models import Organization
    from invoicing import sources
    from invoicing.models import Invoice
    from invoicing.runs import invoice_runs_schedule

    n = int(os.environ.get("BENCH_SUBSCRIPTIONS", "10000"))
    workers = int(os.environ.get("BENCH_WORKERS", "2"))
    today = datetime.now(UTC)
    this_month = today.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    anchor = (this_month - timedelta(days=1)).replace(day=1)
    org_id = _setup(n, anchor)
    org = Organization.objects.get(id=org_id)
    sources.set_provider("usage", _usage)

    started = time.monotonic()
    ids = invoice_runs_schedule(organization=org)
    scheduled = time.monotonic() - started
    connections.close_all()
    chunks = [ids[i::workers] for i in range(workers)]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers) as pool:
        pool.map(_work, chunks)
    elapsed = time.monotonic() - started
    sources.set_provider("usage", None)

    invoices = Invoice.objects.filter(organization=org)
    issued = invoices.filter(status="issued").count()
    per_customer_ok = invoices.values("customer_id").distinct().count() == n == invoices.count()
    numbers = sorted(int(x.rsplit("-", 1)[1]) for x in invoices.values_list("number", flat=True))
    gapless = numbers == list(range(1, n + 1))
    ok = elapsed <= 60 and issued == n and per_customer_ok and gapless
    return [
        {
            "benchmark": f"invoice run: {n} subscriptions with usage → issued invoices ({workers} workers)",
            "measured": f"{elapsed:.1f} s ({n / elapsed:.0f} invoices/s; clock {scheduled:.1f} s)",
            "target": "≤ 60 s, one invoice each",
            "ok": ok,
            "notes": f"issued {issued}/{n}, one per customer: {per_customer_ok}, gapless numbers: {gapless}; "
            "usage from an in-memory provider",
        },
    ]
