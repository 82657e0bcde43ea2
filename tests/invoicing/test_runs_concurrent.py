"""Batches of one run processed at the same time by two workers, with a customer's moments split across
batches: billing is serialized per customer (its row is locked before its ledger is read), so nothing is
billed twice and every moment gets its invoice."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.db import connection

from invoicing.models import Invoice, InvoiceLine
from invoicing.runs import invoice_run_batch_process, invoice_runs_schedule_batches
from tests.invoicing.conftest import make_customer, make_subscription

pytestmark = pytest.mark.django_db(transaction=True)

OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 1, 1, tzinfo=UTC)


def test_two_workers_never_bill_a_customer_twice(tenant_a, tenant_b, usage):
    customers = []
    for i in range(24):
        c = make_customer(tenant_a, f"c{i:02d}")
        make_subscription(
            tenant_a,
            c,
            anchor=OCT,
            items=[
                {"key": "base", "price": {"type": "flat", "amount": "10", "paymentTerm": "in_advance"}},
                {"key": "calls", "feature_key": "calls", "price": {"type": "unit", "amount": "1"}},
            ],
        )
        usage.add(c, "calls", datetime(2026, 10, 5, tzinfo=UTC), i)
        customers.append(c)
    other = make_customer(tenant_b, "other")
    make_subscription(
        tenant_b, other, anchor=OCT, items=[{"key": "base", "price": {"type": "flat", "amount": "999"}}]
    )
    with time_machine.travel(NOW, tick=False):
        # small batches: a customer's start and October moments land in different batches
        batches = invoice_runs_schedule_batches(now=NOW, organization=tenant_a.org, batch_size=5)
    assert sum(len(b) for b in batches) == 48  # start + October for each of 24 customers
    errors: list[BaseException] = []

    def worker(mine: list[list[str]]) -> None:
        try:
            with time_machine.travel(NOW, tick=False):
                for batch in mine:
                    invoice_run_batch_process(item_ids=batch, now=NOW)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(batches[i::2],)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    for i, c in enumerate(customers):
        invoices = Invoice.objects.filter(customer=c)
        # October's fee (start) + November's fee (Oct 1 -> Nov 1 invoice) + October's usage, once each
        fees = InvoiceLine.objects.filter(invoice__customer=c, type="flat_fee")
        assert sorted(x.amount for x in fees) == [Decimal("10.00"), Decimal("10.00")]
        assert sum(i.total for i in invoices) == Decimal(20 + i)
    assert not Invoice.objects.filter(organization=tenant_b.org).exists()  # not scheduled: A's run only
