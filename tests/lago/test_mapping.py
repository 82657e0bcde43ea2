"""The pure Lago ↔ ours mappings (`lago/mapping.py`): no database, so no tenants here; the API tests
(test_api_*.py) hold a second organization."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from catalog.pricing import price_preview
from catalog.validation import is_valid_key
from lago import mapping, plans, wire
from lago.wire import LagoInvalid

D = Decimal
METRICS = {
    "bm_1": plans.Metric(id="bm_1", code="api_requests"),
    "bm_2": plans.Metric(id="bm_2", code="tokens"),
}


def charge(model: str, properties: dict, **extra) -> dict:
    return {"billable_metric_id": "bm_1", "charge_model": model, "properties": properties, **extra}


def card(ch: dict, currency: str = "USD") -> dict:
    return plans.charge_from_lago(ch, index=0, metrics=METRICS, currency=currency, cadence="P1M")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1791288000, datetime(2026, 10, 6, 12, 0, tzinfo=UTC)),
        ("1791288000.25", datetime(2026, 10, 6, 12, 0, 0, 250000, tzinfo=UTC)),
        (1791288000.5, datetime(2026, 10, 6, 12, 0, 0, 500000, tzinfo=UTC)),
        ("2026-10-06T12:00:00Z", datetime(2026, 10, 6, 12, 0, tzinfo=UTC)),
        ("2026-10-06T12:00:00", None),  # no offset
        ("yesterday", None),
        (-1, None),
        (True, None),
        ("NaN", None),
        (10**20, None),
    ],
)
def test_timestamps(value, expected):
    assert wire.parse_timestamp(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.05", D("0.05")),
        (3, D(3)),
        ("1e3", D("1E+3")),
        (1.5, None),
        ("abc", None),
        (True, None),
        ("1e30", None),
    ],
)
def test_decimal_strings_never_floats(value, expected):
    assert wire.decimal_string(value) == expected


def test_minor_units_follow_the_currency():
    # 500 minor units: 5.00 USD, 500 JPY (no decimals), 0.500 KWD (three).
    assert [wire.from_cents(500, c) for c in ("USD", "JPY", "KWD")] == [D("5.00"), D("500"), D("0.500")]
    assert wire.from_cents(4900.5, "USD") is None
    assert wire.cents(D("9.505"), "USD") == 951  # rounded half up once


def test_metric_mapping():
    spec = mapping.metric_from_lago(
        {
            "name": "Tokens",
            "code": "tokens",
            "aggregation_type": "sum_agg",
            "field_name": "tokens",
            "filters": [{"key": "model", "values": ["gpt-4o", "gpt-4o-mini"]}],
        },
        key_valid=is_valid_key,
    )
    assert (spec.aggregation, spec.value_property, spec.group_by) == ("SUM", "$.tokens", {"model": "$.model"})
    count = mapping.metric_from_lago(
        {"name": "Calls", "code": "calls", "aggregation_type": "count_agg", "field_name": "ignored"},
        key_valid=is_valid_key,
    )
    assert (count.aggregation, count.value_property) == ("COUNT", None)
    assert mapping.field_name_of("$['total-bytes']") == "total-bytes"
    with pytest.raises(LagoInvalid) as exc:
        mapping.metric_from_lago(
            {"name": "x", "code": "x", "aggregation_type": "custom_agg"}, key_valid=is_valid_key
        )
    assert exc.value.details == {"aggregation_type": ["not_supported"]}


def test_graduated_charge_prices_like_lago():
    ranges = [
        {"from_value": 0, "to_value": 10, "per_unit_amount": "0", "flat_amount": "0"},
        {"from_value": 11, "to_value": 100, "per_unit_amount": "0.5", "flat_amount": "1"},
        {"from_value": 101, "to_value": None, "per_unit_amount": "0.25", "flat_amount": "0"},
    ]
    rc = card(charge("graduated", {"graduated_ranges": ranges}))
    assert rc["price"] == {
        "type": "tiered",
        "mode": "graduated",
        "tiers": [
            {"upToAmount": "10", "unitPrice": {"type": "unit", "amount": "0"}, "flatPrice": None},
            {
                "upToAmount": "100",
                "unitPrice": {"type": "unit", "amount": "0.5"},
                "flatPrice": {"type": "flat", "amount": "1"},
            },
            {"upToAmount": None, "unitPrice": {"type": "unit", "amount": "0.25"}, "flatPrice": None},
        ],
    }
    # 0 units: no tier reached, 0. 10: tier 1 only, 0. 15: 5 x 0.5 + 1 = 3.50.
    # 150: 90 x 0.5 + 1 + 50 x 0.25 = 45 + 1 + 12.50 = 58.50.
    amounts = [
        price_preview(price=rc["price"], quantity=q, currency="USD").amount for q in ("0", "10", "15", "150")
    ]
    assert amounts == [D("0.00"), D("0.00"), D("3.50"), D("58.50")]
    back = plans.charge_to_lago(rc, metric=METRICS["bm_1"], currency="USD")
    assert back["properties"] == {"graduated_ranges": ranges}
    assert (back["charge_model"], back["lago_billable_metric_id"], back["billable_metric_code"]) == (
        "graduated",
        "bm_1",
        "api_requests",
    )


def test_volume_package_standard_percentage_charges():
    volume = card(
        charge(
            "volume",
            {
                "volume_ranges": [
                    {"from_value": 0, "to_value": 100, "per_unit_amount": "2", "flat_amount": "10"},
                    {"from_value": 101, "to_value": None, "per_unit_amount": "1", "flat_amount": "0"},
                ]
            },
        )
    )
    # Volume: the total's tier prices every unit: 100 -> 100 x 2 + 10 = 210; 101 -> 101 x 1 = 101.
    assert [
        price_preview(price=volume["price"], quantity=q, currency="USD").amount for q in ("100", "101")
    ] == [
        D("210.00"),
        D("101.00"),
    ]
    package = card(charge("package", {"amount": "2", "package_size": 1000, "free_units": 500}))
    assert (package["price"], package["discounts"]) == (
        {"type": "package", "amount": "2", "quantityPerPackage": "1000"},
        {"usage": {"quantity": "500"}},
    )
    # 3500 - 500 free = 3000 -> 3 packages -> 6.00; 1501 - 500 = 1001 -> 2 packages -> 4.00.
    assert [
        price_preview(
            price=package["price"], quantity=q, currency="USD", discounts=package["discounts"]
        ).amount
        for q in ("3500", "1501", "500")
    ] == [D("6.00"), D("4.00"), D("0.00")]
    standard = card(
        charge("standard", {"amount": "0.002"}, min_amount_cents=500, invoice_display_name="Calls")
    )
    assert (standard["price"], standard["name"]) == (
        {"type": "unit", "amount": "0.002", "minimumAmount": "5"},
        "Calls",
    )
    assert (
        card(charge("standard", {"amount": "1"}, min_amount_cents=500), "JPY")["price"]["minimumAmount"]
        == "500"
    )
    percentage = card(charge("percentage", {"rate": "1.5", "fixed_amount": "0.25"}))
    assert percentage["price"] == {"type": "percentage", "percentage": "1.5", "fixedAmountPerEvent": "0.25"}
    # 200.00 of volume in 4 transactions: 200 x 1.5% = 3.00 + 4 x 0.25 = 1.00 -> 4.00.
    assert price_preview(
        price=percentage["price"], quantity="200", currency="USD", event_count=4
    ).amount == D("4.00")
    assert plans.charge_to_lago(percentage, metric=None, currency="USD")["properties"] == {
        "rate": "1.5",
        "fixed_amount": "0.25",
    }


def test_charge_errors_name_every_field():
    with pytest.raises(LagoInvalid) as exc:
        card(
            {
                "billable_metric_id": "nope",
                "charge_model": "graduated",
                "pay_in_advance": "yes",
                "properties": {"graduated_ranges": [{"from_value": 1, "to_value": 5}]},
            }
        )
    assert exc.value.details == {
        "charges[0].billable_metric_id": ["billable_metric_not_found"],
        "charges[0].pay_in_advance": ["invalid_value"],
        "charges[0].properties.graduated_ranges[0].from_value": ["invalid_graduated_ranges"],
        "charges[0].properties.graduated_ranges[0].to_value": ["invalid_graduated_ranges"],
        "charges[0].properties.graduated_ranges[0].per_unit_amount": ["value_is_mandatory"],
        "charges[0].properties.graduated_ranges[0].flat_amount": ["value_is_mandatory"],
    }


def test_plan_document():
    doc = plans.plan_from_lago(
        {
            "name": "Enterprise",
            "code": "enterprise",
            "interval": "yearly",
            "amount_cents": 120000,
            "amount_currency": "eur",
            "pay_in_advance": False,
            "trial_period": 14,
            "bill_charges_monthly": True,
            "charges": [charge("standard", {"amount": "1"}, code="calls")],
        },
        metrics=METRICS,
        key_valid=is_valid_key,
    )
    assert doc.key == "enterprise"
    d = doc.document
    assert (d["currency"], d["billingCadence"], d["metadata"]) == ("EUR", "P1Y", {"lagoTrialDays": "14"})
    trial, default = d["phases"]
    assert (trial["key"], trial["duration"], default["duration"]) == ("trial", "P14D", None)
    fee, usage = default["rateCards"]
    assert (fee["key"], fee["price"], fee["billingCadence"]) == (
        "subscription_fee",
        {"type": "flat", "amount": "1200", "paymentTerm": "in_arrears"},
        "P1Y",
    )
    assert (usage["key"], usage["featureKey"], usage["billingCadence"]) == ("calls", "api_requests", "P1M")
    assert [c["price"].get("amount") for c in trial["rateCards"]] == ["0", "1"]  # no fee during the trial
    back = plans.plan_to_lago(
        lago_id="pv_1",
        key=doc.key,
        name=d["name"],
        description="",
        currency=d["currency"],
        cadence=d["billingCadence"],
        phases=d["phases"],
        metadata=d["metadata"],
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        metrics=METRICS,
    )
    assert (back["interval"], back["amount_cents"], back["pay_in_advance"], back["trial_period"]) == (
        "yearly",
        120000,
        False,
        14.0,
    )
    assert back["bill_charges_monthly"] is True
    with pytest.raises(LagoInvalid) as exc:
        plans.plan_from_lago(
            {
                "name": "x",
                "code": "x",
                "interval": "monthly",
                "amount_currency": "USD",
                "charges": [charge("standard", {"amount": "1"}), charge("standard", {"amount": "2"})],
            },
            metrics=METRICS,
            key_valid=is_valid_key,
        )
    assert exc.value.details == {
        "charges[1].code": ["value_already_exist"]
    }  # two charges on one metric need codes


@pytest.mark.parametrize(
    ("start", "cadence", "anchor"),
    [
        (datetime(2026, 10, 16, 13, 30, tzinfo=UTC), "P1M", datetime(2026, 10, 1, tzinfo=UTC)),
        (datetime(2026, 11, 20, tzinfo=UTC), "P3M", datetime(2026, 10, 1, tzinfo=UTC)),
        (datetime(2026, 11, 20, tzinfo=UTC), "P6M", datetime(2026, 7, 1, tzinfo=UTC)),
        (datetime(2026, 11, 20, tzinfo=UTC), "P1Y", datetime(2026, 1, 1, tzinfo=UTC)),
        (
            datetime(2026, 10, 16, 9, tzinfo=UTC),
            "P1W",
            datetime(2026, 10, 12, tzinfo=UTC),
        ),  # a Friday -> Monday
    ],
)
def test_calendar_anchor(start, cadence, anchor):
    assert mapping.calendar_anchor(start, cadence) == anchor


def test_statuses():
    now = datetime(2026, 10, 16, tzinfo=UTC)
    before, after = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    assert mapping.subscription_status(active_from=before, active_to=None, now=now) == "active"
    assert mapping.subscription_status(active_from=after, active_to=None, now=now) == "pending"
    assert mapping.subscription_status(active_from=before, active_to=now, now=now) == "terminated"
    assert wire.error_body(422, "validation_errors", details={"code": ["value_already_exist"]}) == {
        "status": 422,
        "error": "Unprocessable Entity",
        "code": "validation_errors",
        "error_details": {"code": ["value_already_exist"]},
    }
