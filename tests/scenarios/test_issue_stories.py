"""The twelve invoice stories that were wrong, each with its amounts worked out by hand (USD).

Timeline conventions: the clock runs at 01:00, one hour after a boundary (the default collection delay),
so a period closed at midnight is due. Subscriptions start at 00:00 on the day given.
"""

from __future__ import annotations

from datetime import UTC, datetime

from invoicing.models import InvoiceLine
from tests.scenarios.conftest import D, at, flat, lines, totals, usage

UNIT_10C = {"type": "unit", "amount": "0.10"}


def test_1_rate_card_minimum_commitment_tops_up(world):
    world.meter("calls")
    world.plan("p", [usage("calls", "calls", UNIT_10C, commitments={"minimumAmount": "20"})])
    cust = world.customer("acme")
    world.subscribe(cust, "p", "2026-10-01")
    world.use(cust, "calls", "2026-10-10", 50)
    (inv,) = world.clock("2026-11-01 01:00")
    # 50 x 0.10 = 5.00; minimum 20.00 -> top-up 15.00
    assert lines(inv) == [("usage", D("5.00")), ("commitment", D("15.00"))]
    assert inv.total == D("20.00")


def test_2_each_item_on_its_own_cadence(world):
    world.plan(
        "p",
        [
            flat("setup", "100", cadence=None),  # one-time
            flat("annual", "120", cadence="P1Y"),
            flat("base", "10"),
        ],
    )
    cust = world.customer("acme")
    world.subscribe(cust, "p", "2026-10-01")
    (first,) = world.clock("2026-10-01 01:00")
    assert first.kind == "start" and first.total == D("230.00")  # 100 + 120 + 10, at once
    (second,) = world.clock("2026-11-01 01:00")
    assert lines(second) == [("flat_fee", D("10.00"))]  # November's base fee only
    (third,) = world.clock("2026-12-01 01:00")
    assert third.total == D("10.00")


def test_3_cancel_then_new_subscription_each_billed_on_its_own_anchor(world):
    world.plan("p", [flat("base", "31")])
    cust = world.customer("acme")
    a = world.subscribe(cust, "p", "2026-10-01")
    assert totals(world.clock("2026-10-01 01:00")) == [D("31.00")]
    world.cancel(a, "2026-10-11")
    # A covered Oct 1-11: 31 x 10/31 = 10.00 due, 31.00 billed -> -21.00 at once
    assert totals(world.clock("2026-10-11 01:00")) == [D("-21.00")]
    world.subscribe(cust, "p", "2026-10-21")  # anchor Oct 21
    (b_start,) = world.clock("2026-10-21 01:00")
    assert (b_start.kind, b_start.total) == ("start", D("31.00"))  # Oct 21 - Nov 21, in advance
    assert world.clock("2026-11-01 01:00") == []  # A's old anchor bills nothing any more
    (b_period,) = world.clock("2026-11-21 01:00")
    assert (b_period.period_start, b_period.period_end) == (at("2026-10-21"), at("2026-11-21"))
    assert b_period.total == D("31.00")  # Nov 21 - Dec 21 in advance
    assert world.billed(cust) == D("72.00")  # 10 for A + 2 x 31 for B


def test_4_on_demand_then_upgrade(world):
    world.plan("small", [flat("base", "31")])
    world.plan("large", [flat("base", "62")])
    cust = world.customer("acme")
    sub = world.subscribe(cust, "small", "2026-10-01")
    assert world.on_demand(cust, "2026-10-02").total == D("31.00")
    world.change(sub, "large", "2026-10-16")
    (change,) = world.clock("2026-10-16 01:00")
    # small: 31 x 15/31 = 15 due, 31 billed -> -16; large: 62 x 16/31 = 32
    assert sorted(x.amount for x in InvoiceLine.objects.filter(invoice=change)) == [D("-16.00"), D("32.00")]
    assert world.billed(cust) == D("47.00")


def test_5_on_demand_then_cancel(world):
    world.plan("small", [flat("base", "31")])
    cust = world.customer("acme")
    sub = world.subscribe(cust, "small", "2026-10-01")
    world.on_demand(cust, "2026-10-02")
    world.cancel(sub, "2026-10-11")
    world.clock("2026-10-11 01:00")
    assert world.billed(cust) == D("10.00")  # 31 x 10/31
    assert world.clock("2026-11-01 01:00") == []


def test_6_percentage_with_fee_per_event(world):
    world.meter("payments")
    world.plan(
        "p",
        [
            usage(
                "fees",
                "payments",
                {"type": "percentage", "percentage": "2.9", "fixedAmountPerEvent": "0.30"},
            )
        ],
    )
    cust = world.customer("acme")
    world.subscribe(cust, "p", "2026-10-01")
    for day in range(1, 11):
        world.use(cust, "payments", f"2026-10-{day:02d} 12:00", 100)
    (inv,) = world.clock("2026-11-01 01:00")
    assert inv.total == D("32.00")  # 2.9% of 1000 = 29.00, plus 10 events x 0.30 = 3.00


def test_7_round_once_per_line_and_top_up_to_the_exact_minimum(world):
    world.meter("calls")
    world.plan(
        "p",
        [
            usage(
                "calls",
                "calls",
                {"type": "unit", "amount": "0.001", "minimumAmount": "10"},
                discounts={"percentage": {"percentage": "10"}},
            )
        ],
    )
    cust = world.customer("acme")
    world.subscribe(cust, "p", "2026-10-01")
    world.use(cust, "calls", "2026-10-05", 10005)
    (inv,) = world.clock("2026-11-01 01:00")
    # 10005 x 0.001 = 10.005 -> 10.01; -10% = -1.0005 -> -1.00; 10.00 - 9.01 = 0.99 top-up
    assert lines(inv) == [("usage", D("10.01")), ("discount", D("-1.00")), ("commitment", D("0.99"))]
    assert inv.total == D("10.00")


def test_8_credit_used_once_when_the_clock_back_fills(world):
    world.plan("p", [flat("base", "10")])
    cust = world.customer("acme")
    world.subscribe(cust, "p", "2026-10-01")
    world.credit(cust, "5", "2026-10-01")
    # the clock was down in October and November: Oct 1 start, Nov 1 and Dec 1 moments at once
    invoices = world.clock("2026-12-01 01:00")
    assert totals(invoices) == [D("5.00"), D("10.00"), D("10.00")]
    assert sum((i.credits_total for i in invoices), D(0)) == D("5.00")


def test_9_credit_valid_at_the_billing_moment_on_both_paths(world):
    world.meter("calls")
    world.plan("p", [usage("calls", "calls", {"type": "unit", "amount": "1"})])
    cust = world.customer("acme")
    world.subscribe(cust, "p", "2026-10-01")
    world.credit(cust, "5", "2026-10-01", expires_at=datetime(2026, 11, 1, 0, 30, tzinfo=UTC))
    world.use(cust, "calls", "2026-10-10", 31)
    (inv,) = world.clock("2026-11-01 01:00")
    assert inv.total == D("26.00")  # the credit was valid at the period end (Nov 1 00:00): 31 - 5


def test_10_commitment_prorated_across_an_upgrade(world):
    world.meter("calls")
    card = usage("calls", "calls", {"type": "unit", "amount": "0.10", "minimumAmount": "30"})
    world.plan("small", [card])
    world.plan("large", [card, flat("base", "0", name="Seat")])
    cust = world.customer("acme")
    sub = world.subscribe(cust, "small", "2026-10-01")
    world.change(sub, "large", "2026-10-16")
    world.clock("2026-10-16 01:00")
    world.clock("2026-11-01 01:00")
    tops = [
        x.amount
        for x in InvoiceLine.objects.filter(invoice__customer=cust, type="commitment").order_by("period_end")
    ]
    # 30 x 15/31 = 14.516 -> 14.52 for Oct 1-16; 30 x 16/31 = 15.484 -> 15.48 for Oct 16 - Nov 1
    assert tops == [D("14.52"), D("15.48")]
    assert sum(tops) == D("30.00")


def test_12_late_usage_billed_on_the_next_invoice_for_its_period(world):
    world.meter("calls")
    world.plan("p", [usage("calls", "calls", {"type": "unit", "amount": "1"})])
    cust = world.customer("acme")
    world.subscribe(cust, "p", "2026-10-01")
    world.use(cust, "calls", "2026-10-10", 10)
    assert totals(world.clock("2026-11-01 01:00")) == [D("10.00")]
    world.use_late(cust, "calls", event_time="2026-10-20", received="2026-11-05", value=7)
    world.use(cust, "calls", "2026-11-10", 3)
    (dec,) = world.clock("2026-12-01 01:00")
    got = {(x.type, x.billing_period_start, x.amount) for x in InvoiceLine.objects.filter(invoice=dec)}
    assert got == {("usage", at("2026-11-01"), D("3.00")), ("adjustment", at("2026-10-01"), D("7.00"))}


def test_12b_late_usage_of_a_canceled_subscription(world):
    world.meter("calls")
    world.plan("p", [usage("calls", "calls", {"type": "unit", "amount": "1"})])
    cust = world.customer("acme")
    a = world.subscribe(cust, "p", "2026-10-01")
    world.use(cust, "calls", "2026-10-05", 4)
    world.cancel(a, "2026-10-11")
    assert totals(world.clock("2026-10-11 01:00")) == [D("4.00")]  # the final invoice, at once
    world.subscribe(cust, "p", "2026-10-21")
    world.use_late(cust, "calls", event_time="2026-10-06", received="2026-10-25", value=6)
    world.use(cust, "calls", "2026-11-01", 2)
    (nxt,) = world.clock("2026-11-21 01:00")
    got = {(x.type, x.billing_period_start, x.amount) for x in InvoiceLine.objects.filter(invoice=nxt)}
    assert got == {("usage", at("2026-10-21"), D("2.00")), ("adjustment", at("2026-10-01"), D("6.00"))}


def test_12c_late_usage_of_an_ended_subscription_billed_on_demand(world):
    """No later subscription to carry it: an on-demand invoice bills the late usage for its period."""
    world.meter("calls")
    world.plan("p", [usage("calls", "calls", {"type": "unit", "amount": "1"})])
    cust = world.customer("acme")
    sub = world.subscribe(cust, "p", "2026-10-01")
    world.use(cust, "calls", "2026-10-05", 4)
    world.cancel(sub, "2026-10-11")
    assert totals(world.clock("2026-10-11 01:00")) == [D("4.00")]
    world.use_late(cust, "calls", event_time="2026-10-06", received="2026-10-25", value=6)
    assert world.clock("2026-11-01 01:00") == []  # no moment left for this customer
    inv = world.on_demand(cust, "2026-11-02")
    got = [(x.type, x.billing_period_start, x.amount) for x in InvoiceLine.objects.filter(invoice=inv)]
    assert got == [("adjustment", at("2026-10-01"), D("6.00"))]
