"""Whole billing periods, end to end through the invoice run, with frozen time."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from invoicing.models import Invoice, InvoiceLine, InvoiceRunItem
from invoicing.runs import (
    invoice_run_batch_process,
    invoice_run_item_process,
    invoice_runs_schedule,
    invoice_runs_schedule_batches,
)
from invoicing.services import (
    customer_credit_create,
    invoice_on_demand_create,
    invoicing_settings_update,
    tax_rate_create,
)
from tests.invoicing.conftest import GRADUATED, make_customer, make_subscription

OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOV = datetime(2026, 11, 1, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)
D = Decimal


_PATH = {"mode": "batch"}


@pytest.fixture(autouse=True, params=["batch", "single"])
def run_path(request):
    """Every scenario runs through the batched run (production) and the single-item path (fallback)."""
    _PATH["mode"] = request.param
    yield request.param
    _PATH["mode"] = "batch"


def run_clock(now: datetime, organization=None) -> list[Invoice]:
    with time_machine.travel(now, tick=False):
        if _PATH["mode"] == "single":
            ids = invoice_runs_schedule(now=now, organization=organization)
            return [invoice_run_item_process(item_id=i, now=now) for i in ids]
        out = []
        for batch in invoice_runs_schedule_batches(now=now, organization=organization):
            invoice_run_batch_process(item_ids=batch, now=now)
            out += [
                i.invoice
                for i in InvoiceRunItem.objects.filter(id__in=batch).select_related("invoice").order_by("id")
            ]
        return out


def lines_of(invoice: Invoice) -> list[tuple[str, str, Decimal]]:
    return [(x.type, x.description, x.amount) for x in InvoiceLine.objects.filter(invoice=invoice)]


def test_graduated_usage_with_minimum_commitment_discount_credit_and_tax(tenant_a, tenant_b, usage):
    tax_rate_create(organization=tenant_a.org, name="Sales tax", percentage="10", is_default=True)
    cust = make_customer(tenant_a, "initech")
    make_subscription(
        tenant_a,
        cust,
        anchor=OCT,
        items=[
            {
                "key": "platform",
                "name": "Platform fee",
                "price": {"type": "flat", "amount": "49", "paymentTerm": "in_advance"},
            },
            {
                "key": "api",
                "name": "API calls",
                "feature_key": "api_calls",
                "price": {**GRADUATED, "minimumAmount": "250"},
                "discounts": {"percentage": {"percentage": "10"}},
            },
        ],
    )
    customer_credit_create(
        organization=tenant_a.org, customer=cust, amount="5", currency="USD", description="Welcome credit"
    )
    usage.add(cust, "api_calls", datetime(2026, 10, 5, tzinfo=UTC), 1500)
    usage.add(cust, "api_calls", datetime(2026, 10, 31, 23, 59, tzinfo=UTC), 1500)
    usage.add(cust, "api_calls", NOV, 999)  # next period: not billed here
    # tenant B: its own customer and usage, never on A's invoices
    other = make_customer(tenant_b, "umbrella")
    make_subscription(
        tenant_b,
        other,
        anchor=OCT,
        items=[{"key": "platform", "price": {"type": "flat", "amount": "1000", "paymentTerm": "in_advance"}}],
    )

    assert run_clock(datetime(2026, 11, 1, 0, 30, tzinfo=UTC)) == []  # inside the 1 h collection delay
    invoices = run_clock(datetime(2026, 11, 1, 1, 0, tzinfo=UTC))
    assert len(invoices) == 2
    inv = Invoice.objects.get(organization=tenant_a.org)
    assert inv.status == "issued"
    assert inv.number == "ACME-2026-000001"
    assert (inv.period_start, inv.period_end) == (OCT, NOV)
    # 1000 x 0.10 + 2000 x 0.05 = 200; -10% = 180; minimum 250 -> top-up 70
    assert lines_of(inv) == [
        ("usage", "API calls", D("200.00")),
        ("discount", "API calls: discount", D("-20.00")),
        ("commitment", "API calls: minimum commitment top-up", D("70.00")),
        ("flat_fee", "Platform fee", D("49.00")),
        ("credit", "Welcome credit", D("-5.00")),
        ("tax", "Sales tax 10% (added)", D("29.90")),
    ]
    usage_line = inv.lines.get(type="usage")
    assert usage_line.quantity == D("3000")
    assert [d["type"] for d in usage_line.detail][:2] == ["tier_unit", "tier_unit"] or len(
        usage_line.detail
    ) >= 2
    assert (inv.amount, inv.discounts_total, inv.taxes_total, inv.credits_total, inv.total) == (
        D("319.00"),
        D("20.00"),
        D("29.90"),
        D("5.00"),
        D("323.90"),
    )
    assert inv.customer_snapshot["name"] == "Initech Ltd"
    b_inv = Invoice.objects.get(organization=tenant_b.org)
    assert b_inv.number == "GLOBEX-2026-000001"
    assert b_inv.total == D("1000.00")
    assert not InvoiceLine.objects.filter(invoice=b_inv, organization=tenant_a.org).exists()


def test_plan_upgrade_mid_period_prorates_flat_fees_and_splits_usage(tenant_a, tenant_b, usage):
    cust = make_customer(tenant_a, "hooli")
    change = datetime(2026, 11, 16, tzinfo=UTC)  # November has 30 days: 15 days each side
    make_subscription(
        tenant_a,
        cust,
        anchor=OCT,
        active_to=change,
        plan_key="basic",
        items=[
            {
                "key": "base",
                "name": "Basic plan",
                "price": {"type": "flat", "amount": "10", "paymentTerm": "in_advance"},
            },
            {
                "key": "calls",
                "name": "Calls (basic)",
                "feature_key": "calls",
                "price": {"type": "unit", "amount": "0.02"},
            },
        ],
    )
    make_subscription(
        tenant_a,
        cust,
        anchor=OCT,
        active_from=change,
        plan_key="pro",
        items=[
            {
                "key": "base",
                "name": "Pro plan",
                "price": {"type": "flat", "amount": "20", "paymentTerm": "in_advance"},
            },
            {
                "key": "calls",
                "name": "Calls (pro)",
                "feature_key": "calls",
                "price": {"type": "unit", "amount": "0.01"},
            },
        ],
    )
    usage.add(cust, "calls", datetime(2026, 11, 10, tzinfo=UTC), 100)
    usage.add(cust, "calls", datetime(2026, 11, 20, tzinfo=UTC), 100)
    make_subscription(
        tenant_b,
        make_customer(tenant_b, "hooli"),
        anchor=OCT,
        items=[{"key": "base", "price": {"type": "flat", "amount": "99", "paymentTerm": "in_advance"}}],
    )

    # the clock back-fills the October period it never ran for, and bills November
    invoices = run_clock(datetime(2026, 12, 1, 1, tzinfo=UTC), organization=tenant_a.org)
    assert sorted(i.period_start for i in invoices) == [OCT, NOV]
    [inv] = [i for i in invoices if i.period_start == NOV]
    got = {(x.description, x.amount) for x in inv.lines.all()}
    assert got == {
        ("Basic plan (prorated 50%)", D("5.00")),
        ("Pro plan (prorated 50%)", D("10.00")),
        ("Calls (basic)", D("2.00")),
        ("Calls (pro)", D("1.00")),
    }
    assert inv.total == D("18.00")
    assert not Invoice.objects.filter(organization=tenant_b.org).exists()  # B's clock was not run


def test_late_events_within_and_after_the_collection_delay(tenant_a, tenant_b, usage):
    invoicing_settings_update(organization=tenant_a.org, collection_delay_seconds=3600)
    cust = make_customer(tenant_a, "pied")
    make_subscription(
        tenant_a,
        cust,
        anchor=OCT,
        items=[
            {
                "key": "tokens",
                "name": "Tokens",
                "feature_key": "tokens",
                "price": {"type": "unit", "amount": "1"},
            }
        ],
    )
    make_subscription(
        tenant_b,
        make_customer(tenant_b, "pied"),
        anchor=OCT,
        items=[{"key": "tokens", "feature_key": "tokens", "price": {"type": "unit", "amount": "1"}}],
    )
    usage.add(cust, "tokens", datetime(2026, 10, 20, tzinfo=UTC), 10)
    # arrives at 00:40 on Nov 1 for Oct 31: within the delay -> on October's invoice
    usage.add(cust, "tokens", datetime(2026, 10, 31, 23, 30, tzinfo=UTC), 5)
    [october] = run_clock(datetime(2026, 11, 1, 1, tzinfo=UTC), organization=tenant_a.org)
    assert october.total == D("15.00")
    # arrives on Nov 3 for Oct 31: after issue -> an adjustment line on November's invoice, October unchanged
    usage.add(cust, "tokens", datetime(2026, 10, 31, 23, 45, tzinfo=UTC), 2)
    usage.add(cust, "tokens", datetime(2026, 11, 15, tzinfo=UTC), 7)
    [november] = run_clock(datetime(2026, 12, 1, 1, tzinfo=UTC), organization=tenant_a.org)
    october.refresh_from_db()
    assert october.total == D("15.00")
    assert sorted((x.type, x.amount, x.quantity) for x in november.lines.all()) == [
        ("adjustment", D("2.00"), D("2")),
        ("usage", D("7.00"), D("7")),
    ]
    adj = november.lines.get(type="adjustment")
    assert adj.description.startswith("Late usage adjustment: Tokens (2026-10-01")
    assert november.total == D("9.00")
    # a third period sees no second adjustment for the same late events
    [december] = run_clock(datetime(2027, 1, 1, 1, tzinfo=UTC), organization=tenant_a.org)
    assert not december.lines.filter(type="adjustment").exists()
    assert december.number == "ACME-2027-000001"


def test_on_demand_then_period_end_bills_nothing_twice(tenant_a, tenant_b, usage):
    cust = make_customer(tenant_a, "vandelay")
    make_subscription(
        tenant_a,
        cust,
        anchor=OCT,
        items=[
            {
                "key": "seat",
                "name": "Seat",
                "price": {"type": "flat", "amount": "30", "paymentTerm": "in_advance"},
            },
            {"key": "gb", "name": "Storage GB", "feature_key": "gb", "price": GRADUATED},
        ],
    )
    make_subscription(
        tenant_b,
        make_customer(tenant_b, "vandelay"),
        anchor=OCT,
        items=[{"key": "gb", "feature_key": "gb", "price": GRADUATED}],
    )
    usage.add(cust, "gb", datetime(2026, 10, 3, tzinfo=UTC), 800)
    mid = datetime(2026, 10, 15, 12, tzinfo=UTC)
    with time_machine.travel(mid, tick=False):
        [early] = invoice_on_demand_create(organization=tenant_a.org, customer=cust, now=mid)
    assert early.status == "issued"
    assert (early.period_start, early.period_end) == (OCT, mid)
    assert {(x.description, x.amount) for x in early.lines.all()} == {
        ("Seat", D("30.00")),
        ("Storage GB", D("80.00")),
    }
    usage.add(cust, "gb", datetime(2026, 10, 20, tzinfo=UTC), 700)  # crosses the 1000 tier bound
    [final] = run_clock(datetime(2026, 11, 1, 1, tzinfo=UTC), organization=tenant_a.org)
    # cumulative 1500 -> 1000 x 0.10 + 500 x 0.05 = 125; 80 billed already -> 45; the seat fee is not billed again
    assert [(x.type, x.amount, x.quantity) for x in final.lines.all()] == [("usage", D("45.00"), D("700"))]
    assert final.lines.get().period_start == mid
    assert [early.number, final.number] == ["ACME-2026-000001", "ACME-2026-000002"]
