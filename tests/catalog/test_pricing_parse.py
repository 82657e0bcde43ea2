"""Price JSON parsing: OpenMeter shapes in, frozen dataclasses out, errors named by path."""

from decimal import Decimal

import pytest

from catalog.pricing import (
    FlatPrice,
    PriceInvalid,
    TieredPrice,
    parse_commitments,
    parse_discounts,
    parse_price,
    parse_quantity,
    price_to_json,
)

D = Decimal

VALID = [
    {"type": "flat", "amount": "10", "paymentTerm": "in_advance"},
    {"type": "unit", "amount": "0.002"},
    {"type": "unit", "amount": "0.002", "minimumAmount": "5", "maximumAmount": "100"},
    {
        "type": "tiered",
        "mode": "graduated",
        "tiers": [
            {"upToAmount": "1000", "unitPrice": {"type": "unit", "amount": "0.5"}, "flatPrice": None},
            {"upToAmount": None, "unitPrice": None, "flatPrice": {"type": "flat", "amount": "2"}},
        ],
    },
    {"type": "package", "amount": "100", "quantityPerPackage": "10"},
    {"type": "dynamic", "multiplier": "1.2"},
    {"type": "percentage", "percentage": "1.3", "fixedAmountPerEvent": "0.25"},
]


@pytest.mark.parametrize("doc", VALID)
def test_valid_prices_round_trip(doc):
    price = parse_price(doc)
    assert parse_price(price_to_json(price)) == price


def test_parsed_values_are_decimals_and_frozen():
    price = parse_price(VALID[3])
    assert isinstance(price, TieredPrice)
    assert price.tiers[0].up_to == D(1000) and price.tiers[0].unit_price == D("0.5")
    assert price.tiers[1].up_to is None and price.tiers[1].flat_price == D(2)
    with pytest.raises(AttributeError):
        price.mode = "volume"  # type: ignore[misc]
    assert parse_price({"type": "flat", "amount": "10"}) == FlatPrice(amount=D(10), payment_term="in_advance")


def errors_of(doc, path="price"):
    with pytest.raises(PriceInvalid) as info:
        parse_price(doc, path)
    return {e["name"]: e["reason"] for e in info.value.errors}


def test_float_rejected_with_path():
    errs = errors_of({"type": "unit", "amount": 0.002})
    assert list(errs) == ["price.amount"]
    assert "decimal string" in errs["price.amount"]


def test_tier_errors_name_the_tier():
    doc = {
        "type": "tiered",
        "mode": "graduated",
        "tiers": [
            {"upToAmount": "100", "unitPrice": {"type": "unit", "amount": "1"}},
            {"upToAmount": "1000", "unitPrice": {"type": "unit", "amount": "0.5"}},
            {"upToAmount": "500", "unitPrice": {"type": "unit", "amount": "0.1"}},
            {"upToAmount": None, "unitPrice": {"type": "unit", "amount": "abc"}},
        ],
    }
    errs = errors_of(doc, "phases[1].rateCards[0].price")
    assert set(errs) == {
        "phases[1].rateCards[0].price.tiers[2].upToAmount",
        "phases[1].rateCards[0].price.tiers[3].unitPrice.amount",
    }
    assert "greater than the previous" in errs["phases[1].rateCards[0].price.tiers[2].upToAmount"]


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"type": "magic"}, "price.type"),
        ({"type": "unit"}, "price.amount"),
        ({"type": "unit", "amount": "-1"}, "price.amount"),
        ({"type": "unit", "amount": "1e3"}, "price.amount"),
        ({"type": "unit", "amount": "NaN"}, "price.amount"),
        ({"type": "unit", "amount": True}, "price.amount"),
        ({"type": "unit", "amount": "0.0000000000001"}, "price.amount"),  # 13 places > NUMERIC(38,12)
        ({"type": "unit", "amount": "1", "extra": 1}, "price.extra"),
        ({"type": "unit", "amount": "1", "minimumAmount": "10", "maximumAmount": "5"}, "price.maximumAmount"),
        ({"type": "flat", "amount": "1", "paymentTerm": "later"}, "price.paymentTerm"),
        (
            {
                "type": "tiered",
                "mode": "stairs",
                "tiers": [{"upToAmount": None, "unitPrice": {"amount": "1"}}],
            },
            "price.mode",
        ),
        ({"type": "tiered", "mode": "volume", "tiers": []}, "price.tiers"),
        (
            {
                "type": "tiered",
                "mode": "volume",
                "tiers": [{"upToAmount": "10", "unitPrice": {"amount": "1"}}],
            },
            "price.tiers[0].upToAmount",
        ),
        ({"type": "tiered", "mode": "volume", "tiers": [{"upToAmount": None}]}, "price.tiers[0]"),
        (
            {
                "type": "tiered",
                "mode": "volume",
                "tiers": [
                    {"upToAmount": None, "unitPrice": {"amount": "1"}},
                    {"upToAmount": None, "unitPrice": {"amount": "1"}},
                ],
            },
            "price.tiers[0].upToAmount",
        ),
        (
            {
                "type": "tiered",
                "mode": "volume",
                "tiers": [
                    {"upToAmount": "0", "unitPrice": {"amount": "1"}},
                    {"upToAmount": None, "flatPrice": {"amount": "1"}},
                ],
            },
            "price.tiers[0].upToAmount",
        ),
        ({"type": "package", "amount": "100", "quantityPerPackage": "0"}, "price.quantityPerPackage"),
        ({"type": "percentage", "percentage": "101"}, "price.percentage"),
        ("unit", "price"),
    ],
)
def test_invalid_prices(doc, path):
    assert path in errors_of(doc)


def test_discounts_and_commitments():
    d = parse_discounts({"usage": {"quantity": "10"}, "percentage": {"percentage": "10"}})
    assert d.usage_quantity == D(10) and d.percentage == D(10)
    assert parse_discounts(None) is None
    with pytest.raises(PriceInvalid) as info:
        parse_discounts({"percentage": {"percentage": 10.5}})
    assert info.value.errors[0]["name"] == "discounts.percentage.percentage"
    c = parse_commitments({"minimumAmount": "10", "maximumAmount": "20"})
    assert (c.minimum_amount, c.maximum_amount) == (D(10), D(20))


def test_quantity_accepts_any_precision_but_no_floats():
    assert parse_quantity("0.0000000000000000001") == D("1E-19")
    with pytest.raises(PriceInvalid):
        parse_quantity(1.5)
    with pytest.raises(PriceInvalid):
        parse_quantity("-1")
