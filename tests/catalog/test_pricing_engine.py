"""Pricing engine: table tests per price type, numbers worked out by hand in the comments."""

from decimal import Decimal

import pytest

from catalog.pricing import (
    Commitments,
    Discounts,
    DynamicPrice,
    FlatPrice,
    PackagePrice,
    PercentagePrice,
    Tier,
    TieredPrice,
    UnitPrice,
    price_total,
    rate,
    rate_dynamic,
    rate_flat,
    rate_graduated,
    rate_package,
    rate_percentage,
    rate_unit,
    rate_volume,
)

D = Decimal

# Three tiers used throughout:
#   tier 1: 0 < q <= 100   at 1.00/unit, flat 10
#   tier 2: 100 < q <= 1000 at 0.50/unit, flat 5
#   tier 3: above 1000      at 0.10/unit, no flat
TIERS = (
    Tier(up_to=D(100), unit_price=D("1.00"), flat_price=D(10)),
    Tier(up_to=D(1000), unit_price=D("0.50"), flat_price=D(5)),
    Tier(up_to=None, unit_price=D("0.10")),
)
GRADUATED = TieredPrice(mode="graduated", tiers=TIERS)
VOLUME = TieredPrice(mode="volume", tiers=TIERS)


def test_flat_ignores_usage():
    r = rate_flat(FlatPrice(amount=D("49.99")))
    assert r.amount == D("49.99")
    assert [line.kind for line in r.lines] == ["flat"]
    # quantity is irrelevant for a flat fee
    assert rate(FlatPrice(amount=D("49.99"), payment_term="in_arrears"), D(12345)).amount == D("49.99")


@pytest.mark.parametrize(
    ("quantity", "unit", "expected"),
    [
        ("0", "0.002", "0"),  # nothing used, nothing owed
        ("1", "0.002", "0.002"),
        ("1000", "0.002", "2.000"),  # 1000 x 0.002 = 2
        ("1500000", "0.0000025", "3.75"),  # 1.5M tokens x 2.50/1M = 3.75
        ("0.5", "3", "1.5"),  # fractional quantities are exact
    ],
)
def test_unit(quantity, unit, expected):
    r = rate_unit(UnitPrice(amount=D(unit)), D(quantity))
    assert r.amount == D(expected)
    assert sum(line.amount for line in r.lines) == r.amount


@pytest.mark.parametrize(
    ("quantity", "expected", "kinds"),
    [
        # 0 reaches no tier: nothing at all, not even tier 1's flat fee
        ("0", "0", []),
        # 1 unit: tier 1 flat 10 + 1 x 1.00 = 11
        ("1", "11", ["tier_flat", "tier_unit"]),
        # exactly 100 (inclusive bound): 10 + 100 x 1.00 = 110, tier 2 not reached
        ("100", "110", ["tier_flat", "tier_unit"]),
        # 100.5: 110 + tier 2 flat 5 + 0.5 x 0.50 = 115.25
        ("100.5", "115.25", ["tier_flat", "tier_unit", "tier_flat", "tier_unit"]),
        # 101: 110 + 5 + 1 x 0.50 = 115.50
        ("101", "115.50", ["tier_flat", "tier_unit", "tier_flat", "tier_unit"]),
        # 1000: 110 + 5 + 900 x 0.50 = 565
        ("1000", "565", ["tier_flat", "tier_unit", "tier_flat", "tier_unit"]),
        # 1500: 565 + 500 x 0.10 = 615 (tier 3 has no flat price)
        ("1500", "615", ["tier_flat", "tier_unit", "tier_flat", "tier_unit", "tier_unit"]),
    ],
)
def test_graduated(quantity, expected, kinds):
    r = rate_graduated(GRADUATED, D(quantity))
    assert r.amount == D(expected)
    assert [line.kind for line in r.lines] == kinds
    assert sum(line.amount for line in r.lines) == r.amount


def test_graduated_lines_explain_each_tier():
    # 1500 units: tier 1 gets 100 units, tier 2 gets 900, tier 3 gets 500
    r = rate_graduated(GRADUATED, D(1500))
    units = [(line.tier, line.quantity, line.amount) for line in r.lines if line.kind == "tier_unit"]
    assert units == [(1, D(100), D("100.00")), (2, D(900), D("450.00")), (3, D(500), D("50.00"))]


@pytest.mark.parametrize(
    ("quantity", "expected", "tier"),
    [
        ("0", "0", None),  # no tier reached
        # 50 falls in tier 1: 10 + 50 x 1.00 = 60
        ("50", "60", 1),
        # 100 is still tier 1 (inclusive): 10 + 100 = 110
        ("100", "110", 1),
        # 101 falls in tier 2: all units at 0.50 + flat 5 = 50.50 + 5 = 55.50
        ("101", "55.50", 2),
        # 1000 in tier 2: 500 + 5 = 505
        ("1000", "505", 2),
        # 1001 in tier 3: 1001 x 0.10 = 100.10, tier 3 has no flat
        ("1001", "100.10", 3),
    ],
)
def test_volume(quantity, expected, tier):
    r = rate_volume(VOLUME, D(quantity))
    assert r.amount == D(expected)
    assert {line.tier for line in r.lines} == ({tier} if tier else set())


@pytest.mark.parametrize(
    ("quantity", "expected", "packages"),
    [
        ("0", "0", 0),  # zero packages
        ("1", "100", 1),  # a partial package rounds up: ceil(1/10) = 1 -> 100
        ("10", "100", 1),  # exactly one package
        ("11", "200", 2),  # ceil(11/10) = 2 -> 200
        ("121", "1300", 13),  # ceil(12.1) = 13 -> 1300
        ("120", "1200", 12),
    ],
)
def test_package(quantity, expected, packages):
    r = rate_package(PackagePrice(amount=D(100), quantity_per_package=D(10)), D(quantity))
    assert r.amount == D(expected)
    assert r.lines[0].quantity == packages


@pytest.mark.parametrize(
    ("cost", "multiplier", "expected"),
    [
        ("0", "1.2", "0"),
        ("10", "1.2", "12.0"),  # 10 USD of provider cost + 20% margin
        ("0.333", "1.5", "0.4995"),  # unrounded inside the engine
        ("7", "1", "7"),
    ],
)
def test_dynamic(cost, multiplier, expected):
    assert rate_dynamic(DynamicPrice(multiplier=D(multiplier)), D(cost)).amount == D(expected)


def test_percentage_with_fixed_amount_per_event():
    price = PercentagePrice(percentage=D("1.3"), fixed_amount_per_event=D("0.25"))
    # 1000 volume x 1.3% = 13; 4 events x 0.25 = 1; total 14
    r = rate_percentage(price, D(1000), event_count=4)
    assert r.amount == D(14)
    assert [(line.kind, line.amount) for line in r.lines] == [("percentage", D(13)), ("per_event", D("1.00"))]
    # without events only the percentage: 250 x 1.3% = 3.25
    assert rate(price, D(250)).amount == D("3.25")


def test_usage_discount_first_units_free():
    # 121 units, first 10 free -> 111 billable; package of 10 at 100: ceil(11.1) = 12 -> 1200
    price = PackagePrice(amount=D(100), quantity_per_package=D(10))
    r = rate(price, D(121), discounts=Discounts(usage_quantity=D(10)))
    assert r.amount == D(1200)
    assert r.lines[0].kind == "usage_discount" and r.lines[0].quantity == D(10)
    # free units larger than usage: nothing billable
    assert rate(price, D(7), discounts=Discounts(usage_quantity=D(10))).amount == 0


def test_percentage_discount_then_minimum_topup():
    price = UnitPrice(amount=D(1), minimum_amount=D(50))
    # 40 units -> 40, minus 10% = 36, minimum 50 -> top-up 14
    r = rate(price, D(40), discounts=Discounts(percentage=D(10)))
    assert r.amount == D(50)
    assert [(line.kind, line.amount) for line in r.lines] == [
        ("unit", D(40)),
        ("percentage_discount", D("-4.0")),
        ("minimum_topup", D("14.0")),
    ]


def test_maximum_cap():
    price = UnitPrice(amount=D(1), maximum_amount=D(100))
    # 250 units -> 250, capped at 100 with a -150 line
    r = rate(price, D(250))
    assert r.amount == D(100)
    assert r.lines[-1].kind == "maximum_cap" and r.lines[-1].amount == D(-150)


def test_minimum_applies_at_zero_usage():
    # a committed minimum is owed even with no usage
    r = rate(TieredPrice(mode="graduated", tiers=TIERS, minimum_amount=D(25)), D(0))
    assert r.amount == D(25)
    assert [line.kind for line in r.lines] == ["minimum_topup"]


def test_rate_card_commitments_override_price():
    price = UnitPrice(amount=D(1), maximum_amount=D(1000))
    r = rate(price, D(500), commitments=Commitments(maximum_amount=D(200)))
    assert r.amount == D(200)


def test_price_total_rounds_once_half_up():
    # 1 unit at 0.005 = 0.005 -> 0.01 (half up), while JPY rounds to whole yen
    r = rate(UnitPrice(amount=D("0.005")), D(1))
    assert r.amount == D("0.005")
    assert price_total(r, "USD") == D("0.01")
    assert str(price_total(rate(UnitPrice(amount=D("0.5")), D(3)), "JPY")) == "2"  # 1.5 -> 2
    assert str(price_total(rate(UnitPrice(amount=D("0.0005")), D(3)), "KWD")) == "0.002"  # 0.0015 -> 0.002


def test_rounding_happens_once_not_per_line():
    # two tier lines of 0.004 each: per-line rounding would give 0.00 + 0.00, once gives 0.01
    price = TieredPrice(
        mode="graduated",
        tiers=(Tier(up_to=D(1), unit_price=D("0.004")), Tier(up_to=None, unit_price=D("0.004"))),
    )
    assert price_total(rate(price, D(2)), "USD") == D("0.01")


def test_engine_rejects_floats_and_negative_quantities():
    with pytest.raises(TypeError):
        rate(UnitPrice(amount=D(1)), 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        rate(UnitPrice(amount=D(1)), D(-1))
