"""Invoice runs: twice, crashed half way then rerun → exactly one invoice per period, gapless numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from invoicing import services
from invoicing.models import Invoice, InvoiceLine, InvoiceRun, InvoiceRunItem, NumberSequence
from invoicing.runs import invoice_run_item_process, invoice_run_item_retry, invoice_runs_schedule
from invoicing.services import state
from invoicing.tasks import invoice_clock
from tests.invoicing.conftest import make_customer, make_subscription

OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 1, 2, tzinfo=UTC)
# Real commits: the retry button queues its task with transaction.on_commit.
pytestmark = pytest.mark.django_db(transaction=True)


def setup_customers(tenant, usage, n: int) -> list:
    out = []
    for i in range(n):
        c = make_customer(tenant, f"c{i:02d}")
        make_subscription(
            tenant,
            c,
            anchor=OCT,
            items=[
                {
                    "key": "calls",
                    "name": "Calls",
                    "feature_key": "calls",
                    "price": {"type": "unit", "amount": "0.5"},
                }
            ],
        )
        usage.add(c, "calls", datetime(2026, 10, 10, tzinfo=UTC), i + 1)
        out.append(c)
    return out


def numbers(org) -> list[str]:
    return sorted(
        Invoice.objects.filter(organization=org).exclude(number="").values_list("number", flat=True)
    )


def test_clock_twice_gives_one_invoice_per_customer_and_period(tenant_a, tenant_b, usage):
    setup_customers(tenant_a, usage, 5)
    setup_customers(tenant_b, usage, 2)
    with time_machine.travel(NOW, tick=False):
        assert invoice_clock() == 7  # eager: the fan-out tasks run inline
        assert invoice_clock() == 0  # nothing due any more
        # even processing the same items again changes nothing
        for item in InvoiceRunItem.objects.all():
            invoice_run_item_process(item_id=item.id)
    assert Invoice.objects.filter(organization=tenant_a.org).count() == 5
    assert numbers(tenant_a.org) == [f"ACME-2026-{i:06d}" for i in range(1, 6)]
    assert numbers(tenant_b.org) == ["GLOBEX-2026-000001", "GLOBEX-2026-000002"]
    run = InvoiceRun.objects.get(organization=tenant_a.org)
    assert (run.status, run.total, run.done, run.failed) == ("done", 5, 5, 0)


def test_crash_half_way_then_rerun(tenant_a, tenant_b, usage, monkeypatch):
    customers = setup_customers(tenant_a, usage, 6)
    setup_customers(tenant_b, usage, 1)
    crash_for = {customers[2].id, customers[4].id}
    real = state.transition

    def dying_transition(invoice, to, **fields):
        # the lines are written already: the worker "dies" before the draft is committed
        if to == "draft" and invoice.customer_id in crash_for:
            raise RuntimeError("worker killed")
        return real(invoice, to, **fields)

    monkeypatch.setattr(state, "transition", dying_transition)
    with time_machine.travel(NOW, tick=False):
        ids = invoice_runs_schedule(now=NOW, organization=tenant_a.org)
        for item_id in ids:
            with (
                pytest.raises(RuntimeError)
                if InvoiceRunItem.objects.get(id=item_id).customer_id in crash_for
                else _nullcontext()
            ):
                invoice_run_item_process(item_id=item_id, now=NOW)
    run = InvoiceRun.objects.get(organization=tenant_a.org)
    assert (run.status, run.done, run.failed) == ("failed", 4, 2)
    failed = InvoiceRunItem.objects.filter(run=run, status="failed")
    assert {i.customer_id for i in failed} == crash_for
    assert all("worker killed" in i.error for i in failed)
    # the crashed builds left nothing behind: no half-built lines, no number consumed
    crashed = Invoice.objects.filter(customer_id__in=crash_for)
    assert not crashed.exclude(status="gathering").exists()
    assert not InvoiceLine.objects.filter(invoice__in=crashed).exists()
    assert NumberSequence.objects.get(organization=tenant_a.org).last_value == 4
    # fixed; the clock picks the rest up again (and the retry button works too), twice is harmless
    monkeypatch.setattr(state, "transition", real)
    with time_machine.travel(NOW, tick=False):
        invoice_run_item_retry(organization=tenant_a.org, item_id=failed[0].id)
        invoice_clock()
        invoice_clock()
    assert Invoice.objects.filter(organization=tenant_a.org, status="issued").count() == 6
    assert numbers(tenant_a.org) == [f"ACME-2026-{i:06d}" for i in range(1, 7)]
    run.refresh_from_db()
    assert run.failed == 0 or run.done + run.failed == run.total


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def test_issued_invoices_become_overdue_after_their_due_date_once(tenant_a, tenant_b, usage):
    from invoicing.tasks import invoices_mark_overdue

    setup_customers(tenant_a, usage, 2)
    setup_customers(tenant_b, usage, 1)
    with time_machine.travel(NOW, tick=False):
        invoice_clock()
    paid = Invoice.objects.filter(organization=tenant_a.org).order_by("id").first()
    services.invoice_set_status(organization=tenant_a.org, invoice=paid, status="paid")
    due_at = paid.due_at  # issued at NOW + 30 days (default due_days)
    with time_machine.travel(due_at - timedelta(seconds=1), tick=False):
        assert invoices_mark_overdue() == 0
    with time_machine.travel(due_at, tick=False):
        assert invoices_mark_overdue() == 2  # tenant A's unpaid one and tenant B's
        assert invoices_mark_overdue() == 0  # idempotent
    statuses = sorted(Invoice.objects.values_list("organization__slug", "status"))
    assert statuses == [("acme", "overdue"), ("acme", "paid"), ("globex", "overdue")]


def test_clock_back_fills_missed_periods_once(tenant_a, tenant_b, usage):
    setup_customers(tenant_a, usage, 2)
    setup_customers(tenant_b, usage, 1)
    # the clock was down from October to the new year: Oct, Nov and Dec are all due
    with time_machine.travel(datetime(2027, 1, 1, 1, tzinfo=UTC), tick=False):
        assert invoice_clock() == 9
        assert invoice_clock() == 0
    starts = sorted(
        Invoice.objects.filter(organization=tenant_a.org).values_list("customer__key", "period_start")
    )
    months = [datetime(2026, m, 1, tzinfo=UTC) for m in (10, 11, 12)]
    assert starts == [(k, m) for k in ("c00", "c01") for m in months]
    # October carries the usage, the later ones none; numbers are gapless per organization
    oct_totals = sorted(
        Invoice.objects.filter(organization=tenant_a.org, period_start=OCT).values_list("total", flat=True)
    )
    assert oct_totals == [Decimal("0.50"), Decimal("1.00")]
    assert numbers(tenant_a.org) == [f"ACME-2027-{i:06d}" for i in range(1, 7)]
    assert numbers(tenant_b.org) == [f"GLOBEX-2027-{i:06d}" for i in range(1, 4)]
