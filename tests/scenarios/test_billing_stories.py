"""Ordinary billing stories beyond the issue's twelve, each with its amounts worked out by hand.

Clock at 01:00 after a boundary (default collection delay 1 h); subscriptions start at 00:00 UTC unless
a time zone says otherwise. Both invoice paths run every story (see conftest)."""

from __future__ import annotations

from datetime import UTC, datetime

import time_machine

from invoicing.models import Invoice, InvoiceLine
from invoicing.services import invoice_void, tax_rate_create
from tests.invoicing.conftest import GRADUATED
from tests.scenarios.conftest import D, at, flat, lines, totals, usage

UNIT_1 = {"type": "unit", "amount": "1"}


def _metered(world, price=UNIT_1, **card):
    world.meter("calls")
    world.plan("p", [usage("calls", "calls", price, **card)])
    cust = world.customer("acme")
    return cust, world.subscribe(cust, "p", "2026-10-01")


def test_trial_phase_then_standard_fee(world):
    world.plan(
        "p",
        [],
        phases=[
            {"key": "trial", "name": "Trial", "duration": "P1M", "rateCards": [flat("base", "0")]},
            {"key": "standard", "name": "Standard", "duration": None, "rateCards": [flat("base", "30")]},
        ],
    )
    cust = world.customer("acme")
    world.subscribe(cust, "p", "2026-10-01")
    assert world.clock("2026-10-01 01:00") == []  # nothing due during the trial
    (nov,) = world.clock("2026-11-01 01:00")
    assert lines(nov) == [("flat_fee", D("30.00"))]  # the first paid month, in advance


def test_subscription_started_mid_period_pays_a_prorated_first_fee_at_once(world):
    world.plan("p", [flat("base", "31")])
    cust = world.customer("acme")
    world.subscribe(cust, "p", "2026-10-16", anchor="2026-10-01")
    (start,) = world.clock("2026-10-16 00:05")
    assert (start.kind, start.total) == ("start", D("16.00"))  # 31 x 16/31 (Oct 16 - Nov 1)
    (nov,) = world.clock("2026-11-01 01:00")
    assert nov.total == D("31.00")


def test_two_changes_in_one_period(world):
    world.plan("small", [flat("base", "31")])
    world.plan("medium", [flat("base", "62")])
    world.plan("large", [flat("base", "93")])
    cust = world.customer("acme")
    sub = world.subscribe(cust, "small", "2026-10-01")
    world.clock("2026-10-01 01:00")  # 31
    medium = world.change(sub, "medium", "2026-10-11")
    # small: 31 x 10/31 = 10 due of 31 billed -> -21; medium to the period end: 62 x 21/31 = 42
    assert totals(world.clock("2026-10-11 01:00")) == [D("21.00")]
    world.change(medium, "large", "2026-10-21")
    # medium: 62 x 10/31 = 20 due of 42 billed -> -22; large: 93 x 11/31 = 33
    assert totals(world.clock("2026-10-21 01:00")) == [D("11.00")]
    assert world.billed(cust) == D("63.00")  # 10 + 20 + 33


def test_annual_plan_with_monthly_usage(world):
    world.meter("calls")
    world.plan("p", [flat("licence", "120", cadence="P1Y"), usage("calls", "calls", UNIT_1)], cadence="P1Y")
    cust = world.customer("acme")
    world.subscribe(cust, "p", "2026-10-01")
    assert totals(world.clock("2026-10-01 01:00")) == [D("120.00")]
    world.use(cust, "calls", "2026-10-10", 5)
    world.use(cust, "calls", "2026-11-03", 3)
    assert totals(world.clock("2026-11-01 01:00")) == [D("5.00")]  # invoiced monthly for the usage
    assert totals(world.clock("2026-12-01 01:00")) == [D("3.00")]


def test_yen_has_no_minor_unit(world):
    world.currency = "JPY"
    world.meter("calls")
    world.plan("p", [usage("calls", "calls", {"type": "unit", "amount": "0.5"})])
    cust = world.customer("acme")
    world.subscribe(cust, "p", "2026-10-01")
    world.use(cust, "calls", "2026-10-10", 3)
    (inv,) = world.clock("2026-11-01 01:00")
    assert (inv.currency, inv.total) == ("JPY", D("2"))  # 1.5 JPY rounds half up to 2


def test_kuwaiti_dinar_has_three_decimals(world):
    world.currency = "KWD"
    world.meter("calls")
    world.plan("p", [usage("calls", "calls", {"type": "unit", "amount": "0.0125"})])
    cust = world.customer("acme")
    world.subscribe(cust, "p", "2026-10-01")
    world.use(cust, "calls", "2026-10-10", 3)
    (inv,) = world.clock("2026-11-01 01:00")
    assert inv.total == D("0.038")  # 0.0375 -> 0.038


def test_exclusive_tax_is_added(world):
    tax_rate_create(organization=world.org, name="VAT", percentage="10", is_default=True)
    world.plan("p", [flat("base", "49")])
    cust = world.customer("acme")
    world.subscribe(cust, "p", "2026-10-01")
    (inv,) = world.clock("2026-10-01 01:00")
    assert (inv.amount, inv.taxes_total, inv.total) == (D("49.00"), D("4.90"), D("53.90"))


def test_inclusive_tax_is_inside_the_price(world):
    tax_rate_create(organization=world.org, name="VAT", percentage="20", inclusive=True, is_default=True)
    world.plan("p", [flat("base", "120")])
    cust = world.customer("acme")
    world.subscribe(cust, "p", "2026-10-01")
    (inv,) = world.clock("2026-10-01 01:00")
    # 120 - 120 / 1.2 = 20.00 of tax included; the customer pays 120.00
    assert (inv.taxes_total, inv.taxes_inclusive_total, inv.total) == (D("20.00"), D("20.00"), D("120.00"))


def test_credit_expiring_mid_period(world):
    world.plan("p", [flat("base", "10")])
    cust = world.customer("acme")
    world.subscribe(cust, "p", "2026-10-01")
    world.credit(cust, "50", "2026-10-01", expires_at=datetime(2026, 10, 15, tzinfo=UTC))
    assert totals(world.clock("2026-10-01 01:00")) == [D("0.00")]  # 10 paid by the credit
    assert totals(world.clock("2026-11-01 01:00")) == [D("10.00")]  # the other 40 expired on Oct 15


def test_credits_by_priority(world):
    world.plan("p", [flat("base", "10")])
    cust = world.customer("acme")
    world.subscribe(cust, "p", "2026-10-01")
    world.credit(cust, "4", "2026-10-01", priority=2, description="Promo")
    world.credit(cust, "3", "2026-10-01", priority=1, description="Refund")
    (inv,) = world.clock("2026-10-01 01:00")
    got = [(x.description, x.amount) for x in InvoiceLine.objects.filter(invoice=inv, type="credit")]
    assert got == [("Refund", D("-3.00")), ("Promo", D("-4.00"))]  # priority 1 first
    assert inv.total == D("3.00")


def test_void_and_rebill(world):
    world.plan("p", [flat("base", "10")])
    cust = world.customer("acme")
    world.subscribe(cust, "p", "2026-10-01")
    world.credit(cust, "4", "2026-10-01")
    (start,) = world.clock("2026-10-01 01:00")
    assert start.total == D("6.00")
    with time_machine.travel(at("2026-10-05"), tick=False):
        invoice_void(organization=world.org, invoice=start)
    # voiding releases what it billed and the credit it used: the next invoice bills October again
    (nov,) = world.clock("2026-11-01 01:00")
    assert (nov.amount, nov.credits_total, nov.total) == (D("20.00"), D("4.00"), D("16.00"))


def test_back_fill_after_downtime_with_usage(world):
    cust, _sub = _metered(world)
    world.use(cust, "calls", "2026-10-05", 4)
    world.use(cust, "calls", "2026-11-05", 6)
    assert totals(world.clock("2026-12-01 01:00")) == [D("4.00"), D("6.00")]
    assert world.clock("2026-12-01 02:00") == []  # the rerun finds both done


def test_dst_anchor_in_the_customer_time_zone(world):
    world.meter("calls")
    world.plan("p", [usage("calls", "calls", UNIT_1)])
    cust = world.customer("acme", timezone_name="America/New_York")
    # local midnight Oct 1 (EDT, UTC-4) = 04:00 UTC; Dec 1 local midnight (EST, UTC-5) = 05:00 UTC
    world.subscribe(cust, "p", "2026-10-01 04:00")
    world.use(cust, "calls", "2026-12-01 04:30", 7)  # Nov 30 23:30 in New York: November's
    world.use(cust, "calls", "2026-12-01 05:30", 2)  # Dec 1 00:30 in New York: December's
    world.clock("2026-11-01 06:00")
    (nov,) = world.clock("2026-12-01 06:00")
    assert (nov.period_start, nov.period_end) == (at("2026-11-01 04:00"), at("2026-12-01 05:00"))
    assert nov.total == D("7.00")


def test_cancel_at_period_end_bills_no_further_fee(world):
    world.meter("calls")
    world.plan("p", [flat("base", "31"), usage("calls", "calls", UNIT_1)])
    cust = world.customer("acme")
    sub = world.subscribe(cust, "p", "2026-10-01")
    world.clock("2026-10-01 01:00")
    world.use(cust, "calls", "2026-10-10", 5)
    world.cancel(sub, "2026-10-20", timing="next_billing_cycle")
    (last,) = world.clock("2026-11-01 01:00")
    assert lines(last) == [("usage", D("5.00"))]  # October's usage; no November fee
    assert world.clock("2026-12-01 01:00") == []


def test_cancel_immediately_with_usage_and_a_fee(world):
    world.meter("calls")
    world.plan("p", [flat("base", "31"), usage("calls", "calls", UNIT_1)])
    cust = world.customer("acme")
    sub = world.subscribe(cust, "p", "2026-10-01")
    world.clock("2026-10-01 01:00")
    world.use(cust, "calls", "2026-10-05", 5)
    world.cancel(sub, "2026-10-11")
    (final,) = world.clock("2026-10-11 01:00")
    # usage to the cancel instant 5.00; fee 31 x 10/31 = 10 due of 31 billed -> -21.00
    assert sorted(x[1] for x in lines(final)) == [D("-21.00"), D("5.00")]
    assert final.total == D("-16.00")


def test_graduated_tiers_across_an_on_demand_invoice(world):
    cust, _sub = _metered(world, GRADUATED)
    world.use(cust, "calls", "2026-10-05", 800)
    assert world.on_demand(cust, "2026-10-15").total == D("80.00")  # 800 x 0.10
    world.use(cust, "calls", "2026-10-20", 700)
    (nov,) = world.clock("2026-11-01 01:00")
    # whole period: 1000 x 0.10 + 500 x 0.05 = 125.00, of which 80.00 billed -> 45.00
    assert nov.total == D("45.00")


def test_maximum_commitment_caps_the_period(world):
    cust, _sub = _metered(world, {"type": "unit", "amount": "1", "maximumAmount": "50"})
    world.use(cust, "calls", "2026-10-05", 80)
    (inv,) = world.clock("2026-11-01 01:00")
    assert lines(inv) == [("usage", D("80.00")), ("commitment", D("-30.00"))]
    assert inv.total == D("50.00")


def test_package_price_rounds_packages_up(world):
    cust, _sub = _metered(world, {"type": "package", "amount": "5", "quantityPerPackage": "1000"})
    world.use(cust, "calls", "2026-10-05", 2500)
    (inv,) = world.clock("2026-11-01 01:00")
    assert inv.total == D("15.00")  # 3 packages x 5.00


def test_volume_tiers_price_every_unit_at_the_reached_tier(world):
    price = {
        "type": "tiered",
        "mode": "volume",
        "tiers": [
            {"upToAmount": "100", "unitPrice": {"type": "unit", "amount": "1"}},
            {"unitPrice": {"type": "unit", "amount": "0.5"}},
        ],
    }
    cust, _sub = _metered(world, price)
    world.use(cust, "calls", "2026-10-05", 150)
    (inv,) = world.clock("2026-11-01 01:00")
    assert inv.total == D("75.00")  # 150 x 0.50


def test_free_units_then_unit_price(world):
    cust, _sub = _metered(world, {"type": "unit", "amount": "0.10"}, discounts={"usage": {"quantity": "100"}})
    world.use(cust, "calls", "2026-10-05", 150)
    (inv,) = world.clock("2026-11-01 01:00")
    assert inv.total == D("5.00")  # (150 - 100) x 0.10


def test_percentage_discount_on_a_flat_fee(world):
    world.plan("p", [{**flat("base", "100"), "discounts": {"percentage": {"percentage": "10"}}}])
    cust = world.customer("acme")
    world.subscribe(cust, "p", "2026-10-01")
    (inv,) = world.clock("2026-10-01 01:00")
    assert lines(inv) == [("flat_fee", D("100.00")), ("discount", D("-10.00"))]
    assert inv.total == D("90.00")


def test_no_usage_bills_a_zero_usage_line(world):
    _metered(world)
    (inv,) = world.clock("2026-11-01 01:00")
    assert lines(inv) == [("usage", D("0.00"))]
    assert inv.lines.get().quantity == 0


def test_an_event_on_the_boundary_belongs_to_the_next_period(world):
    cust, _sub = _metered(world)
    world.use(cust, "calls", "2026-10-31 23:59", 1)
    world.use(cust, "calls", "2026-11-01 00:00", 10)  # [start, end): November's
    assert totals(world.clock("2026-11-01 01:00")) == [D("1.00")]
    assert totals(world.clock("2026-12-01 01:00")) == [D("10.00")]


def test_the_clock_twice_gives_one_invoice_and_gapless_numbers(world):
    world.plan("p", [flat("base", "10")])
    for key in ("a", "b", "c"):
        world.subscribe(world.customer(key), "p", "2026-10-01")
    first = world.clock("2026-10-01 01:00")
    assert world.clock("2026-10-01 01:05") == []
    second = world.clock("2026-11-01 01:00")
    numbers = sorted(i.number for i in first + second)
    assert [int(n.rsplit("-", 1)[1]) for n in numbers] == [1, 2, 3, 4, 5, 6]
    assert Invoice.objects.filter(organization=world.org).count() == 6


def test_add_on_mid_period_prorated_on_the_next_invoice(world):
    world.plan("p", [flat("base", "10")])
    world.addon("seats", [flat("seat", "10")])
    cust = world.customer("acme")
    sub = world.subscribe(cust, "p", "2026-10-01")
    world.clock("2026-10-01 01:00")
    world.addon_set(sub, "seats", 2, "2026-10-16")
    (nov,) = world.clock("2026-11-01 01:00")
    # October: 2 seats x 10 x 16/31 = 10.3225... -> 10.32; November in advance: base 10 + 2 x 10
    assert sorted(x[1] for x in lines(nov)) == [D("10.00"), D("10.32"), D("20.00")]
    assert nov.total == D("40.32")


def test_future_cancelation_credits_at_its_instant(world):
    world.plan("p", [flat("base", "30")])
    cust = world.customer("acme")
    sub = world.subscribe(cust, "p", "2026-11-01")
    assert totals(world.clock("2026-11-01 01:00")) == [D("30.00")]
    world.cancel(sub, "2026-11-02", timing=at("2026-11-11"))
    assert world.clock("2026-11-05 01:00") == []  # the cancelation is still ahead
    # Nov 11: 30 x 10/30 = 10 due of 30 billed -> -20
    assert totals(world.clock("2026-11-11 01:00")) == [D("-20.00")]


def test_change_without_timing_upgrades_now_and_downgrades_at_period_end(world):
    world.plan("small", [flat("base", "31")])
    world.plan("large", [flat("base", "62")])
    cust = world.customer("acme")
    sub = world.subscribe(cust, "small", "2026-10-01")
    client = world.tenant.client("admin")
    with time_machine.travel(at("2026-10-16"), tick=False):
        up = client.post(f"/api/v1/subscriptions/{sub.id}/change", {"plan": {"key": "large"}}, format="json")
    assert up.status_code == 200, up.content
    assert up.json()["next"]["activeFrom"].startswith("2026-10-16")  # upgrade: now
    with time_machine.travel(at("2026-10-20"), tick=False):
        down = client.post(
            f"/api/v1/subscriptions/{up.json()['next']['id']}/change",
            {"plan": {"key": "small"}},
            format="json",
        )
    assert down.status_code == 200, down.content
    assert down.json()["next"]["activeFrom"].startswith("2026-11-01")  # downgrade: at the period end
    world.clock("2026-10-16 01:00")
    # Oct 1-16 on small: 15.00; Oct 16 - Nov 1 on large: 32.00; from Nov 1 small again: 31.00
    (nov,) = world.clock("2026-11-01 01:00")
    assert nov.total == D("31.00")
    assert world.billed(cust) == D("78.00")  # 15 + 32 + 31


def test_upcoming_invoice_preview(world, tenant_b):
    world.meter("calls")
    world.plan(
        "p", [flat("base", "10"), usage("calls", "calls", UNIT_1, commitments={"minimumAmount": "50"})]
    )
    cust = world.customer("acme")
    world.subscribe(cust, "p", "2026-10-01")
    world.use(cust, "calls", "2026-10-05", 7)
    with time_machine.travel(at("2026-10-20"), tick=False):
        r = world.tenant.client("read").get(f"/api/v1/customers/{cust.key}/upcoming-invoice")
        other = tenant_b.client("read").get(f"/api/v1/customers/{cust.id}/upcoming-invoice")
    assert r.status_code == 200, r.content
    assert (r.json()["totalCount"], r.json()["page"]) == (1, 1)  # the page shape of every list
    (inv,) = r.json()["items"]
    assert (inv["periodStart"][:10], inv["periodEnd"][:10]) == ("2026-10-01", "2026-11-01")
    # October's usage so far (7.00, no commitment before the period ends) and November's fee (10.00);
    # October's fee is due at the start and not billed yet either (10.00)
    assert sorted((x["type"], x["amount"]) for x in inv["lines"]) == [
        ("flat_fee", "10"),
        ("flat_fee", "10"),
        ("usage", "7"),
    ]
    assert inv["totals"]["total"] == "27.00"
    assert other.status_code == 404  # another organization's customer
    assert not Invoice.objects.filter(organization=world.org).exists()  # a preview stores nothing


def test_fees_billed_by_a_previous_system_are_not_billed_again(world):
    """A customer migrated mid-way: the old system invoiced October's fee on Oct 1. Recording it as billed
    elsewhere keeps our run from billing it again; November is ours."""
    from invoicing.services import invoice_record_billed_elsewhere

    world.plan("p", [flat("base", "31")])
    cust = world.customer("acme")
    world.subscribe(cust, "p", "2026-10-01")
    (recorded,) = invoice_record_billed_elsewhere(
        organization=world.org, customer=cust, at=at("2026-10-01"), reference="Lago invoice LAGO-42"
    )
    assert (recorded.kind, recorded.status, recorded.number, recorded.total) == (
        "external",
        "paid",
        "",
        D("31.00"),
    )
    assert world.clock("2026-10-01 01:00") == []  # nothing left to bill at the start
    (nov,) = world.clock("2026-11-01 01:00")
    assert nov.total == D("31.00")  # November in advance
